"""Sketching, leverage scores and least squares on dask arrays, chunk by chunk.

``S @ A`` for a dask ``A`` is the sum over the row chunks ``A[a:b]`` of
``S[:, a:b] @ A[a:b]``: each task draws only its own columns of ``S`` (the
counter-based stream makes them the same numbers whatever the chunking) and
the ``d × k`` partial products are added by a tree reduction, so no task ever
holds more than one chunk of ``A`` and the result equals the in-memory
``S @ A`` to rounding. Dask is imported only here, when a dask array arrives.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from typing import Any

import numpy as np

from linalg._core.namespace import array_kind, to_numpy
from linalg._core.random import as_random_stream
from linalg._core.results import SolveResult
from linalg._core.validate import (
    as_float_array,
    check_bool,
    check_int,
    check_real,
    float_dtype,
    result_dtype,
)
from linalg.sketch._lstsq import (
    check_tall,
    default_maxiter,
    sketch_and_factor,
    warn_if_not_converged,
)

__all__ = [
    "check_dask_matrix",
    "dask_leverage_scores",
    "dask_sketch",
    "dask_sketched_lstsq",
    "dask_transposed_sketch",
    "persist",
    "tall_skinny",
]

# Partial products added per task of the tree reduction of S @ A.
_SPLIT_EVERY = 8


def check_dask_matrix(
    A: Any, name: str, *, ndim: tuple[int, ...] = (2,), device_chunks: bool = False
) -> np.dtype:
    """The float dtype of the dask array ``A``, after checking its shape is known and
    that its chunks are NumPy arrays (or also CuPy ones, with ``device_chunks``)."""
    chunk_type = type(A._meta)
    if not issubclass(chunk_type, np.ndarray) and not (
        device_chunks and chunk_type.__module__.startswith("cupy")
    ):
        where = "NumPy or CuPy" if device_chunks else "NumPy (sketch products S @ A: or CuPy)"
        raise TypeError(
            f"{name} has chunks of type {chunk_type.__module__}.{chunk_type.__name__}; this "
            f"routine takes dask arrays of {where} chunks: convert them chunk by chunk, e.g. "
            f"{name}.map_blocks(cupy.asnumpy) or {name}.map_blocks(lambda c: c.toarray())"
        )
    if A.ndim not in ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim))} dimensions, got {A.ndim}")
    if any(math.isnan(size) for size in A.shape):
        raise ValueError(
            f"{name} has unknown chunk sizes (shape {A.shape}): call "
            f"{name}.compute_chunk_sizes() first"
        )
    if 0 in A.shape:
        raise ValueError(f"{name} must not be empty, got shape {A.shape}")
    return float_dtype(A.dtype, name)


def tall_skinny(A: Any, name: str) -> Any:
    """``A`` as a float dask array TSQR can take: ``m >= n`` and one chunk of columns."""
    dtype = check_dask_matrix(A, name)
    check_tall(A.shape, name)
    if len(A.chunks[1]) > 1:
        raise ValueError(
            f"{name} has {len(A.chunks[1])} chunks along its columns (chunks {A.chunksize}); "
            f"TSQR needs one: rechunk it with {name}.rechunk({{1: -1}})"
        )
    return A.astype(dtype, copy=False)


def persist(*arrays: Any) -> Any:
    """``arrays`` persisted in one graph (shared inputs computed once), waited for:
    a graph submitted while it runs could carry keys of a lazy ``A`` that dask's
    optimizer fused differently (dask issue 9888). One array in, one out."""
    import dask

    arrays = dask.persist(*arrays)
    if "distributed" in sys.modules:
        from distributed import futures_of, wait

        wait(futures_of(arrays))
    return arrays[0] if len(arrays) == 1 else arrays


def _row_starts(chunks: tuple[int, ...]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(chunks)]).astype(np.int64)


def dask_sketch(S: Any, A: Any) -> Any:
    """``S @ A`` for a dask ``A`` of ``S.n`` rows, any chunking: a lazy ``(d, k)`` dask array."""
    import dask.array as da
    from dask.array.utils import meta_from_array

    dtype = np.result_type(S.dtype, check_dask_matrix(A, "A", ndim=(1, 2), device_chunks=True))
    if A.shape[0] != S.n:
        raise ValueError(f"A must have {S.n} rows (the sketch's n), got shape {A.shape}")
    if not isinstance(A._meta, np.ndarray) and S.device_operation is None:
        raise TypeError(
            f"A's chunks are CuPy arrays, and on dask only countsketch / sparse_sign sketch "
            f"CuPy chunks (not {S.kind}): use one of them, or move the chunks to the host "
            "(A.map_blocks(cupy.asnumpy))"
        )
    A2 = A if A.ndim == 2 else A[:, None]
    starts = _row_starts(A2.chunks[0])

    def partial(chunk: np.ndarray, block_id: tuple[int, ...]) -> np.ndarray:
        a = int(starts[block_id[1]])
        return (S[:, a : a + chunk.shape[0]] @ chunk.astype(dtype, copy=False))[:, None, :]

    pieces = da.map_blocks(
        partial,
        A2,
        new_axis=0,
        chunks=((S.d,), (1,) * len(A2.chunks[0]), A2.chunks[1]),
        dtype=dtype,
        meta=meta_from_array(A2, ndim=3, dtype=dtype),  # CuPy chunks give CuPy pieces
    )
    out = pieces.sum(axis=1, split_every=_SPLIT_EVERY)
    return out if A.ndim == 2 else out[:, 0]


def dask_transposed_sketch(S: Any, Y: Any) -> Any:
    """``Sᵀ @ Y`` for a dask ``Y`` of ``S.d`` rows: a lazy ``(n, k)`` array, each row chunk
    drawing its own columns of ``S``."""
    import dask
    import dask.array as da

    dtype = np.result_type(S.dtype, check_dask_matrix(Y, "Y", ndim=(1, 2)))
    if Y.shape[0] != S.d:
        raise ValueError(f"Y must have {S.d} rows (the sketch's d), got shape {Y.shape}")
    whole = Y.astype(dtype).rechunk(-1)
    tail = Y.shape[1:]
    rows = da.core.normalize_chunks("auto", (S.n, *tail), dtype=dtype)[0]
    starts = _row_starts(rows)

    def piece(Ychunk: np.ndarray, a: int, b: int) -> np.ndarray:
        return S[:, a:b].T @ Ychunk

    blocks = [
        da.from_delayed(dask.delayed(piece)(whole, int(a), int(b)), (b - a, *tail), dtype=dtype)
        for a, b in itertools.pairwise(starts)
    ]
    return da.concatenate(blocks, axis=0)


# -- leverage scores ---------------------------------------------------------


def dask_leverage_scores(
    A: Any, *, method: str, sketch: Any, sketch_size: Any, jl_dim: Any, rng: Any, engine: Any
) -> Any:
    """:func:`~linalg.sketch.leverage_scores` of a dask ``A``: a lazy dask array ``(n,)``."""
    from linalg.sketch._leverage import (
        _METHODS,
        _first_sketch,
        _jl_columns,
        _row_norms_squared,
        sketch_transform,
    )

    if method not in _METHODS:
        raise ValueError(f"method must be 'exact' or 'sketch', got {method!r}")
    A = tall_skinny(A, "A")
    n, p = A.shape
    if method == "exact":
        return _exact_scores(A)
    first_stream, jl_stream = as_random_stream(rng).spawn(2)
    first = _first_sketch(sketch, sketch_size, n, p, first_stream, A.dtype, engine)
    sketched = _finite(dask_sketch(first, A).compute(), "A")
    T = sketch_transform(sketched, _jl_columns(jl_dim, n), jl_stream)
    return A.map_blocks(_row_norms_squared, T, drop_axis=1, dtype=T.dtype)


def _finite(x: np.ndarray, name: str) -> np.ndarray:
    """``x``, a collected product of ``name``; a NaN or Inf in it came from ``name``."""
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf (or its products overflow)")
    return x


def _exact_scores(A: Any) -> Any:
    """Row norms² of ``Q U_R[:, :r]`` with ``A = Q R`` by TSQR and ``R = U_R Σ V_Rᵀ``."""
    import dask.array as da

    from linalg.sketch._leverage import numerical_rank

    Q, R = da.linalg.tsqr(A)
    U, s, _ = np.linalg.svd(_finite(R.compute(), "A"))
    r = numerical_rank(s, *A.shape)
    basis = Q if r == A.shape[1] else Q @ U[:, :r].astype(A.dtype)
    return (basis * basis).sum(axis=1)


# -- least squares -----------------------------------------------------------


def dask_sketched_lstsq(
    A: Any,
    b: Any,
    *,
    sketch: Any,
    oversampling: Any,
    rtol: Any,
    maxiter: Any,
    rng: Any,
    warn: Any,
) -> SolveResult:
    """:func:`~linalg.sketch.sketched_lstsq` of a dask ``A``: preconditioned CG on the cluster.

    The sketch of ``[A, b]`` is one chunk-wise pass; its QR (in memory, ``d × n``)
    gives ``M`` and the start ``x₀``; then :func:`_cgnr`, one pass over ``A`` per
    iteration, collecting only ``n``-vectors.
    """
    import dask.array as da

    oversampling = check_real(oversampling, "oversampling", low=1.0)
    rtol = check_real(rtol, "rtol", low=0.0)
    maxiter = check_int(maxiter, "maxiter", low=1, allow_none=True)
    warn = check_bool(warn, "warn")
    A_dtype = check_dask_matrix(A, "A")
    m, n = A.shape
    check_tall(A.shape, "A")
    dask_b = array_kind(b).library == "dask"
    B = b if dask_b else as_float_array(to_numpy(b, "b"), "b", ndim=(1, 2))
    B_dtype = check_dask_matrix(B, "b", ndim=(1, 2)) if dask_b else B.dtype
    if B.shape[0] != m:
        raise ValueError(f"b must have {m} rows (the rows of A), got shape {B.shape}")
    if not dask_b:
        B = da.from_array(B, chunks=(A.chunks[0], -1)[: B.ndim])
    dtype = result_dtype(A_dtype, B_dtype)
    A = A.astype(dtype, copy=False)
    B2 = (B if B.ndim == 2 else B[:, None]).astype(dtype, copy=False).rechunk({0: A.chunks[0]})
    stacked = da.concatenate([A, B2], axis=1)

    def sketch_of(S: Any) -> np.ndarray:
        return np.asfortranarray(_finite(dask_sketch(S, stacked).compute(), "A and b"))

    pre, info = sketch_and_factor(sketch, (m, n), dtype, oversampling, rng, sketch_of)
    start = time.perf_counter()
    iterations = default_maxiter(rtol, info["sketch_size"], n, dtype, maxiter)
    X, converged, n_iter, history, residual, reason = _cgnr(A, B2, pre, rtol, iterations)
    info |= {"time_iterations": time.perf_counter() - start}
    if warn:
        warn_if_not_converged(converged, n_iter, residual, rtol, "CG", 4)
    info |= {"stop_reason": reason, "solver": "cgnr"}
    if B.ndim == 1:
        return SolveResult(
            X[:, 0], bool(converged[0]), int(n_iter[0]), float(residual[0]), history[:, 0], info
        )
    return SolveResult(X, converged, n_iter, residual, history, info)


def _precondition(M: Any, V: np.ndarray, *, adjoint: bool = False) -> np.ndarray:
    """``M V`` (or ``Mᵀ V``) for the preconditioner: an Operator or a dense matrix."""
    if isinstance(M, np.ndarray):
        return (M.T if adjoint else M) @ V
    return M.rmatmat(V) if adjoint else M.matmat(V)


class _Residual:
    """``Aᵀ r`` and ``||r||²`` for ``r = B - A X``, recomputed in one pass over ``A``."""

    def __init__(self, A: Any, B: Any, X: np.ndarray) -> None:
        import dask

        R = B - A @ X
        self.AtR, self.rr = dask.compute(A.T @ R, (R * R).sum(axis=0))


def _cgnr(
    A: Any, B: Any, pre: Any, rtol: float, maxiter: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Conjugate gradients on the normal equations of ``min ||A M y - (B - A x₀)||``,
    column by column, ``x = x₀ + M y``.

    One pass over ``A`` per iteration computes ``q = A M p``, ``Aᵀ q`` and
    ``||q||²`` together (the chunks of ``q`` never leave the workers); ``Aᵀ r``
    and ``||r||²`` follow by recurrences in ``n``-space. A column stops when
    ``||(A M)ᵀ r|| <= rtol ||A M|| ||r||`` (``||A M||`` estimated from below by the
    largest ``||A M p|| / ||p||`` seen, about 1) or ``||r|| <= rtol ||b||``,
    judged on these recurrences, as LSQR stops on its estimates (a recomputed ``Aᵀ r``
    carries a rounding error of about ``eps κ(A) ||r||``, which ``rtol`` may be
    below). ``A M`` is well conditioned, so the normal equations lose nothing
    worth keeping LSQR's ``m``-vectors for. Also returns ``||B - A x||``,
    recomputed (one more pass).
    """
    import dask

    X = np.array(pre.X0, dtype=B.dtype)
    start = _Residual(A, B, X)
    AtR, rr = start.AtR, start.rr
    bb = (B * B).sum(axis=0).compute()
    k = B.shape[1]
    n_iter = np.zeros(k, dtype=np.int64)
    anorm = np.zeros(k)
    history = [np.sqrt(rr)]

    def done(gamma: np.ndarray, rr: np.ndarray) -> np.ndarray:
        small_gradient = np.sqrt(gamma) <= rtol * np.maximum(anorm, 1.0) * np.sqrt(rr)
        return small_gradient | (np.sqrt(np.maximum(rr, 0.0)) <= rtol * np.sqrt(bb))

    Sres = _precondition(pre.M, AtR, adjoint=True)
    gamma = (Sres * Sres).sum(axis=0)
    P = Sres.copy()
    converged = done(gamma, rr)
    while not converged.all() and n_iter.max() < maxiter:
        active = ~converged
        T = _precondition(pre.M, P)
        Q = A @ T
        AtQ, qq = dask.compute(A.T @ Q, (Q * Q).sum(axis=0))
        pp = np.maximum((P * P).sum(axis=0), np.finfo(X.dtype).tiny)
        anorm = np.maximum(anorm, np.sqrt(qq / pp))
        alpha = np.where(active & (qq > 0), gamma / np.where(qq > 0, qq, 1.0), 0.0)
        X += T * alpha
        rr = rr - 2 * alpha * (AtR * T).sum(axis=0) + alpha**2 * qq
        AtR = AtR - AtQ * alpha
        Sres = _precondition(pre.M, AtR, adjoint=True)
        new_gamma = (Sres * Sres).sum(axis=0)
        beta = np.where(active, new_gamma / np.where(gamma > 0, gamma, 1.0), 0.0)
        P = np.where(active, Sres + P * beta, P)
        gamma = np.where(active, new_gamma, gamma)
        n_iter += active
        history.append(np.sqrt(np.maximum(rr, 0.0)))
        converged = done(gamma, rr)
    reason = "tolerance met" if converged.all() else "maxiter reached"
    return X, converged, n_iter, np.array(history), np.sqrt(_Residual(A, B, X).rr), reason
