"""The CuPy engine of the OT kernels: ``cuda/ot.cu`` on the current device.

:data:`CUPY_KERNELS` has the interface of
:data:`linalg.ot._dual.REFERENCE_KERNELS` (``lse``, ``plan``, ``sparsify``)
for CuPy arrays, and ``kth_largest``: the per-row top-``k`` threshold of
:func:`~linalg.ot.sinkhorn_newton_sparse` on CuPy data, a selection by bits
where other device data sort every row. ``lse`` is one fused pass over the cost per row (an online
maximum and sum of exponentials in registers, merged across the block);
``sparsify`` counts the kept entries of each row, scans the counts with
CuPy, then fills the CSR arrays in column order; ``plan`` is CuPy's
elementwise ``exp``, as in the reference. Results equal the reference's to
rounding (the sums are added in another order).

CuPy is imported by the functions, when they run: importing this module
(as ``pytest --doctest-modules`` does) needs no GPU stack.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linalg._core.cuda_sources import load_module

__all__ = ["CUPY_KERNELS", "launch_shape"]

_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
_THREADS = 256  # LINALG_OT_THREADS in cuda/ot.cu: the most threads of a block
_MAX_BLOCKS = 1 << 15


def launch_shape(rows: int, length: int) -> tuple[tuple[int], tuple[int, int]]:
    """Grid and block of a row kernel: ``rows`` rows of ``length`` entries.

    A row gets a power of two of lanes, from 32 up to 256 as ``length``
    needs; a block holds ``256 // lanes`` rows; the grid-stride loop of the
    kernels takes any grid, capped at ``2**15`` blocks.

    Examples
    --------
    >>> from linalg.ot._cupy import launch_shape
    >>> launch_shape(1000, 10_000)
    ((1000,), (256, 1))
    >>> launch_shape(1000, 20)
    ((125,), (32, 8))
    """
    lanes = min(_THREADS, max(32, 1 << max(length - 1, 0).bit_length()))
    per_block = _THREADS // lanes
    blocks = max(1, min(_MAX_BLOCKS, -(-rows // per_block)))
    return (blocks,), (lanes, per_block)


def _kernel(name: str, dtype: Any) -> Any:
    return load_module("ot").get_function(f"linalg_ot_{name}_{_SUFFIX[np.dtype(dtype)]}")


class _CupyKernels:
    """The interface of ``REFERENCE_KERNELS``, for CuPy arrays."""

    @staticmethod
    def lse(K: Any, x: Any, ks: Any, out: Any) -> None:
        """``out[k, i] = log Σ_j exp(x[k, j] − K[k, i, j])`` for ``k`` in ``ks``, in place.

        ``K`` is ``(1, r, c)`` (shared by the batch) or ``(batch, r, c)``;
        ``ks`` may be a NumPy or CuPy integer array.
        """
        import cupy

        members = cupy.asarray(ks, dtype=cupy.int64)
        _, r, c = K.shape
        if not members.size or not r:
            return
        K = cupy.ascontiguousarray(K)
        x = cupy.ascontiguousarray(x, dtype=K.dtype)
        target = out if out.flags.c_contiguous else cupy.empty_like(out)
        grid, block = launch_shape(members.size * r, c)
        _kernel("lse", K.dtype)(
            grid,
            block,
            (
                K,
                np.int32(K.shape[0] == 1),
                x,
                members,
                np.int64(members.size),
                np.int64(r),
                np.int64(c),
                target,
            ),
        )
        if target is not out:
            out[members] = target[members]

    @staticmethod
    def plan(K: Any, u: Any, v: Any) -> Any:
        """The dense plan ``exp(u_i + v_j − K_ij)`` of one problem, ``K`` of shape ``(n, m)``."""
        import cupy

        P = u[:, None] + v[None, :] - K
        return cupy.exp(P, out=P)

    @staticmethod
    def sparsify(P: Any, theta: Any) -> tuple[Any, ...]:
        """CSR arrays ``(indptr, indices, data)`` of the entries ``P_ij >= theta_i``."""
        import cupy

        n, m = P.shape
        P = cupy.ascontiguousarray(P)
        theta = cupy.ascontiguousarray(theta, dtype=P.dtype)
        indptr = cupy.zeros(n + 1, dtype=cupy.int64)
        if not n or not m:
            return indptr, cupy.empty(0, dtype=cupy.int64), cupy.empty(0, dtype=P.dtype)
        grid, block = launch_shape(n, m)
        counts = cupy.empty(n, dtype=cupy.int64)
        _kernel("count", P.dtype)(grid, block, (P, np.int64(n), np.int64(m), theta, counts))
        cupy.cumsum(counts, out=indptr[1:])
        nnz = int(indptr[-1])  # the one host synchronization: the size to allocate
        indices = cupy.empty(nnz, dtype=cupy.int64)
        data = cupy.empty(nnz, dtype=P.dtype)
        if nnz:
            _kernel("fill", P.dtype)(
                grid, block, (P, np.int64(n), np.int64(m), theta, indptr, indices, data)
            )
        return indptr, indices, data

    @staticmethod
    def kth_largest(P: Any, k: int) -> Any:
        """``theta[i]`` = the ``k``-th largest entry of row ``i`` of ``P`` (``P >= 0``).

        The top-``k`` threshold of the device SNS without a sort: one counting
        pass over each row per bit of the dtype below the sign (31 or 63), no
        memory beyond ``theta`` (a sort needs a sorted copy of ``P``).
        """
        import cupy

        n, m = P.shape
        if not 1 <= k <= m:
            raise ValueError(f"k must be in [1, {m}] for rows of {m} entries, got {k}")
        P = cupy.ascontiguousarray(P)
        theta = cupy.empty(n, dtype=P.dtype)
        if n:
            grid, block = launch_shape(n, m)
            _kernel("kth", P.dtype)(grid, block, (P, np.int64(n), np.int64(m), np.int64(k), theta))
        return theta


CUPY_KERNELS = _CupyKernels()
