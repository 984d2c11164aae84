"""Numba kernels for the OT solvers (engine ``"numba"``), parallel over rows.

The same operations as :class:`linalg.ot._dual._ReferenceKernels`, fused: one
log-sum-exp row is two passes over a row of the cost held in cache (its
maximum, then the sum of shifted exponentials, accumulated in float64), with
the rows of every batch member spread over the threads. ``exp`` is the cost
of a pass, and the library ``exp`` is a scalar call, so the log-sum-exp
computes it with a polynomial in loops the compiler vectorizes (within 2
ulp). Exponents are clamped at ``log(eps / 2) − log m`` below the row's
maximum: the clamped terms together change the sum (>= 1) by less than half
an ulp, and the clamp keeps ``2**k`` a normal number. Small problems run
the serial build (starting threads costs more than their whole pass).
Imported only through the engine registry.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from linalg._core._numba_build import SerialOrThreaded

__all__ = ["NUMBA_KERNELS"]

# Below this many cost entries per pass the serial build runs. Measured on 2 busy
# shared cores, the threaded build lost at 500 x 500 (8 ms against 0.4 ms) and at
# 2000 x 2000 (0.67 s against 0.38 s for 20 iterations): threads pay off only on
# larger problems or idle cores.
THREADED_ENTRIES = 1 << 23


def _negligible(dtype: np.dtype, terms: int) -> float:
    """``z`` below which ``terms`` values ``exp(z)`` add less than half an ulp to a sum >= 1."""
    return float(np.log(np.finfo(dtype).eps / 2) - np.log(terms))


def _underflow(dtype: np.dtype) -> float:
    """``z`` below which ``exp(z)`` is 0 in ``dtype`` (past the subnormals)."""
    return float(np.log(np.finfo(dtype).smallest_subnormal)) - 1.0


# exp(z) = 2**k e**r with k = round(z / ln 2), |r| <= ln(2) / 2: Cody-Waite reduction,
# degree-13 Taylor polynomial (truncation < 1e-17), 2**k built in the exponent bits.
_INV_LN2 = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer in the low bits
_TAYLOR = tuple(1.0 / math.factorial(i) for i in range(14))
_ROWS_PER_BLOCK = 16


@numba.njit(cache=True, nogil=True)
def _shifted_exp_sum(x, Ki, top, cut, poly, shifted):
    """``Σ_j exp(max(x_j − K_ij − top, cut))`` in loops the compiler vectorizes.

    ``poly`` and ``shifted`` are scratch rows: the polynomial part and the
    rounded ``z / ln 2`` whose low bits become the exponent of ``2**k``.
    """
    c = _TAYLOR
    m = x.size
    for j in range(m):
        z = max(x[j] - Ki[j] - top, cut)
        rounded = z * _INV_LN2 + _ROUND
        k = rounded - _ROUND
        r = (z - k * _LN2_HI) - k * _LN2_LO
        q = c[13] * r + c[12]
        q = q * r + c[11]
        q = q * r + c[10]
        q = q * r + c[9]
        q = q * r + c[8]
        q = q * r + c[7]
        q = q * r + c[6]
        q = q * r + c[5]
        q = q * r + c[4]
        q = q * r + c[3]
        q = q * r + c[2]
        q = q * r + c[1]
        poly[j] = q * r + c[0]
        shifted[j] = rounded
    bits = shifted.view(np.int64)
    for j in range(m):
        bits[j] = (bits[j] + 1023) << 52
    scale = bits.view(np.float64)
    s0 = s1 = s2 = s3 = 0.0
    j = 0
    while j + 4 <= m:
        s0 += poly[j] * scale[j]
        s1 += poly[j + 1] * scale[j + 1]
        s2 += poly[j + 2] * scale[j + 2]
        s3 += poly[j + 3] * scale[j + 3]
        j += 4
    while j < m:
        s0 += poly[j] * scale[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


def _lse_rows(K, x, ks, cut, out):
    rows, cols = K.shape[1], K.shape[2]
    shared = K.shape[0] == 1
    total = ks.size * rows
    for block in numba.prange((total + _ROWS_PER_BLOCK - 1) // _ROWS_PER_BLOCK):
        poly = np.empty(cols, dtype=np.float64)
        shifted = np.empty(cols, dtype=np.float64)
        for t in range(block * _ROWS_PER_BLOCK, min(total, (block + 1) * _ROWS_PER_BLOCK)):
            k = ks[t // rows]
            i = t % rows
            Ki = K[0, i] if shared else K[k, i]
            xk = x[k]
            top = -np.inf
            for j in range(cols):
                z = xk[j] - Ki[j]
                if z > top:
                    top = z
            out[k, i] = top + math.log(_shifted_exp_sum(xk, Ki, top, cut, poly, shifted))


def _plan(K, u, v, low, P):
    n, m = K.shape
    for i in numba.prange(n):
        for j in range(m):
            z = u[i] + v[j] - K[i, j]
            P[i, j] = math.exp(z) if z > low else 0.0


def _row_counts(P, theta, counts):
    for i in numba.prange(P.shape[0]):
        kept = 0
        for j in range(P.shape[1]):
            if P[i, j] >= theta[i]:
                kept += 1
        counts[i] = kept


def _fill_csr(P, theta, indptr, indices, data):
    for i in numba.prange(P.shape[0]):
        at = indptr[i]
        for j in range(P.shape[1]):
            if P[i, j] >= theta[i]:
                indices[at] = j
                data[at] = P[i, j]
                at += 1


_LSE = SerialOrThreaded(_lse_rows)
_PLAN = SerialOrThreaded(_plan)
_COUNT = SerialOrThreaded(_row_counts)
_FILL = SerialOrThreaded(_fill_csr)


def _build(kernel: SerialOrThreaded, entries: int):
    return kernel.threaded if entries >= THREADED_ENTRIES else kernel.serial


class _NumbaKernels:
    """Fused, row-parallel versions of the reference kernels."""

    @staticmethod
    def lse(K: np.ndarray, x: np.ndarray, ks: np.ndarray, out: np.ndarray) -> None:
        entries = ks.size * K.shape[1] * K.shape[2]
        cut = _negligible(K.dtype, K.shape[2])
        _build(_LSE, entries)(K, x, np.ascontiguousarray(ks, dtype=np.int64), cut, out)

    @staticmethod
    def plan(K: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        P = np.empty(K.shape, dtype=K.dtype)
        _build(_PLAN, K.size)(K, u, v, _underflow(K.dtype), P)
        return P

    @staticmethod
    def sparsify(P: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        counts = np.empty(P.shape[0], dtype=np.int64)
        _build(_COUNT, P.size)(P, theta, counts)
        indptr = np.zeros(P.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        indices = np.empty(indptr[-1], dtype=np.int64)
        data = np.empty(indptr[-1], dtype=P.dtype)
        _build(_FILL, P.size)(P, theta, indptr, indices, data)
        return indptr, indices, data


NUMBA_KERNELS = _NumbaKernels()
