"""The Numba engine's SRHT kernel: ``S @ A`` for the Walsh–Hadamard transform, fused.

With ``N = P Q`` in Sylvester ordering, ``H_N[r, j] = H_P[r_hi, j_hi] H_Q[r_lo, j_lo]``
for ``r = r_hi Q + r_lo`` and ``j = j_hi Q + j_lo``. The kernel cuts ``j_lo``
into chunks of ``L`` values; for each chunk it gathers the ``(P, L k)`` block
of ``D A`` (rows ``j_hi Q + j_lo``: ``L`` consecutive rows of ``A`` per
``j_hi``, signs applied on load, zeros beyond ``A`` written, not read),
transforms it over ``j_hi`` in cache by radix-4 passes, and adds to each kept
row of the result its combination ``Σ_{j_lo} H_Q[r_lo, j_lo] (H_P D A)[r_hi, j_lo]``.
``A`` is read once.

The chunks are split among a fixed number of parts (a function of the shapes
only, never of the thread count), each with its own ``(d, k)`` accumulator,
summed in order at the end: the result does not depend on the number of
threads.
"""

from __future__ import annotations

import numba
import numpy as np

from linalg._core._numba_build import SerialOrThreaded

__all__ = ["hadamard_apply"]

# Entries of one chunk's (P, L k) block, about: at n = 10**6, k = 200, d = 800
# (P = 256, L = 5) it was faster than L = 4, 2, 1 on a 2-core, 1 MiB-L2 machine.
_BLOCK_ENTRIES = 1 << 18
_MAX_PARTS = 16


@numba.njit(cache=True, nogil=True, inline="always")
def _parity_sign(x: int) -> float:
    """``(-1)^popcount(x)`` for ``0 <= x < 2**63``."""
    x ^= x >> 32
    x ^= x >> 16
    x ^= x >> 8
    x ^= x >> 4
    x ^= x >> 2
    x ^= x >> 1
    return 1.0 - 2.0 * (x & 1)


@numba.njit(cache=True, nogil=True, inline="always")
def _fwht_rows(B: np.ndarray) -> None:
    """In-place unnormalized Walsh–Hadamard transform over the rows of ``B`` (2^m of them)."""
    P, W = B.shape
    h = 1
    while 4 * h <= P:
        for base in range(0, P, 4 * h):
            for i in range(base, base + h):
                x0, x1, x2, x3 = B[i], B[i + h], B[i + 2 * h], B[i + 3 * h]
                for c in range(W):
                    a0 = x0[c] + x1[c]
                    a1 = x0[c] - x1[c]
                    a2 = x2[c] + x3[c]
                    a3 = x2[c] - x3[c]
                    x0[c] = a0 + a2
                    x2[c] = a0 - a2
                    x1[c] = a1 + a3
                    x3[c] = a1 - a3
        h *= 4
    if h < P:
        for i in range(h):
            x0, x1 = B[i], B[i + h]
            for c in range(W):
                a = x0[c]
                x0[c] = a + x1[c]
                x1[c] = a - x1[c]


@SerialOrThreaded
def _apply(A, signs, start, Q, P, L, rows_hi, rows_lo, weights, parts):
    n, k = A.shape
    d = rows_hi.size
    chunks = (Q + L - 1) // L
    per_part = (chunks + parts - 1) // parts
    sums = np.zeros((parts, d, k), dtype=A.dtype)
    for part in numba.prange(parts):
        block = np.empty((P, L * k), dtype=A.dtype)
        coef = np.empty(L, dtype=A.dtype)
        acc = sums[part]
        for chunk in range(part * per_part, min(chunks, (part + 1) * per_part)):
            l0 = chunk * L
            width = min(L, Q - l0)
            for p in range(P):
                for t in range(width):
                    i = p * Q + l0 + t - start
                    segment = block[p, t * k : (t + 1) * k]
                    if 0 <= i < n:
                        s = signs[i]
                        row = A[i]
                        for c in range(k):
                            segment[c] = s * row[c]
                    else:
                        segment[:] = 0.0
            _fwht_rows(block)  # columns past width * k are independent leftovers
            for r in range(d):
                for t in range(width):
                    coef[t] = weights[r] * _parity_sign(rows_lo[r] & (l0 + t))
                target = acc[r]
                source = block[rows_hi[r]]
                for t in range(width):
                    v = coef[t]
                    for c in range(k):
                        target[c] += v * source[t * k + c]
    out = sums[0].copy()
    for part in range(1, parts):
        out += sums[part]
    return out


def hadamard_apply(
    A: np.ndarray,
    signs: np.ndarray,
    start: int,
    N: int,
    rows: np.ndarray,
    weights: np.ndarray,
) -> np.ndarray:
    """Kept rows ``rows`` of ``H_N D A``, row ``i`` times ``weights[i]``: the reference's contract.

    ``A`` is rows ``start, ..., start + n - 1`` of the ``(N, k)`` matrix
    (zero elsewhere), ``signs`` the diagonal of ``D`` on those rows.
    """
    k = A.shape[1]
    d = rows.size
    # P near d / 2 balances the transform's log2 P against the combination's d / P
    # (at d = 800, P = 256 was faster than 128 and 512).
    P = min(N, 1 << max(0, (d // 2).bit_length() - 1))
    Q = N // P
    L = max(1, min(Q, _BLOCK_ENTRIES // (P * k)))
    parts = max(1, min(_MAX_PARTS, (Q + L - 1) // L))
    rows_hi, rows_lo = np.divmod(rows, Q)
    return _apply(
        np.ascontiguousarray(A),
        signs,
        start,
        Q,
        P,
        L,
        rows_hi,
        rows_lo,
        weights.astype(A.dtype),
        parts,
    )
