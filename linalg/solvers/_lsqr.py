"""LSQR for least squares, after Paige & Saunders (1982)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from linalg._core.engines import register, select
from linalg._core.namespace import NUMPY, array_kind
from linalg._core.operators import Operator
from linalg._core.results import SolveResult
from linalg._core.validate import check_bool, check_callable, check_int, check_real
from linalg.solvers._common import (
    CallerShape,
    by_column,
    callback_caller,
    check_residual_finite,
    column_norms,
    finish,
    norm,
    prepare_system,
    stack_histories,
)

__all__ = ["lsqr"]

register("solvers.lsqr", "reference", "linalg.solvers._lsqr:_lsqr_column")

CONVERGED_REASONS = ("residual", "least squares")


class _Problem(Operator):
    """``K = [A; damp I] M``, the operator LSQR bidiagonalizes (rows ``damp I``
    only when ``damp > 0``, ``M`` only when given)."""

    def __init__(self, A: Operator, M: Operator | None, damp: float) -> None:
        m, n = A.shape
        super().__init__((m + n if damp > 0 else m, n), A.dtype)
        self.A, self.M, self.damp = A, M, damp

    def _matvec(self, v):
        z = v if self.M is None else self.M.matvec(v)
        Az = self.A.matvec(z)
        return np.concatenate([Az, self.damp * z]) if self.damp > 0 else Az

    def _rmatvec(self, u):
        m = self.A.shape[0]
        t = _adjoint(self.A, u[:m], "A")
        if self.damp > 0:
            t = t + self.damp * u[m:]
        return t if self.M is None else _adjoint(self.M, t, "M")


def _adjoint(op: Operator, v: np.ndarray, name: str) -> np.ndarray:
    try:
        return op.rmatvec(v)
    except NotImplementedError as exc:
        raise TypeError(
            f"lsqr needs {name}ᵀ v, but {name} has no rmatvec: pass a matrix, a sparse "
            "matrix or a LinearOperator that defines rmatvec"
        ) from exc


def lsqr(
    A: Any,
    b: Any,
    *,
    x0: Any = None,
    damp: float = 0.0,
    atol: float = 1e-6,
    btol: float = 1e-6,
    conlim: float = 1e8,
    maxiter: int | None = None,
    M: Any = None,
    callback: Callable | None = None,
    check_every: int = 1,
    warn: bool = True,
    engine: str | None = None,
) -> SolveResult:
    """Solve ``min ||A x - b||² + damp² ||x||²`` for a rectangular ``A`` by LSQR.

    LSQR runs Golub–Kahan bidiagonalization and solves the projected least
    squares problem with plane rotations. It returns the minimum-norm
    solution of a consistent or rank-deficient problem when started from
    ``x0 = 0`` without ``M``. With ``b`` of shape ``(m, k)`` each column is
    solved on its own and reported on its own.

    Parameters
    ----------
    A : array_like, sparse matrix or LinearOperator
        The matrix, ``(m, n)``. LSQR needs ``A v`` and ``Aᵀ v``, so a plain
        callable is refused; pass a LinearOperator with ``rmatvec``.
    b : array_like, shape (m,) or (m, k)
        Right-hand side(s). NumPy, or torch / JAX tensors on the CPU. A CuPy
        array or GPU tensor (or an array of another array-API library) is
        solved where it lives, all columns together, with ``A`` and ``M``
        dense arrays of the same library, cupyx sparse matrices or Operators
        whose products (and adjoint products) take its blocks (see Notes).
    x0 : array_like, optional
        Starting guess, shape ``(n,)`` or ``(n, k)`` (default zeros). LSQR then
        solves for the correction, and the tests below see the initial
        residual in place of ``b``.
    damp : float
        Ridge (Tikhonov) parameter, ``>= 0``.
    atol, btol : float
        Stopping tolerances (Paige & Saunders). A column stops with reason
        ``"residual"`` when ``||r|| <= btol ||b|| + atol ||A|| ||x||`` (a
        consistent system) and with reason ``"least squares"`` when
        ``||Aᵀ r|| <= atol ||A|| ||r||``. Norms are LSQR's estimates for the
        damped, preconditioned problem; ``r`` includes ``damp x``.
    conlim : float
        Stop (reason ``"conlim"``, not converged) when the estimate of
        ``cond(A)`` reaches ``conlim``; ``numpy.inf`` disables the test.
    maxiter : int, optional
        Iteration limit per column (default ``2 n``).
    M : array_like, sparse matrix, LinearOperator or Operator, optional
        Right preconditioner, ``(n, n)``: LSQR solves
        ``min ||[A; damp I] M y - [b; 0]||`` and returns ``x = M y``, so the
        objective is unchanged. A good ``M`` makes ``[A; damp I] M`` well
        conditioned (for example ``R⁻¹`` from a QR factorization of a sketch
        of ``A``). ``M`` needs ``rmatvec`` too; a plain callable is refused.
    callback : callable, optional
        Called after every iteration with the current iterate, in the
        caller's array type and shape (one extra product with ``M`` each).
    check_every : int
        On device data, how often the host asks whether every column has
        stopped; each question is a synchronization. The stopping tests
        themselves run on the device at every iteration, so the answer does
        not depend on ``check_every``; the host path tests every iteration.
    warn : bool
        Emit :class:`linalg.ConvergenceWarning` if a column did not converge.
    engine : {"auto", "reference"}, optional
        Engine (see :func:`linalg.engines`).

    Returns
    -------
    SolveResult
        ``x``, ``converged`` (stop reason ``"residual"`` or ``"least
        squares"``), ``n_iter``, ``residual_norm`` (``||b - A x||``
        recomputed from the returned ``x``), ``history`` (LSQR's estimate of
        ``(||b - A x||² + damp² ||x||²)^½`` after every iteration) and
        ``info``: ``engine``; ``stop_reason`` (``"residual"``, ``"least
        squares"``, ``"conlim"`` or ``"maxiter"``); ``anorm`` and ``acond``,
        estimates of the Frobenius norm and condition number of
        ``[A; damp I] M``; ``arnorm``, ``||Aᵀ (b - A x) - damp² x||``
        recomputed from ``x``. Per column (arrays or a list) when ``b`` is 2-D.

    Raises
    ------
    TypeError
        If ``A`` or ``M`` has no adjoint product (a plain callable).
    linalg.LinAlgError
        If the residual becomes non-finite (an operator returned NaN or Inf).

    Notes
    -----
    On device data the ``k`` columns iterate together on blocks (``(m, k)``
    and ``(n, k)``): one product with ``A`` and one with ``Aᵀ`` per
    iteration, the Golub–Kahan and rotation scalars kept as float64 device
    arrays of shape ``(k,)``, and Paige & Saunders' tests evaluated there, so
    a column stops at the host's iteration and is frozen in the block. The
    host looks every ``check_every`` iterations (one transfer of ``O(k)``
    numbers); a non-finite value is then reported "at or before" that
    iteration. ``engine`` may only be "auto" or "reference" there.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.solvers import lsqr
    >>> A = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    >>> res = lsqr(A, np.array([1.0, 2.0, 2.0]), atol=1e-10, btol=1e-10)
    >>> res.info["stop_reason"], np.allclose(res.x, [7 / 6, 1 / 2])
    ('least squares', True)
    """
    _check_options(
        damp=damp,
        atol=atol,
        btol=btol,
        conlim=conlim,
        maxiter=maxiter,
        callback=callback,
        warn=warn,
    )
    check_int(check_every, "check_every", low=1)
    _refuse_callable(A, "A")
    _refuse_callable(M, "M")
    if array_kind(b).via_namespace:
        from linalg.solvers._lsqr_device import device_lsqr

        options = {"x0": x0, "damp": damp, "atol": atol, "btol": btol, "conlim": conlim}
        options |= {"maxiter": maxiter, "M": M, "callback": callback}
        return device_lsqr(A, b, **options, check_every=check_every, warn=warn, engine=engine)
    system = prepare_system(A, b, x0=x0, M=M, square=False)
    impl = select("solvers.lsqr", engine=engine, kind=NUMPY, dtype=system.dtype)
    column = impl.load()
    A_op, M_op, B = system.A, system.M, system.B
    n = A_op.shape[1]
    maxiter = 2 * n if maxiter is None else maxiter
    K = _Problem(A_op, M_op, damp)
    X = np.zeros((n, B.shape[1]), B.dtype) if system.X0 is None else system.X0.astype(B.dtype)
    tolerances = {"atol": atol, "btol": btol, "conlim": conlim, "maxiter": maxiter}

    def solve(j: int, watch: Callable | None) -> tuple:
        start = X[:, j].copy()
        rhs = B[:, j] if system.X0 is None else B[:, j] - A_op.matvec(start)
        if damp > 0:
            rhs = np.concatenate([rhs, -damp * start])
        to_x = _to_x(start, M_op)
        inner = None if watch is None else (lambda dy: watch(to_x(dy)))
        dy, *outcome = column(K, rhs, callback=inner, **tolerances)
        return to_x(dy), *outcome

    reasons, n_iter, histories, anorm, acond = by_column(
        solve, X, callback_caller(callback, system)
    )
    R = B - A_op.matmat(X)
    norms = column_norms(R), column_norms(A_op.rmatmat(R) - damp**2 * X)
    history = stack_histories(histories)
    outcome = (reasons, n_iter, history, anorm, acond, *norms)
    return lsqr_result(system, X, *outcome, engine=impl.engine, warn=warn)


def lsqr_result(
    system: CallerShape,
    X: Any,
    reasons: list[str],
    n_iter: Any,
    history: np.ndarray,
    anorm: Any,
    acond: Any,
    rnorm: np.ndarray,
    arnorm: np.ndarray,
    *,
    engine: str,
    warn: bool,
) -> SolveResult:
    """The :class:`SolveResult` of the host and device solvers alike."""
    per = (lambda v: float(v[0])) if system.vector else (lambda v: np.array(v, dtype=np.float64))
    info = {
        "engine": engine,
        "stop_reason": reasons[0] if system.vector else reasons,
        "anorm": per(anorm),
        "acond": per(acond),
        "arnorm": per(arnorm),
    }
    return finish(
        system,
        X,
        converged=np.array([reason in CONVERGED_REASONS for reason in reasons]),
        n_iter=np.array(n_iter, dtype=np.int64),
        residual_norm=np.asarray(rnorm, dtype=np.float64),
        history=history,
        info=info,
        warn=warn,
        solver="lsqr" if "conlim" not in reasons else "lsqr (stopped at conlim)",
    )


def _check_options(**options: Any) -> None:
    for name in ("damp", "atol", "btol"):
        check_real(options[name], name, low=0.0)
    if options["conlim"] != math.inf:
        check_real(options["conlim"], "conlim", low=1.0)
    check_int(options["maxiter"], "maxiter", low=1, allow_none=True)
    check_callable(options["callback"], "callback")
    check_bool(options["warn"], "warn")


def _refuse_callable(op: Any, name: str) -> None:
    if callable(op) and not hasattr(op, "matvec") and not hasattr(op, "shape"):
        raise TypeError(
            f"lsqr needs both {name} v and {name}ᵀ v, and a plain callable gives only "
            f"{name} v: pass a matrix, a sparse matrix or a LinearOperator with rmatvec"
        )


def _to_x(start: np.ndarray, M: Operator | None) -> Callable[[np.ndarray], np.ndarray]:
    """The map from LSQR's correction ``dy`` to ``x = x0 + M dy``."""
    return (lambda dy: start + dy) if M is None else (lambda dy: start + M.matvec(dy))


def _lsqr_column(
    K: Operator,
    rhs: np.ndarray,
    *,
    atol: float,
    btol: float,
    conlim: float,
    maxiter: int,
    callback: Callable | None,
) -> tuple[np.ndarray, str, int, list[float], float, float]:
    """LSQR for ``min ||K y - rhs||`` from ``y = 0``.

    Returns ``(y, stop reason, n_iter, residual estimate history, anorm, acond)``.
    """
    y = np.zeros(K.shape[1], dtype=rhs.dtype)
    beta = bnorm = norm(rhs)
    history = [bnorm]
    check_residual_finite(bnorm, 0, "lsqr")
    if beta == 0.0:
        return y, "residual", 0, history, 0.0, 0.0
    u = rhs / beta
    v = K.rmatvec(u)
    alpha = norm(v)
    check_residual_finite(alpha, 0, "lsqr")
    if alpha == 0.0:
        return y, "least squares", 0, history, 0.0, 0.0
    v = v / alpha
    w = v.copy()
    phibar, rhobar = beta, alpha
    anorm2 = ddnorm = 0.0
    limits = (atol, btol, conlim, float(np.finfo(rhs.dtype).eps))
    for k in range(1, maxiter + 1):
        # Golub–Kahan: beta u = K v - alpha u, alpha v = Kᵀ u - beta v.
        u = K.matvec(v) - alpha * u
        beta = norm(u)
        if beta > 0.0:
            u = u / beta
        anorm2 += alpha * alpha + beta * beta
        v = K.rmatvec(u) - beta * v
        alpha = norm(v)
        if alpha > 0.0:
            v = v / alpha
        # A rotation eliminates beta from the lower bidiagonal matrix.
        rho = math.hypot(rhobar, beta)
        c, s = rhobar / rho, beta / rho
        theta, rhobar = s * alpha, -c * alpha
        phi, phibar = c * phibar, s * phibar
        ddnorm += norm(w) ** 2 / rho**2
        y = y + (phi / rho) * w
        w = v - (theta / rho) * w
        history.append(phibar)
        check_residual_finite(phibar * alpha, k, "lsqr")
        if callback is not None:
            callback(y)
        anorm, acond = math.sqrt(anorm2), math.sqrt(anorm2 * ddnorm)
        test2 = alpha * abs(c) / anorm if phibar > 0.0 else 0.0  # ||Kᵀ r|| = phibar alpha |c|
        reason = _stop_reason(phibar / bnorm, test2, acond, anorm * norm(y) / bnorm, limits)
        if reason is not None:
            return y, reason, k, history, anorm, acond
    return y, "maxiter", maxiter, history, anorm, acond


def _stop_reason(
    test1: float, test2: float, acond: float, xscale: float, limits: tuple[float, ...]
) -> str | None:
    """Paige & Saunders' tests 1-3, each also passed at machine precision.

    ``test1 = ||r|| / ||b||``, ``test2 = ||Aᵀ r|| / (||A|| ||r||)``,
    ``xscale = ||A|| ||x|| / ||b||``; ``limits = (atol, btol, conlim, eps)``.
    """
    atol, btol, conlim, eps = limits
    if test1 <= btol + atol * xscale or test1 <= eps * (1.0 + xscale):
        return "residual"
    if test2 <= max(atol, eps):
        return "least squares"
    if acond >= min(conlim, 1.0 / eps):
        return "conlim"
    return None
