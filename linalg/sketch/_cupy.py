"""The CuPy engine of the sparse sketches: the kernels of ``cuda/sketch.cu``.

:data:`CUPY_KERNELS` has the interface of the reference's
``REFERENCE_KERNELS`` (``hashes``, ``sketch``, ``apply_transpose``) for CuPy
arrays on the current device. The hashes (rows and signs of S) are the
reference's bit for bit: the same Philox words, uniform and sign conversions
and Floyd arithmetic (``cuda/philox.cuh``). ``S @ A`` adds with atomics, so it
equals the reference's to rounding, not bit for bit (see ``cuda/sketch.cu``).

:func:`stream_fill` is the stream of :mod:`linalg._core.random` on the device
(``cuda/random.cu``), the same bits as the CPU engines.

CuPy is imported by the functions, when they run: importing this module
(as ``pytest --doctest-modules`` does) needs no GPU stack.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linalg._core import _cupy_random
from linalg._core._cupy_random import SUFFIX as _SUFFIX
from linalg._core._cupy_random import THREADS as _THREADS
from linalg._core._cupy_random import launch_blocks as _blocks
from linalg._core.cuda_sources import load_module
from linalg._core.random import RandomStream, _split
from linalg.sketch._sparse_sketches import REFERENCE_KERNELS

__all__ = ["CUPY_KERNELS", "stream_fill"]


def _words(rng: RandomStream) -> tuple[np.uint32, ...]:
    """The key's and the stream's 32-bit words, as the kernels take them."""
    return tuple(np.uint32(w) for w in (*_split(rng.seed), *_split(rng.stream)))


def stream_fill(transform: str, out: Any, rng: RandomStream, offset: int) -> None:
    """Write elements ``offset, offset + 1, ...`` of ``rng`` into the flat CuPy array ``out``
    (the stream's CuPy engine, :mod:`linalg._core._cupy_random`)."""
    _cupy_random.fill(transform, out, _split(rng.seed), _split(rng.stream), offset)


class _CupyKernels:
    """The interface of ``REFERENCE_KERNELS``, for CuPy arrays."""

    @staticmethod
    def hashes(rng: RandomStream, d: int, nnz: int, start: int, stop: int) -> tuple[Any, Any]:
        """Rows ``(m, ζ)`` (int64) and signs ``(m, ζ)`` (float64) of columns ``start:stop``."""
        import cupy

        m = stop - start
        rows = cupy.empty((m, nnz), dtype=cupy.int64)
        signs = cupy.empty((m, nnz), dtype=cupy.float64)
        if m:
            kernel = load_module("sketch").get_function("linalg_sketch_hashes")
            kernel(
                (_blocks(m, _THREADS),),
                (_THREADS,),
                (
                    rows,
                    signs,
                    np.int64(m),
                    np.int32(nnz),
                    np.int64(d),
                    np.uint64(start),
                    *_words(rng),
                ),
            )
        return rows, signs

    @staticmethod
    def sketch(rng: RandomStream, d: int, nnz: int, start: int, A: Any, scale: float) -> Any:
        """``S @ A`` for S's columns ``start, ..., start + n - 1`` and a CuPy ``(n, k)`` ``A``."""
        import cupy

        n, k = A.shape
        A = cupy.ascontiguousarray(A)
        rows, signs = CUPY_KERNELS.hashes(rng, d, nnz, start, start + n)
        out = cupy.zeros((d, k), dtype=A.dtype)
        if n and k:
            # A warp's lanes run along a row of A: as many as k needs, up to 32.
            lanes = min(32, 1 << (k - 1).bit_length())
            per_block = _THREADS // lanes
            kernel = load_module("sketch").get_function(f"linalg_sketch_scatter_{_SUFFIX[A.dtype]}")
            kernel(
                (_blocks(n, per_block),),
                (lanes, per_block),
                (
                    A,
                    np.int64(n),
                    np.int64(k),
                    rows,
                    signs,
                    np.int32(nnz),
                    np.float64(scale),
                    out,
                ),
            )
        return out

    apply_transpose = staticmethod(REFERENCE_KERNELS.apply_transpose)


CUPY_KERNELS = _CupyKernels()
