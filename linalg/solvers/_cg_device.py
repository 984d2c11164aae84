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
from dataclasses import dataclass
from typing import Any

import numpy as np

from linalg._core.namespace import ArrayKind, array_kind, common_kind, device_of, to_host
from linalg._core.results import LinAlgError
from linalg._core.validate import float_input, result_dtype
from linalg.solvers._common import finish

__all__ = ["device_cg"]


@dataclass
class _DeviceSystem:
    """``A X = B`` with ``B`` (n, k), ``A`` and ``M`` as block products, in namespace ``xp``."""

    A: Callable[[Any], Any]
    B: Any
    X0: Any
    M: Callable[[Any], Any] | None
    xp: Any
    kind: ArrayKind
    vector: bool


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
    if engine not in (None, "auto", "reference"):
        raise TypeError(
            f"engine {engine!r} has no cg for {array_kind(b)}: use engine='reference' (the "
            "array-API iteration on the data's device) or move the data to the host"
        )
    system = _prepare(A, b, x0, M)
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


def _prepare(A: Any, b: Any, x0: Any, M: Any) -> _DeviceSystem:
    kind = common_kind(A, b, x0, M)
    B, xp, _ = float_input(b, "b", ndim=(1, 2))
    vector = B.ndim == 1
    B = B[:, None] if vector else B
    n = B.shape[0]
    apply_A, dtype_A = _block_product(A, "A", n, xp)
    dtype = result_dtype(B.dtype, dtype_A or B.dtype)
    B = xp.astype(B, getattr(xp, dtype.name), copy=False)
    X0 = None
    if x0 is not None:
        X0 = float_input(x0, "x0", ndim=1 if vector else 2)[0]
        expected = (n,) if vector else tuple(B.shape)
        if tuple(X0.shape) != expected:
            raise ValueError(f"x0 must have shape {expected}, got {tuple(X0.shape)}")
        X0 = xp.astype(X0[:, None] if vector else X0, B.dtype, copy=True)
    apply_M = None if M is None else _block_product(M, "M", n, xp)[0]
    return _DeviceSystem(apply_A, B, X0, apply_M, xp, kind, vector)


def _block_product(A: Any, name: str, n: int, xp: Any) -> tuple[Callable[[Any], Any], Any]:
    """``X -> A X`` for a block ``X`` (n, k), and the dtype ``A`` computes in (None for a
    callable, which computes in the dtype of the vectors it is given)."""
    if callable(A) and not hasattr(A, "shape"):

        def columns(X: Any) -> Any:
            out = []
            for j in range(X.shape[1]):
                column = A(X[:, j])
                if tuple(column.shape) not in ((n,), (n, 1)):
                    shape = tuple(column.shape)
                    raise ValueError(f"{name} returned shape {shape}; expected ({n},)")
                out.append(xp.reshape(column, (n,)))
            return xp.stack(out, axis=1)

        return columns, None
    if type(A).__module__.startswith("cupyx.scipy.sparse"):
        matrix = A  # a cupyx sparse matrix: multiplied with @, on its device
    else:
        matrix = float_input(A, name, ndim=2)[0]
    if tuple(matrix.shape) != (n, n):
        raise ValueError(f"{name} must have shape {(n, n)} to match b, got {tuple(matrix.shape)}")
    return (lambda X: matrix @ X), matrix.dtype


def _column_dots(xp: Any, X: Any, Y: Any) -> Any:
    """``xᵀ y`` per column, in float64 (as the host solver's kernels)."""
    return xp.sum(xp.astype(X, xp.float64) * xp.astype(Y, xp.float64), axis=0)


def _iterate(
    system: _DeviceSystem,
    *,
    rtol: float,
    atol: float,
    maxiter: int,
    check_every: int,
    callback: Callable | None,
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """The block iteration; ``X`` on the device, the rest on the host."""
    xp, B = system.xp, system.B
    k, device = B.shape[1], device_of(B)
    X = xp.zeros_like(B) if system.X0 is None else system.X0
    R = B if system.X0 is None else B - system.A(X)
    target = np.maximum(rtol * np.sqrt(to_host(_column_dots(xp, B, B))), atol)
    rr = _column_dots(xp, R, R)
    converged = np.sqrt(to_host(rr)) <= target
    active = xp.asarray(~converged, device=device)
    n_iter = xp.zeros(k, dtype=xp.int64, device=device)
    zero = xp.zeros(k, dtype=xp.float64, device=device)
    one, infinity = zero + 1.0, zero + np.inf
    history, worst = [rr], infinity
    Z = R if system.M is None else system.M(R)
    rz = _column_dots(xp, R, Z)
    P, iteration = Z, 0
    while not converged.all() and iteration < maxiter:
        iteration += 1
        Q = system.A(P)
        pq = _column_dots(xp, P, Q)
        moving = active & (rz > 0)  # an exactly solved column has rz = 0 and P = 0
        worst = xp.minimum(worst, xp.where(moving, pq, infinity))
        step = moving & (pq > 0)
        alpha = xp.astype(xp.where(step, rz / xp.where(step, pq, one), zero), B.dtype)
        X = X + P * alpha
        R = R - Q * alpha
        rr = _column_dots(xp, R, R)
        n_iter = n_iter + xp.astype(active, xp.int64)
        history.append(rr)
        if callback is not None:
            callback(X[:, 0] if system.vector else X)
        if iteration % check_every == 0 or iteration == maxiter:
            _check(to_host(worst), to_host(rr), iteration)  # the host synchronization
            converged |= np.sqrt(to_host(rr)) <= target
            active = xp.asarray(~converged, device=device)
        Z = R if system.M is None else system.M(R)
        rz_new = _column_dots(xp, R, Z)
        going = active & (rz > 0)
        beta = xp.astype(xp.where(going, rz_new / xp.where(going, rz, one), zero), B.dtype)
        P = Z + P * beta
        rz = rz_new
    return X, converged, to_host(n_iter), np.sqrt(to_host(xp.stack(history)))


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
