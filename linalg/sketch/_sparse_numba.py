"""The Numba engine's sparse-sketch kernels: hashes and one-pass application.

The hashes are the reference's numbers bit for bit: the same Philox words,
the same uniform and sign conversions (compiled from
:mod:`linalg._core.random`), the same Floyd arithmetic.

``S @ A`` for a C-ordered ``A`` cuts the rows of ``A`` into a fixed number of
parts (a function of the shapes only, never of the thread count), adds each
part into its own ``(d, k)`` buffer in parallel, then sums the buffers in
order: the result does not depend on the number of threads. An F-ordered
``A`` is done column by column, in parallel over columns.
"""

from __future__ import annotations

import numba
import numpy as np

from linalg._core import random as ref
from linalg._core._numba_build import SerialOrThreaded
from linalg._core._numba_random import element_words, rademacher, uniform_f64
from linalg._core.random import RandomStream

__all__ = ["NUMBA_KERNELS"]

_ROWS_PER_PART = 1 << 15
_MAX_PARTS = 16
_BUFFER_ENTRIES = 1 << 25  # all parts' buffers together


@SerialOrThreaded
def _hashes(rows, signs, d, start, k0, k1, s0, s1):
    m, nnz = rows.shape
    for j in numba.prange(m):
        for t in range(nnz):
            index = np.uint64((start + j) * nnz + t)
            words = element_words(index, k0, k1, s0, s1)
            top = d - nnz + t
            candidate = min(np.int64(uniform_f64(words) * np.float64(top + 1)), top)
            for previous in range(t):
                if rows[j, previous] == candidate:
                    candidate = top
                    break
            rows[j, t] = candidate
            signs[j, t] = rademacher(words)


@SerialOrThreaded
def _apply_c(rows, values, A, d, parts):
    n, k = A.shape
    nnz = rows.shape[1]
    size = (n + parts - 1) // parts
    buffers = np.zeros((parts, d, k), dtype=A.dtype)
    for p in numba.prange(parts):
        buffer = buffers[p]
        for j in range(p * size, min(n, (p + 1) * size)):
            for t in range(nnz):
                r = rows[j, t]
                v = values[j, t]
                for c in range(k):
                    buffer[r, c] += v * A[j, c]
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
        k0, k1 = ref._split(rng.seed)
        s0, s1 = ref._split(rng.stream)
        rows = np.empty((stop - start, nnz), dtype=np.int64)
        signs = np.empty((stop - start, nnz), dtype=np.float64)
        _hashes(rows, signs, d, start, k0, k1, s0, s1)
        return rows, signs

    @staticmethod
    def apply(rows: np.ndarray, values: np.ndarray, A: np.ndarray, d: int) -> np.ndarray:
        n, k = A.shape
        if not A.flags.c_contiguous and A.flags.f_contiguous:
            return np.ascontiguousarray(_apply_f(rows, values, A.T, d).T)
        A = np.ascontiguousarray(A)
        parts = max(1, min(_MAX_PARTS, n // _ROWS_PER_PART, _BUFFER_ENTRIES // (d * k)))
        return _apply_c(rows, values, A, d, parts)

    @staticmethod
    def apply_transpose(rows: np.ndarray, values: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return _apply_transpose(rows, values, np.ascontiguousarray(Y))


NUMBA_KERNELS = _NumbaKernels()
