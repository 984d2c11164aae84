"""LSQR on data that lives off the host (CuPy, GPU tensors), all columns at once.

The host solver (``_lsqr.py``) runs one column after another. Here the ``k``
columns iterate together: the Golub–Kahan vectors are blocks (``(m, k)`` and
``(n, k)``, one product with ``K = [A; damp I] M`` and one with ``Kᵀ`` per
iteration), every scalar of the bidiagonalization and of its rotations is a
float64 device array of shape ``(k,)``, and Paige & Saunders' stopping tests
run on the device at every iteration. A column that stops is frozen: its
solution no longer changes and its divisions are by infinity, so its vectors
become zeros. Its answer is therefore the host's whatever ``check_every`` is:
that only sets how often the host asks whether every column has stopped (and
whether a value became non-finite), in one transfer of ``O(k)`` numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from linalg._core.namespace import numpy_dtype
from linalg._core.results import SolveResult
from linalg.solvers._common import check_residual_finite
from linalg.solvers._device import (
    DeviceSystem,
    check_engine,
    column_norms,
    fetch,
    prepare,
    scaled,
)
from linalg.solvers._lsqr import lsqr_result

__all__ = ["device_lsqr"]

# The stop reasons, as codes on the device: REASONS[code] (a column still
# running at the end, code 0, stopped at maxiter).
REASONS = ("maxiter", "residual", "least squares", "conlim")
RUNNING, RESIDUAL, LEAST_SQUARES, CONLIM = range(4)


class _Problem:
    """``K = [A; damp I] M`` on blocks (rows ``damp I`` only when ``damp > 0``)."""

    def __init__(self, system: DeviceSystem, damp: float) -> None:
        self.system, self.damp = system, damp

    def matmat(self, V: Any) -> Any:
        system = self.system
        Z = V if system.M is None else system.M.matmat(V)
        AZ = system.A.matmat(Z)
        return system.xp.concat([AZ, self.damp * Z], axis=0) if self.damp > 0 else AZ

    def rmatmat(self, U: Any) -> Any:
        system = self.system
        m = system.A.shape[0]
        T = system.A.rmatmat(U[:m, :])
        if self.damp > 0:
            T = T + self.damp * U[m:, :]
        return T if system.M is None else system.M.rmatmat(T)


def device_lsqr(
    A: Any,
    b: Any,
    *,
    x0: Any,
    damp: float,
    atol: float,
    btol: float,
    conlim: float,
    maxiter: int | None,
    M: Any,
    callback: Callable | None,
    check_every: int,
    warn: bool,
    engine: str | None,
) -> SolveResult:
    """:func:`~linalg.solvers.lsqr` for ``b`` off the host (options already checked)."""
    check_engine(engine, "lsqr", b)
    system = prepare(A, b, x0, M, square=False)
    xp, B = system.xp, system.B
    maxiter = 2 * system.A.shape[1] if maxiter is None else maxiter
    start = system.start()
    rhs = B if system.X0 is None else system.residual(start)
    if damp > 0:
        rhs = xp.concat([rhs, -damp * start], axis=0)

    def to_x(Y: Any) -> Any:
        return start + (Y if system.M is None else system.M.matmat(Y))

    watch = None if callback is None else (lambda Y: callback(system.caller_shape(to_x(Y))))
    limits = (atol, btol, conlim, float(np.finfo(numpy_dtype(B.dtype)).eps))
    Y, *outcome = _iterate(system, _Problem(system, damp), rhs, limits, maxiter, check_every, watch)
    X = to_x(Y)
    R = system.residual(X)
    norms = fetch(xp, column_norms(xp, R), column_norms(xp, system.A.rmatmat(R) - damp**2 * X))
    return lsqr_result(system, X, *outcome, *norms, engine="reference", warn=warn)


def _iterate(
    system: DeviceSystem,
    K: _Problem,
    rhs: Any,
    limits: tuple[float, float, float, float],
    maxiter: int,
    check_every: int,
    callback: Callable | None,
) -> tuple[Any, list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """LSQR for ``min ||K y - rhs||`` from ``y = 0``, every column at once.

    Returns ``(Y, stop reasons, n_iter, residual estimate history, anorm, acond)``,
    ``Y`` on the device and the rest on the host.
    """
    xp, device = system.xp, system.device
    dtype, k = rhs.dtype, rhs.shape[1]
    zeros = xp.zeros(k, dtype=xp.float64, device=device)
    infinity = zeros + np.inf
    Y = xp.zeros((system.A.shape[1], k), dtype=dtype, device=device)
    beta = bnorm = column_norms(xp, rhs)
    U = rhs / xp.astype(xp.where(beta != 0.0, beta, infinity), dtype)
    V = K.rmatmat(U)
    alpha = column_norms(xp, V)
    V = V / xp.astype(xp.where(alpha != 0.0, alpha, infinity), dtype)
    n_iter = xp.zeros(k, dtype=xp.int64, device=device)
    code = xp.where(beta == 0.0, RESIDUAL, xp.where(alpha == 0.0, LEAST_SQUARES, n_iter))
    running = code == RUNNING
    finite = xp.isfinite(bnorm) & (xp.isfinite(alpha) | (beta == 0.0))
    if not _any_running(xp, running, finite, 0):
        return _outcome(xp, Y, code, n_iter, [bnorm], zeros, zeros)
    W = V
    phibar, rhobar = beta, alpha
    anorm2 = ddnorm = anorm = acond = zeros
    bnorm = xp.where(running, bnorm, infinity)
    atol, btol, conlim, eps = limits
    history = [beta]
    for iteration in range(1, maxiter + 1):
        # Golub–Kahan: beta u = K v - alpha u, alpha v = Kᵀ u - beta v.
        U = K.matmat(V) - scaled(xp, U, alpha)
        beta = column_norms(xp, U)
        U = U / xp.astype(xp.where(running & (beta > 0.0), beta, infinity), dtype)
        anorm2 = anorm2 + (alpha * alpha + beta * beta)
        V = K.rmatmat(U) - scaled(xp, V, beta)
        alpha = column_norms(xp, V)
        V = V / xp.astype(xp.where(running & (alpha > 0.0), alpha, infinity), dtype)
        # A rotation eliminates beta from the lower bidiagonal matrix.
        rho = xp.where(running, xp.hypot(rhobar, beta), infinity)
        c, s = rhobar / rho, beta / rho
        theta, rhobar = s * alpha, -c * alpha
        phi, new_phibar = c * phibar, s * phibar
        ddnorm = ddnorm + column_norms(xp, W) ** 2 / rho**2
        Y = xp.where(running, Y + scaled(xp, W, phi / rho), Y)
        W = V - scaled(xp, W, theta / rho)
        phibar = xp.where(running, new_phibar, phibar)
        history.append(phibar)
        finite = finite & (xp.isfinite(phibar * alpha) | ~running)
        if callback is not None:
            callback(Y)
        anorm = xp.where(running, xp.sqrt(anorm2), anorm)
        acond = xp.where(running, xp.sqrt(anorm2 * ddnorm), acond)
        n_iter = n_iter + xp.astype(running, xp.int64)
        # Paige & Saunders' tests 1-3, each also passed at machine precision.
        # (||Kᵀ r|| = phibar alpha |c|: test2 = ||Kᵀ r|| / (||K|| ||r||))
        test1 = phibar / bnorm
        gradient = alpha * xp.abs(c) / xp.where(running, anorm, infinity)
        test2 = xp.where(phibar > 0.0, gradient, zeros)
        xscale = anorm * column_norms(xp, Y) / bnorm
        residual = (test1 <= btol + atol * xscale) | (test1 <= eps * (1.0 + xscale))
        least_squares = test2 <= max(atol, eps)
        ill = acond >= min(conlim, 1.0 / eps)
        reason = xp.where(least_squares, LEAST_SQUARES, xp.where(ill, CONLIM, code))
        code = xp.where(running, xp.where(residual, RESIDUAL, reason), code)
        running = code == RUNNING
        looking = iteration % check_every == 0 or iteration == maxiter
        if looking and not _any_running(xp, running, finite, iteration):
            break
    return _outcome(xp, Y, code, n_iter, history, anorm, acond)


def _any_running(xp: Any, running: Any, finite: Any, iteration: int) -> bool:
    """The host's look (one transfer): raise on a non-finite value, else whether
    some column still runs."""
    running, finite = fetch(xp, running, finite)
    if not finite.all():
        check_residual_finite(np.nan, iteration, "lsqr", at_or_before=iteration > 0)
    return bool(running.any())


def _outcome(
    xp: Any, Y: Any, code: Any, n_iter: Any, history: list[Any], anorm: Any, acond: Any
) -> tuple[Any, list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    code, n_iter, history, anorm, acond = fetch(xp, code, n_iter, xp.stack(history), anorm, acond)
    n_iter = n_iter.astype(np.int64)
    reasons = [REASONS[int(c)] for c in code]
    return Y, reasons, n_iter, history[: int(n_iter.max()) + 1], anorm, acond
