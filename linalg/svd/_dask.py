"""Randomized SVD of a dask array, the passes over ``A`` run by dask.

The same iteration as the in-memory :func:`~linalg.svd.randomized_svd`, laid
out for a matrix whose rows are spread over a cluster:

* the tall blocks ``Y = A V`` (``m × b``) are never stored: each is computed
  chunk by chunk inside the TSQR (:func:`dask.array.linalg.tsqr`) that
  orthonormalizes it, and only that orthonormal ``Q`` is persisted on the
  workers (``b`` columns at a time for subspace iteration);
* the short blocks ``Z = Aᵀ Q`` (``n × b``), the projected matrix ``B = Qᵀ A``
  and its SVD are collected: they are ``(k + p)``-sized;
* the error estimate's probes ``A ω`` are never stored either: the first pass
  keeps their squared norms, and ``Qᵀ A ω = B ω`` is known in memory;
* ``U = Q X`` stays a dask array (persisted, or lazy with ``compute=False``).

Subspace iteration keeps the latest block. Block Krylov keeps every block:
each new ``V`` is orthonormalized against the kept ones in memory, and each
new ``Q`` against the kept ones by a TSQR of ``[Q₀, …, Q_j, Y]``, so the
basis stays orthonormal to rounding (block Lanczos with full
reorthogonalization). ``B = Qᵀ A`` then costs one more pass. Both
span the same spaces as the in-memory methods, so the results agree to rounding.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from linalg._core.random import as_random_stream
from linalg._core.validate import check_bool
from linalg.sketch._dask import check_dask_matrix, persist
from linalg.sketch._kinds import make_sketch
from linalg.svd._randomized import (
    _MIN_BLOCKS,
    _PROBE_FACTOR,
    _PROBES,
    _choose,
    _Plan,
    _tail,
    make_plan,
)
from linalg.svd._result import SVDResult, extreme_signs

__all__ = ["dask_randomized_svd"]


def dask_randomized_svd(
    A: Any,
    k: Any,
    *,
    oversample: Any,
    n_iter: Any,
    method: Any,
    sketch: Any,
    normalizer: Any,
    tol: Any,
    rng: Any,
    warn: Any,
    engine: Any,
    compute: Any,
) -> SVDResult:
    """:func:`~linalg.svd.randomized_svd` of a dask array (see its ``compute``)."""
    dtype = check_dask_matrix(A, "A")
    plan, _ = make_plan(A.shape, k, oversample, n_iter, method, normalizer, tol, warn, engine)
    if method == "lanczos" or tol is not None:
        raise ValueError(
            "method='lanczos' and tol are not available for dask arrays: use method="
            "'subspace', 'block_krylov' or 'auto' with a fixed k"
        )
    if normalizer not in ("auto", "qr"):
        raise ValueError(f"normalizer must be 'auto' or 'qr' for dask arrays, got {normalizer!r}")
    compute = check_bool(compute, "compute")
    A = A.astype(dtype, copy=False)
    sketch_stream, probe_stream = as_random_stream(rng).spawn(2)
    S = make_sketch(sketch, plan.b, A.shape[1], rng=sketch_stream, dtype=dtype, engine=engine)
    if plan.method != "subspace" and plan.blocks_that_fit < _MIN_BLOCKS:
        Q, B, error, passes, info = _dense(A, plan)
    else:
        probes = probe_stream.normal((A.shape[1], _PROBES), dtype=dtype)
        Q, B, error, passes, info = _iterate(A, S, probes, plan)
    X, s, Wt = np.linalg.svd(B, full_matrices=False)
    rank = plan.k
    error_estimate = math.hypot(error, _tail(s, rank))
    return _result(Q, X[:, :rank], s[:rank], Wt[:rank], error_estimate, passes, info, compute)


def _new_block(bases: list, Y: Any) -> Any:
    """An orthonormal basis of the part of the tall block ``Y`` outside the span of
    ``bases``: the last columns of a TSQR of ``[*bases, Y]`` (orthogonal to the
    others to rounding however much of ``Y`` they hold). Lazy: ``Y`` is computed
    chunk by chunk inside the TSQR and never stored."""
    import dask.array as da

    Q = da.linalg.tsqr(da.concatenate([*bases, Y], axis=1).rechunk({1: -1}))[0]
    return Q[:, -Y.shape[1] :]


def _collect(x: Any) -> np.ndarray:
    """A small product of ``A``, collected; a NaN or Inf in it came from ``A``."""
    value = np.asarray(x.compute())
    if not np.isfinite(value).all():
        raise ValueError("A contains NaN or Inf (or its products overflow)")
    return value


def _first_pass(A: Any, S: Any, probes: np.ndarray, b: int) -> tuple[list, np.ndarray]:
    """``[Q]`` for the sketch's block ``A Sᵀ`` (persisted) and the probes' ``‖A ω‖²``,
    from one pass over ``A``. Only the returned list refers to ``Q``, so
    subspace iteration frees it when it moves on."""
    first = A @ np.hstack([S.T.todense().astype(A.dtype), probes])
    basis, probe_norms = persist(_new_block([], first[:, :b]), (first[:, b:] ** 2).sum(axis=0))
    return [basis], probe_norms.compute()


def _iterate(A: Any, S: Any, probes: np.ndarray, plan: _Plan) -> tuple:
    """Block Golub–Kahan on ``A``: the basis ``Q``, ``B = Qᵀ A``, the probes'
    residual norm, the passes and the info.

    The first pass multiplies ``A`` by the sketch and the probes together: the
    sketch's columns go into the first TSQR, the probes' only into their squared
    norms ``‖A ω‖²``. The residual ``‖(I − Q Qᵀ) A ω‖² = ‖A ω‖² − ‖B ω‖²`` then
    needs no stored ``A ω`` (rounding, ``b ε ‖A ω‖²``, is added to keep it a bound).
    """
    import dask.array as da

    b = plan.b
    bases, probe_norms = _first_pass(A, S, probes, b)
    method = plan.method
    keep = method != "subspace"
    q = plan.iterations("block_krylov" if method == "auto" else method)
    passes, step, V = 1, 0, np.empty((A.shape[1], 0), dtype=A.dtype)
    while not (step == q and keep):
        Z = _collect(A.T @ bases[-1])
        passes += 1
        if method == "auto":
            method = _choose(np.linalg.svd(Z, compute_uv=False), plan)
            keep = method != "subspace"
            q = plan.iterations(method)
            if step == q and keep:
                break
        if step == q:
            B = Z.T
            break
        V = np.linalg.qr(np.hstack([V, Z]) if keep else Z)[0]
        bases = bases if keep else []  # subspace: the old block is freed before the new one
        bases = [*bases, persist(_new_block(bases, A @ V[:, -b:]))]
        passes += 1
        step += 1
    Q = da.concatenate(bases, axis=1)
    if keep:
        B = _collect(Q.T @ A)
        passes += 1
    residual = probe_norms - ((B @ probes) ** 2).sum(axis=0)
    rounding = b * np.finfo(A.dtype).eps * probe_norms
    error = _PROBE_FACTOR * float(np.sqrt(np.maximum(residual, 0.0) + rounding).max())
    info = {"method": method, "n_iter": step, "block_size": b, "rank": plan.k}
    info |= {"stop": "iterations done"}
    return Q, B, error, passes, info


def _dense(A: Any, plan: _Plan) -> tuple:
    """The exact SVD when fewer than three blocks fit in ``min(m, n)``: ``B = R``
    of a TSQR of a tall ``A`` (its few columns in one chunk), or ``A`` itself
    when it has the few rows (basis: the identity)."""
    import dask.array as da

    m, n = A.shape
    if m >= n:
        basis, R = da.linalg.tsqr(A.rechunk({1: -1}))
        B = _collect(R)
    else:
        basis, B = da.eye(m, chunks=-1, dtype=A.dtype), _collect(A)
    info = {"method": "dense", "n_iter": 0, "block_size": n, "rank": plan.k, "stop": "exact"}
    return basis, B, 0.0, 1, info


def _result(
    Q: Any,
    X: np.ndarray,
    s: np.ndarray,
    Vt: np.ndarray,
    error: float,
    passes: int,
    info: dict,
    compute: bool,
) -> SVDResult:
    """``U = Q X`` with the signs of ``svd_flip`` (found in one pass over ``Q X``)."""
    import dask

    U = Q @ X.astype(Q.dtype)
    high, low = dask.compute(U.max(axis=0), U.min(axis=0))
    signs = extreme_signs(high, low).astype(Q.dtype)
    U = Q @ (X * signs).astype(Q.dtype)
    if compute:
        U = persist(U)
    return SVDResult(
        U,
        s,
        Vt * signs[:, None],
        error_estimate=error,
        n_passes=passes,
        converged=True,
        info=info,
    )
