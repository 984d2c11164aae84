"""Block conjugate gradients on data that lives off the host (CuPy, GPU tensors).

The host solver (``_cg.py``) tests every column after every iteration and
drops converged columns from the block: cheap on a CPU, where the residual
norms are already in host memory. On a GPU each of those tests is a device
synchronization. Here the iteration runs without one: every quantity stays a
device array, a converged column is frozen by masking its step lengths to 0
rather than compacted away, and the host looks at the residual norms only
every ``check_every`` iterations (and at the end). The recurrences per column
are the host solver's, so a column takes the same number of iterations when
``check_every = 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from linalg._core.results import LinAlgError
from linalg.solvers._common import finish
from linalg.solvers._device import DeviceSystem, check_engine, column_dots, fetch, prepare

__all__ = ["device_cg"]


def device_cg(
    A: Any,
    b: Any,
    *,
    x0: Any,
    rtol: float,
    atol: float,
    maxiter: int | None,
    M: Any,
    callback: Callable | None,
    check_every: int,
    warn: bool,
    engine: str | None,
) -> Any:
    """:func:`~linalg.solvers.cg` for ``b`` off the host (options already checked)."""
    check_engine(engine, "cg", b)
    system = prepare(A, b, x0, M)
    maxiter = 10 * system.B.shape[0] if maxiter is None else maxiter
    X, converged, n_iter, history = _iterate(
        system, rtol=rtol, atol=atol, maxiter=maxiter, check_every=check_every, callback=callback
    )
    return finish(
        system,
        X,
        converged=converged,
        n_iter=n_iter,
        residual_norm=history[-1],
        history=history,
        info={"engine": "reference", "check_every": check_every},
        warn=warn,
        solver="cg",
    )


def _iterate(
    system: DeviceSystem,
    *,
    rtol: float,
    atol: float,
    maxiter: int,
    check_every: int,
    callback: Callable | None,
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """The block iteration; ``X`` on the device, the rest on the host."""
    xp, B, device = system.xp, system.B, system.device
    k = B.shape[1]
    X = system.start()
    R = B if system.X0 is None else system.residual(X)
    rr = column_dots(xp, R, R)
    bb, rr0 = fetch(xp, column_dots(xp, B, B), rr)
    target = np.maximum(rtol * np.sqrt(bb), atol)
    converged = np.sqrt(rr0) <= target
    active = xp.asarray(~converged, device=device)
    n_iter = xp.zeros(k, dtype=xp.int64, device=device)
    zero = xp.zeros(k, dtype=xp.float64, device=device)
    one, infinity = zero + 1.0, zero + np.inf
    history, worst = [rr], infinity
    Z = R if system.M is None else system.M.matmat(R)
    rz = column_dots(xp, R, Z)
    P, iteration = Z, 0
    while not converged.all() and iteration < maxiter:
        iteration += 1
        Q = system.A.matmat(P)
        pq = column_dots(xp, P, Q)
        moving = active & (rz > 0)  # an exactly solved column has rz = 0 and P = 0
        worst = xp.minimum(worst, xp.where(moving, pq, infinity))
        step = moving & (pq > 0)
        alpha = xp.astype(xp.where(step, rz / xp.where(step, pq, one), zero), B.dtype)
        X = X + P * alpha
        R = R - Q * alpha
        rr = column_dots(xp, R, R)
        n_iter = n_iter + xp.astype(active, xp.int64)
        history.append(rr)
        if callback is not None:
            callback(system.caller_shape(X))
        if iteration % check_every == 0 or iteration == maxiter:
            curvature, rr_now = fetch(xp, worst, rr)  # the host synchronization
            _check(curvature, rr_now, iteration)
            converged |= np.sqrt(rr_now) <= target
            active = xp.asarray(~converged, device=device)
        Z = R if system.M is None else system.M.matmat(R)
        rz_new = column_dots(xp, R, Z)
        going = active & (rz > 0)
        beta = xp.astype(xp.where(going, rz_new / xp.where(going, rz, one), zero), B.dtype)
        P = Z + P * beta
        rz = rz_new
    n_iter, history = fetch(xp, n_iter, xp.stack(history))
    return X, converged, n_iter.astype(np.int64), np.sqrt(history)


def _check(curvature: np.ndarray, rr: np.ndarray, iteration: int) -> None:
    """Raise where a column met a non-positive curvature or a non-finite residual."""
    if not np.isfinite(rr).all() or np.isnan(curvature).any():
        raise LinAlgError(
            f"cg: a non-finite value appeared at or before iteration {iteration}; "
            "the operator A (or M) returned NaN or Inf"
        )
    if (curvature <= 0).any():
        value = float(curvature[curvature <= 0][0])
        raise LinAlgError(
            f"cg: A is not positive definite (a curvature pᵀAp = {value:.3g} <= 0 at or "
            f"before iteration {iteration}); use minres for symmetric indefinite systems"
        )
