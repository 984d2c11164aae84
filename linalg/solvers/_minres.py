"""MINRES for symmetric (possibly indefinite) systems, after Paige & Saunders (1975)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from linalg._core.engines import register, select
from linalg._core.namespace import NUMPY, array_kind
from linalg._core.operators import Operator
from linalg._core.results import LinAlgError, SolveResult
from linalg._core.validate import check_int, check_real
from linalg.solvers._common import (
    CallerShape,
    by_column,
    callback_caller,
    check_options,
    check_residual_finite,
    column_norms,
    dot,
    finish,
    norm,
    prepare_system,
    stack_histories,
)

__all__ = ["minres"]

register("solvers.minres", "reference", "linalg.solvers._minres:_minres_column")


class _Shifted(Operator):
    """``A - shift I``."""

    def __init__(self, A: Operator, shift: float) -> None:
        super().__init__(A.shape, A.dtype)
        self.A, self.shift = A, shift

    def _matvec(self, v):
        return self.A.matvec(v) - self.shift * v

    def _matmat(self, V):
        return self.A.matmat(V) - self.shift * V


def minres(
    A: Any,
    b: Any,
    *,
    x0: Any = None,
    shift: float = 0.0,
    rtol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    M: Any = None,
    callback: Callable | None = None,
    check_every: int = 1,
    warn: bool = True,
    engine: str | None = None,
) -> SolveResult:
    """Solve ``(A - shift I) x = b`` for symmetric, possibly indefinite, ``A``.

    MINRES minimizes the residual over the Krylov subspace using the Lanczos
    process and plane rotations. With ``b`` of shape ``(n, k)`` each column
    is solved on its own and reported on its own.

    Parameters
    ----------
    A : array_like, sparse matrix, LinearOperator or callable
        The symmetric matrix, ``(n, n)`` (symmetry is not checked). A callable
        ``v -> A v`` receives vectors of the caller's array type.
    b : array_like, shape (n,) or (n, k)
        Right-hand side(s). NumPy, or torch / JAX tensors on the CPU. A CuPy
        array or GPU tensor (or an array of another array-API library) is
        solved where it lives, all columns together, with ``A`` and ``M``
        dense arrays of the same library, cupyx sparse matrices, callables or
        Operators whose products take its blocks (see Notes).
    x0 : array_like, optional
        Starting guess, shaped like ``b`` (default zeros).
    shift : float
        Solve with ``A - shift I`` instead of ``A``.
    rtol, atol : float
        Column ``j`` has converged when
        ``||b_j - (A - shift I) x_j|| <= max(rtol * ||b_j||, atol)``.
    maxiter : int, optional
        Iteration limit per column (default ``5 n``).
    M : array_like, sparse matrix, LinearOperator, callable or Operator, optional
        Preconditioner, a symmetric positive definite approximation of
        ``(A - shift I)⁻¹`` (for example :func:`linalg.solvers.jacobi` for an
        SPD ``A``).
    callback : callable, optional
        Called after every iteration with the current iterate, in the caller's
        array type and shape (columns not yet started hold their start).
    check_every : int
        Test the residual estimates against the tolerance every this many
        iterations (and at ``maxiter``). On a device each test is a host
        synchronization; a column may then run up to ``check_every - 1``
        iterations past its tolerance.
    warn : bool
        Emit :class:`linalg.ConvergenceWarning` if a column did not converge.
    engine : {"auto", "reference"}, optional
        Engine (see :func:`linalg.engines`).

    Returns
    -------
    SolveResult
        ``x``, ``converged``, ``n_iter``, ``residual_norm`` (the true
        ``||b - (A - shift I) x||``, recomputed from the returned ``x``),
        ``history`` (the recurrence's residual-norm estimate after every
        iteration) and ``info``: ``engine`` and ``stop_reason``
        (``"converged"``, ``"maxiter"``, ``"stagnated"`` or ``"singular"``; a
        list per column when ``b`` is 2-D).

    Raises
    ------
    linalg.LinAlgError
        If ``M`` is found not positive definite, or the residual becomes
        non-finite (an operator returned NaN or Inf).

    Notes
    -----
    Without ``M`` the monitored residual is the recurrence's ``phibar``, which
    equals ``||r||``. With ``M``, ``phibar`` is the ``M``-norm of ``r``, so the
    2-norm residual is carried by the short recurrence
    ``r_k = s_k² r_{k-1} - phibar_k c_k q_{k+1}`` instead. When the estimate
    meets the tolerance, the true residual is computed; if it misses, the
    iteration goes on with a tighter target for the estimate, and stops
    (``"stagnated"``) once the true residual no longer decreases between two
    such checks: the attainable accuracy, about ``eps cond(A) ||b||``, is
    reached.

    A column stops early, not converged, when the projected tridiagonal
    matrix looks singular (Paige & Saunders' ``Acond`` estimate reaches
    ``1 / eps``). An incompatible singular system cannot converge; its MINRES
    iterates may grow large: use :func:`linalg.solvers.lsqr.lsqr` for least
    squares.

    On device data the ``k`` columns iterate together on ``(n, k)`` blocks, the
    recurrence scalars stay on the device, and a stopped column is frozen in
    the block rather than removed. The host looks every ``check_every``
    iterations (one transfer of ``O(k)`` numbers, plus a true residual for the
    columns whose estimate met its goal); NaN or an indefinite ``M`` is then
    reported "at or before" that iteration. ``engine`` may only be "auto" or
    "reference" there: the iteration is array-API code run by the data's
    library.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.solvers import minres
    >>> A = np.array([[2.0, 1.0], [1.0, -3.0]])  # symmetric indefinite
    >>> res = minres(A, np.array([1.0, 2.0]), rtol=1e-10)
    >>> res.converged, np.allclose(A @ res.x, [1.0, 2.0])
    (True, True)
    """
    check_options(rtol=rtol, atol=atol, maxiter=maxiter, callback=callback, warn=warn)
    shift = check_real(shift, "shift")
    check_int(check_every, "check_every", low=1)
    if array_kind(b).via_namespace:
        from linalg.solvers._minres_device import device_minres

        options = {"x0": x0, "shift": shift, "rtol": rtol, "atol": atol, "maxiter": maxiter}
        options |= {"M": M, "callback": callback, "check_every": check_every, "warn": warn}
        return device_minres(A, b, **options, engine=engine)
    system = prepare_system(A, b, x0=x0, M=M)
    impl = select("solvers.minres", engine=engine, kind=NUMPY, dtype=system.dtype)
    column = impl.load()
    op = system.A if shift == 0.0 else _Shifted(system.A, shift)
    B = system.B
    maxiter = 5 * B.shape[0] if maxiter is None else maxiter
    targets = np.maximum(rtol * column_norms(B), atol)
    X = np.zeros(B.shape, B.dtype) if system.X0 is None else system.X0.astype(B.dtype)

    def solve(j: int, watch: Callable | None) -> tuple:
        x0_j = None if system.X0 is None else X[:, j].copy()
        return column(op, B[:, j], x0_j, system.M, targets[j], maxiter, check_every, watch)

    outcome = by_column(solve, X, callback_caller(callback, system))
    _, n_iter, rnorm, histories, reasons = outcome
    history = stack_histories(histories)
    return minres_result(system, X, reasons, n_iter, rnorm, history, impl.engine, warn)


def minres_result(
    system: CallerShape,
    X: Any,
    reasons: list[str],
    n_iter: Any,
    rnorm: Any,
    history: np.ndarray,
    engine: str,
    warn: bool,
) -> SolveResult:
    """The :class:`SolveResult` of the host and device solvers alike."""
    return finish(
        system,
        X,
        converged=np.array([reason == "converged" for reason in reasons]),
        n_iter=np.asarray(n_iter, dtype=np.int64),
        residual_norm=np.asarray(rnorm, dtype=np.float64),
        history=history,
        info={"engine": engine, "stop_reason": reasons[0] if system.vector else reasons},
        warn=warn,
        solver="minres" if "singular" not in reasons else "minres (A - shift I looks singular)",
    )


def check_spd(beta2: Any, when: str) -> None:
    """Raise if ``rᵀ M r < 0`` (for some column): ``M`` is not positive definite."""
    values = np.atleast_1d(beta2)
    if (values < 0.0).any():
        value = float(values[values < 0.0][0])
        raise LinAlgError(
            f"minres: the preconditioner M is not positive definite (rᵀ M r = {value:.3g} < 0 "
            f"{when}); M must be symmetric positive definite"
        )


def _minres_column(
    A: Operator,
    b: np.ndarray,
    x0: np.ndarray | None,
    M: Operator | None,
    target: float,
    maxiter: int,
    check_every: int,
    callback: Callable | None,
) -> tuple[np.ndarray, bool, int, float, list[float], str]:
    """Preconditioned MINRES on one right-hand side.

    Returns ``(x, converged, n_iter, true residual norm, estimate history,
    stop reason)``.
    """
    x = np.zeros_like(b) if x0 is None else x0
    r = b.copy() if x0 is None else b - A.matvec(x)
    rnorm = norm(r)
    history = [rnorm]
    check_residual_finite(rnorm, 0, "minres")
    if rnorm <= target:
        return x, True, 0, rnorm, history, "converged"
    y = r if M is None else M.matvec(r)
    beta2 = dot(r, y)
    check_spd(beta2, "at iteration 0")
    beta, old_beta = math.sqrt(beta2), 0.0
    r1, r2 = np.zeros_like(r), r
    w1, w2 = np.zeros_like(r), np.zeros_like(r)
    res = None if M is None else r.copy()
    phibar, cs, sn, dbar, eps = beta, -1.0, 0.0, 0.0, 0.0
    gmax, gmin, condlim = 0.0, math.inf, 1.0 / np.finfo(b.dtype).eps
    goal, reason = target, "maxiter"
    for k in range(1, maxiter + 1):
        # Lanczos: A v_k = beta_{k+1} q_{k+1} + alpha_k q_k + beta_k q_{k-1}.
        v = y / beta
        y = A.matvec(v)
        if k > 1:
            y = y - (beta / old_beta) * r1
        alpha = dot(v, y)
        y = y - (alpha / beta) * r2
        r1, r2 = r2, y
        y = r2 if M is None else M.matvec(r2)
        beta2 = dot(r2, y)
        check_spd(beta2, f"at iteration {k}")
        old_beta, beta = beta, math.sqrt(max(beta2, 0.0))
        # QR of the tridiagonal matrix: old rotations, then a new one.
        old_eps = eps
        delta, gbar = cs * dbar + sn * alpha, sn * dbar - cs * alpha
        eps, dbar = sn * beta, -cs * beta
        gamma = math.hypot(gbar, beta)
        check_residual_finite(gamma, k, "minres")
        gmax, gmin = max(gmax, gamma), min(gmin, gamma)
        if gmax >= condlim * gmin:
            reason = "singular"  # the projected matrix (Paige & Saunders' Acond) is singular
            break
        cs, sn = gbar / gamma, beta / gamma
        phi, phibar = cs * phibar, sn * phibar
        w1, w2 = (v - old_eps * w2 - delta * w1) / gamma, w1
        x = x + phi * w1
        if res is None:
            estimate = phibar
        else:
            coef = phibar * cs / beta if beta > 0.0 else 0.0
            res = sn * sn * res - coef * r2
            estimate = norm(res)
        history.append(estimate)
        check_residual_finite(estimate, k, "minres")
        if callback is not None:
            callback(x)
        testing = k % check_every == 0 or k == maxiter or beta == 0.0  # last chance at beta = 0
        if estimate <= goal and testing:
            checked, rnorm = rnorm, norm(b - A.matvec(x))
            if rnorm <= target:
                return x, True, k, rnorm, history, "converged"
            if rnorm >= checked:
                return x, False, k, rnorm, history, "stagnated"
            goal = estimate * target / rnorm
        if beta == 0.0:  # invariant subspace: the estimate is exact, yet the check failed
            reason = "stagnated"
            break
    return x, False, len(history) - 1, norm(b - A.matvec(x)), history, reason
