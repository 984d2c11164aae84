"""Restarted GMRES for general square systems, after Saad & Schultz (1986)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular

from linalg._core.engines import register, select
from linalg._core.namespace import NUMPY, array_kind
from linalg._core.operators import Operator
from linalg._core.results import SolveResult
from linalg._core.validate import check_int
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

__all__ = ["gmres"]

register("solvers.gmres", "reference", "linalg.solvers._gmres:_gmres_column")


def gmres(
    A: Any,
    b: Any,
    *,
    x0: Any = None,
    restart: int = 20,
    rtol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    M: Any = None,
    callback: Callable | None = None,
    check_every: int = 1,
    warn: bool = True,
    engine: str | None = None,
) -> SolveResult:
    """Solve ``A x = b`` for a general square ``A`` by restarted GMRES.

    Each cycle builds an orthonormal Krylov basis of at most ``restart``
    vectors by the Arnoldi process (modified Gram–Schmidt), minimizes the
    residual over it with Givens rotations, updates ``x`` and restarts from
    the true residual. With ``b`` of shape ``(n, k)`` each column is solved
    on its own and reported on its own.

    Parameters
    ----------
    A : array_like, sparse matrix, LinearOperator or callable
        The matrix, ``(n, n)``. A callable ``v -> A v`` receives vectors of
        the caller's array type.
    b : array_like, shape (n,) or (n, k)
        Right-hand side(s). NumPy, or torch / JAX tensors on the CPU. A CuPy
        array or GPU tensor (or an array of another array-API library) is
        solved where it lives, all columns together, with ``A`` and ``M``
        dense arrays of the same library, cupyx sparse matrices, callables or
        Operators whose products take its blocks (see Notes).
    x0 : array_like, optional
        Starting guess, shaped like ``b`` (default zeros).
    restart : int
        Krylov basis size per cycle (capped at ``n``).
    rtol, atol : float
        Column ``j`` has converged when
        ``||b_j - A x_j|| <= max(rtol * ||b_j||, atol)``, tested on the true
        residual at the end of a cycle.
    maxiter : int, optional
        Limit on the total number of inner (Arnoldi) iterations per column,
        over all cycles (default ``10 n``).
    M : array_like, sparse matrix, LinearOperator, callable or Operator, optional
        Right preconditioner, an approximation of ``A⁻¹``: GMRES solves
        ``A M y = b`` and returns ``x = M y``, so the residual it minimizes
        and tests is the unpreconditioned ``b - A x``.
    callback : callable, optional
        Called after every cycle (restart) with the current iterate, in the
        caller's array type and shape (columns not yet started hold their
        start).
    check_every : int
        On device data, how often (in inner iterations) the host asks whether
        every column has ended its cycle; each question is a synchronization.
        The tests themselves run on the device at every iteration, so the
        answer does not depend on ``check_every``; the host path tests every
        iteration.
    warn : bool
        Emit :class:`linalg.ConvergenceWarning` if a column did not converge.
    engine : {"auto", "reference"}, optional
        Engine (see :func:`linalg.engines`).

    Returns
    -------
    SolveResult
        ``x``, ``converged``, ``n_iter`` (inner iterations), ``residual_norm``
        (the true ``||b - A x||`` of the returned ``x``), ``history`` (the
        rotations' residual-norm estimate after every inner iteration) and
        ``info``: ``engine``, ``restart``, ``n_cycles`` and ``stop_reason``
        (``"converged"``, ``"maxiter"`` or ``"stagnated"``: a cycle did not
        reduce the true residual, at the attainable accuracy or where ``A M``
        is singular on the Krylov space), per column (arrays or a list) when
        ``b`` is 2-D.

    Raises
    ------
    linalg.LinAlgError
        If the residual becomes non-finite (an operator returned NaN or Inf).

    Notes
    -----
    On device data the ``k`` columns run their cycles together on ``(n, k)``
    blocks: the Krylov basis, the Arnoldi products and the Givens rotations
    (``O(k)`` numbers per entry of the Hessenberg matrix) stay on the device,
    and a column whose cycle ends early is frozen in the block. The host sees
    the device at the end of each cycle, in one transfer of the rotated
    Hessenberg matrices (``restart² k`` numbers), where it solves the small
    triangular systems and sends back the ``restart × k`` coefficients of the
    update, and then once more for the true residual norms; and every
    ``check_every`` inner iterations, one boolean. A non-finite value is
    reported at the end of the cycle ("at or before" that iteration).
    ``engine`` may only be "auto" or "reference" there.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.solvers import gmres
    >>> A = np.array([[3.0, 1.0], [-1.0, 2.0]])
    >>> res = gmres(A, np.array([1.0, 2.0]), rtol=1e-10)
    >>> res.converged, np.allclose(A @ res.x, [1.0, 2.0])
    (True, True)
    """
    check_options(rtol=rtol, atol=atol, maxiter=maxiter, callback=callback, warn=warn)
    restart = check_int(restart, "restart", low=1)
    check_int(check_every, "check_every", low=1)
    if array_kind(b).via_namespace:
        from linalg.solvers._gmres_device import device_gmres

        options = {"x0": x0, "restart": restart, "rtol": rtol, "atol": atol}
        options |= {"maxiter": maxiter, "M": M, "callback": callback}
        return device_gmres(A, b, **options, check_every=check_every, warn=warn, engine=engine)
    system = prepare_system(A, b, x0=x0, M=M)
    impl = select("solvers.gmres", engine=engine, kind=NUMPY, dtype=system.dtype)
    column = impl.load()
    B = system.B
    n = B.shape[0]
    maxiter = 10 * n if maxiter is None else maxiter
    targets = np.maximum(rtol * column_norms(B), atol)
    X = np.zeros(B.shape, B.dtype) if system.X0 is None else system.X0.astype(B.dtype)

    def solve(j: int, watch: Callable | None) -> tuple:
        x0_j = None if system.X0 is None else X[:, j].copy()
        size = min(restart, n)
        return column(system.A, B[:, j], x0_j, system.M, targets[j], maxiter, size, watch)

    outcome = by_column(solve, X, callback_caller(callback, system))
    _, n_iter, rnorm, histories, cycles, reasons = outcome
    info = {"engine": impl.engine, "restart": restart}
    return gmres_result(system, X, reasons, n_iter, rnorm, histories, cycles, info, warn)


def gmres_result(
    system: CallerShape,
    X: Any,
    reasons: list[str],
    n_iter: Any,
    rnorm: Any,
    histories: list[list[float]],
    cycles: Any,
    info: dict[str, Any],
    warn: bool,
) -> SolveResult:
    """The :class:`SolveResult` of the host and device solvers alike."""
    vector = system.vector
    info |= {
        "n_cycles": int(cycles[0]) if vector else np.array(cycles, dtype=np.int64),
        "stop_reason": reasons[0] if vector else reasons,
    }
    return finish(
        system,
        X,
        converged=np.array([reason == "converged" for reason in reasons]),
        n_iter=np.array(n_iter, dtype=np.int64),
        residual_norm=np.array(rnorm, dtype=np.float64),
        history=stack_histories(histories),
        info=info,
        warn=warn,
        solver="gmres",
    )


def _gmres_column(
    A: Operator,
    b: np.ndarray,
    x0: np.ndarray | None,
    M: Operator | None,
    target: float,
    maxiter: int,
    restart: int,
    callback: Callable | None,
) -> tuple[np.ndarray, bool, int, float, list[float], int, str]:
    """GMRES(restart) on one right-hand side.

    Returns ``(x, converged, n_iter, true residual norm, estimate history,
    number of cycles, stop reason)``.
    """
    x = np.zeros_like(b) if x0 is None else x0
    r = b.copy() if x0 is None else b - A.matvec(x)
    rnorm, previous = norm(r), math.inf
    history = [rnorm]
    total = cycles = 0
    while True:
        check_residual_finite(rnorm, total, "gmres")
        if rnorm <= target:
            return x, True, total, rnorm, history, cycles, "converged"
        if rnorm >= previous:
            return x, False, total, rnorm, history, cycles, "stagnated"
        if total >= maxiter:
            return x, False, total, rnorm, history, cycles, "maxiter"
        dx, steps = _cycle(A, M, r, rnorm, min(restart, maxiter - total), target, history)
        total, cycles = total + steps, cycles + 1
        if dx is None:  # A M annihilated the residual's Krylov space: no progress possible
            return x, False, total, rnorm, history, cycles, "stagnated"
        x = x + dx
        r = b - A.matvec(x)
        rnorm, previous = norm(r), rnorm
        if callback is not None:
            callback(x)


def _cycle(
    A: Operator,
    M: Operator | None,
    r: np.ndarray,
    beta: float,
    size: int,
    target: float,
    history: list[float],
) -> tuple[np.ndarray | None, int]:
    """One Arnoldi cycle from ``r``: the correction ``dx`` and the steps taken."""
    V = np.empty((size + 1, r.size), dtype=r.dtype)
    V[0] = r / beta
    H = np.zeros((size + 1, size))
    rotations = np.zeros((size, 2))
    g = np.zeros(size + 1)
    g[0] = beta
    breakdown = np.finfo(r.dtype).eps
    for j in range(size):
        w = A.matvec(V[j] if M is None else M.matvec(V[j]))
        scale = norm(w)
        for i in range(j + 1):  # modified Gram–Schmidt, in the data's dtype
            H[i, j] = h = dot(w, V[i])
            w = w - h * V[i]
        H[j + 1, j] = h_next = norm(w)  # kept after the rotation: only H's upper triangle is solved
        if not _rotate(H, g, rotations, j):
            history.append(abs(g[j]))
            used = j  # singular projected matrix: column j adds nothing
            break
        history.append(abs(g[j + 1]))
        check_residual_finite(g[j + 1], j + 1, "gmres")
        used = j + 1
        if H[j + 1, j] <= breakdown * scale or abs(g[j + 1]) <= target:
            break  # happy breakdown (A M has an invariant subspace) or converged
        V[j + 1] = w / h_next
    steps = j + 1
    if used == 0:
        return None, steps
    y = solve_triangular(H[:used, :used], g[:used])
    dx = V[:used].T @ y.astype(r.dtype)
    return (dx if M is None else M.matvec(dx)), steps


def _rotate(H: np.ndarray, g: np.ndarray, rotations: np.ndarray, j: int) -> bool:
    """Apply the earlier Givens rotations to column ``j`` of ``H``, then a new one
    that zeroes ``H[j + 1, j]``; update ``g``. False if the column vanishes."""
    for i in range(j):
        c, s = rotations[i]
        H[i, j], H[i + 1, j] = c * H[i, j] + s * H[i + 1, j], c * H[i + 1, j] - s * H[i, j]
    gamma = float(np.hypot(H[j, j], H[j + 1, j]))
    if not gamma > 0.0:
        check_residual_finite(gamma, j + 1, "gmres")
        return False
    c, s = H[j, j] / gamma, H[j + 1, j] / gamma
    rotations[j] = c, s
    H[j, j] = gamma
    g[j], g[j + 1] = c * g[j], -s * g[j]
    return True
