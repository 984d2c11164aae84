"""The Numba engine's sparse-sketch kernels: hashes, and ``S @ A`` in one pass.

The hashes are the reference's numbers bit for bit: the same Philox words,
the same uniform and sign conversions (compiled from
:mod:`linalg._core.random`), the same Floyd arithmetic.

``S @ A`` for a C-ordered ``A`` cuts the rows of ``A`` into a fixed number of
parts (a function of the shapes only, never of the thread count), adds each
part into its own ``(d, k)`` buffer in parallel, then sums the buffers in
order: the result does not depend on the number of threads. The hashes are
drawn inside the kernel, ``_COLUMNS_PER_DRAW`` columns at a time, so no
``(n, ζ)`` arrays of rows and values are written and read back (at
``n = 10⁶`` and ``ζ = 8``: 128 MB, drawn one Philox call at a time in about
130 ms beside the product's 250 ms). Column panels of ``A`` (to keep a
thread's ``(d, k_p)`` buffer in L2) and sorting each chunk's non-zeros by
row were both measured slower on a 1 MiB-L2 machine and are not used. An
F-ordered ``A`` is done column by column, in parallel over columns.
"""

from __future__ import annotations

import numba
import numpy as np

from linalg._core import random as ref
from linalg._core._numba_build import SerialOrThreaded
from linalg._core._numba_random import philox_lanes, rademacher, uniform_f64
from linalg._core.random import RandomStream

__all__ = ["NUMBA_KERNELS"]

_ROWS_PER_PART = 1 << 15
# Columns of S hashed at a time inside a kernel (their Philox words drawn together).
_COLUMNS_PER_DRAW = 128
_MAX_PARTS = 16
_BUFFER_ENTRIES = 1 << 25  # all parts' buffers together


@numba.njit(cache=True, nogil=True)
def _draw(rows, signs, words, first, d, nnz, k0, k1, s0, s1):
    """Rows and signs (flat, ``m ζ`` entries) of the ``m`` columns from column ``first`` on.

    ``words`` is a ``(4, ≥ m ζ)`` uint64 scratch array. The stream's words are
    drawn for all entries at once, then Floyd's algorithm runs per column.
    """
    philox_lanes(words, rows.size, first * nnz, k0, k1, s0, s1)
    for j in range(0, rows.size, nnz):
        for t in range(nnz):
            element = (words[0, j + t], words[1, j + t], words[2, j + t], words[3, j + t])
            signs[j + t] = rademacher(element)
            top = d - nnz + t
            candidate = min(np.int64(uniform_f64(element) * np.float64(top + 1)), top)
            for previous in range(t):
                if rows[j + previous] == candidate:
                    candidate = top
                    break
            rows[j + t] = candidate


@SerialOrThreaded
def _hashes(rows, signs, d, nnz, start, k0, k1, s0, s1):
    m = rows.size // nnz
    for chunk in numba.prange((m + _COLUMNS_PER_DRAW - 1) // _COLUMNS_PER_DRAW):
        a = chunk * _COLUMNS_PER_DRAW * nnz
        b = min(m, (chunk + 1) * _COLUMNS_PER_DRAW) * nnz
        words = np.empty((4, b - a), dtype=np.uint64)
        _draw(rows[a:b], signs[a:b], words, start + a // nnz, d, nnz, k0, k1, s0, s1)


@SerialOrThreaded
def _sketch_c(A, d, nnz, start, scale, k0, k1, s0, s1, parts):
    n, k = A.shape
    size = (n + parts - 1) // parts
    buffers = np.zeros((parts, d, k), dtype=A.dtype)
    entries = _COLUMNS_PER_DRAW * nnz
    for p in numba.prange(parts):
        buffer = buffers[p]
        rows = np.empty(entries, dtype=np.int64)
        signs = np.empty(entries)
        words = np.empty((4, entries), dtype=np.uint64)
        values = np.empty(entries, dtype=A.dtype)
        for j0 in range(p * size, min(n, (p + 1) * size), _COLUMNS_PER_DRAW):
            m = min(_COLUMNS_PER_DRAW, n - j0, (p + 1) * size - j0)
            used = m * nnz
            _draw(rows[:used], signs[:used], words, start + j0, d, nnz, k0, k1, s0, s1)
            for e in range(used):
                values[e] = signs[e] * scale
            for j in range(m):
                row = A[j0 + j]
                for t in range(nnz):
                    r = rows[j * nnz + t]
                    v = values[j * nnz + t]
                    for c in range(k):
                        buffer[r, c] += v * row[c]
    out = buffers[0].copy()
    for p in range(1, parts):
        out += buffers[p]
    return out


@SerialOrThreaded
def _apply_f(rows, values, At, d):
    k, n = At.shape
    nnz = rows.shape[1]
    out = np.zeros((k, d), dtype=At.dtype)
    for c in numba.prange(k):
        for j in range(n):
            for t in range(nnz):
                out[c, rows[j, t]] += values[j, t] * At[c, j]
    return out


@SerialOrThreaded
def _apply_transpose(rows, values, Y):
    m, nnz = rows.shape
    out = np.zeros((m, Y.shape[1]), dtype=Y.dtype)
    for j in numba.prange(m):
        for t in range(nnz):
            r = rows[j, t]
            v = values[j, t]
            for c in range(Y.shape[1]):
                out[j, c] += v * Y[r, c]
    return out


class _NumbaKernels:
    """The same interface as the reference's ``REFERENCE_KERNELS``."""

    @staticmethod
    def hashes(
        rng: RandomStream, d: int, nnz: int, start: int, stop: int
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = np.empty((stop - start, nnz), dtype=np.int64)
        signs = np.empty((stop - start, nnz), dtype=np.float64)
        _hashes(rows.reshape(-1), signs.reshape(-1), d, nnz, start, *_words(rng))
        return rows, signs

    @staticmethod
    def sketch(
        rng: RandomStream, d: int, nnz: int, start: int, A: np.ndarray, scale: float
    ) -> np.ndarray:
        n, k = A.shape
        if not A.flags.c_contiguous and A.flags.f_contiguous:
            rows, signs = NUMBA_KERNELS.hashes(rng, d, nnz, start, start + n)
            values = (signs * scale).astype(A.dtype, copy=False)
            return np.ascontiguousarray(_apply_f(rows, values, A.T, d).T)
        A = np.ascontiguousarray(A)
        parts = max(1, min(_MAX_PARTS, n // _ROWS_PER_PART, _BUFFER_ENTRIES // (d * k)))
        return _sketch_c(A, d, nnz, start, scale, *_words(rng), parts)

    @staticmethod
    def apply_transpose(rows: np.ndarray, values: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return _apply_transpose(rows, values, np.ascontiguousarray(Y))


def _words(rng: RandomStream) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64]:
    """The key and stream of ``rng`` as the four 32-bit words the kernels take."""
    return (*ref._split(rng.seed), *ref._split(rng.stream))


NUMBA_KERNELS = _NumbaKernels()
