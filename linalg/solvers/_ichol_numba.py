"""Numba kernels for incomplete Cholesky, IC(0) and MIC(0) (engine ``"numba"``).

Same algorithms and interface as :mod:`linalg.solvers._ichol_reference`
(see :class:`~linalg.solvers._ichol_reference.IcholKernels`): a right-looking
factorization on the columns of ``L``, then a forward and a backward sweep by
rows over ``L`` laid out as
:class:`~linalg.solvers._ichol_reference.TriangularSweeps`. Everything
accumulates in float64.
Imported only through the engine registry.
"""

from __future__ import annotations

import numba
import numpy as np

from linalg.solvers._ichol_reference import IcholKernels

__all__ = ["NUMBA_KERNELS"]


@numba.njit(cache=True)
def _factor(indptr, indices, data, alpha, modified, rtol):
    """IC(0) or MIC(0) of ``A + alpha * diag(A)``; see ``IcholKernels.factor``."""
    n = indptr.size - 1
    values = np.empty(data.size, dtype=np.float64)  # becomes the columns of L
    for p in range(data.size):
        values[p] = data[p]
    diagonal = np.empty(n, dtype=np.float64)
    pivots = np.empty(n, dtype=np.float64)
    for k in range(n):
        diagonal[k] = values[indptr[k]]
        pivots[k] = (1.0 + alpha) * diagonal[k]
    position = np.full(n, -1, dtype=np.int64)  # row -> slot in the column being updated
    for k in range(n):
        if not pivots[k] > rtol * diagonal[k]:
            return indptr[:0].copy(), indices[:0].copy(), values[:0].copy(), k
        start, end = indptr[k], indptr[k + 1]
        root = np.sqrt(pivots[k])
        values[start] = root
        for p in range(start + 1, end):
            values[p] /= root
            pivots[indices[p]] -= values[p] * values[p]
        for p in range(start + 1, end - 1):
            j, l_jk = indices[p], values[p]
            _update_column(j, l_jk, p + 1, end, indptr, indices, values, pivots, position, modified)
    lower_indptr, lower_indices, lower_values = _rows_of(indptr, indices, values)
    return lower_indptr, lower_indices, lower_values, -1


@numba.njit(cache=True)
def _update_column(j, l_jk, first, end, indptr, indices, values, pivots, position, modified):
    """Column j of L -= l_jk * (column k at slots first..end-1), on the pattern only."""
    for q in range(indptr[j] + 1, indptr[j + 1]):
        position[indices[q]] = q
    for p in range(first, end):
        i = indices[p]
        product = l_jk * values[p]
        q = position[i]
        if q >= 0:
            values[q] -= product
        elif modified:
            pivots[j] -= product
            pivots[i] -= product
    for q in range(indptr[j] + 1, indptr[j + 1]):
        position[indices[q]] = -1


@numba.njit(cache=True)
def _rows_of(indptr, indices, values):
    """Column storage of L -> L's CSR arrays (a counting-sort transpose)."""
    n = indptr.size - 1
    lower_indptr = np.zeros(n + 1, dtype=indptr.dtype)
    for p in range(values.size):
        lower_indptr[indices[p] + 1] += 1
    for i in range(n):
        lower_indptr[i + 1] += lower_indptr[i]
    fill = lower_indptr[:-1].copy()
    lower_indices = np.empty(values.size, dtype=indices.dtype)
    lower_values = np.empty(values.size, dtype=np.float64)
    for k in range(n):  # columns in order, so every row comes out sorted
        for p in range(indptr[k], indptr[k + 1]):
            slot = fill[indices[p]]
            lower_indices[slot] = k
            lower_values[slot] = values[p]
            fill[indices[p]] += 1
    return lower_indptr, lower_indices, lower_values


@numba.njit(cache=True, inline="always")
def _row(indptr, indices, data, i, forward):
    """Row ``i``'s entries, less the one on the neighbouring row: (lo, hi, its value).

    The neighbour (``i - 1`` forward, ``i + 1`` backward) is the entry a sweep
    waits for; the sweep keeps it in a register rather than reading it back
    from memory, which shortens the chain of dependent operations per row.
    """
    lo, hi = indptr[i], indptr[i + 1]
    if hi > lo:
        if forward and indices[hi - 1] == i - 1:
            return lo, hi - 1, data[hi - 1]
        if not forward and indices[lo] == i + 1:
            return lo + 1, hi, data[lo]
    return lo, hi, 0.0


@numba.njit(cache=True)
def _sweep_one(indptr, indices, data, inverse, r, y, forward):
    """One triangular sweep for one right-hand side (see TriangularSweeps)."""
    n = r.shape[0]
    previous = 0.0
    for step in range(n):
        i = step if forward else n - 1 - step
        s = np.float64(r[i]) * inverse[i]
        # _row written out: called here, its tuple makes the sweep 3x slower
        lo, hi, neighbour = indptr[i], indptr[i + 1], 0.0
        if hi > lo:
            if forward and indices[hi - 1] == i - 1:
                hi, neighbour = hi - 1, data[hi - 1]
            elif not forward and indices[lo] == i + 1:
                lo, neighbour = lo + 1, data[lo]
        for p in range(lo, hi):
            s -= data[p] * y[indices[p]]
        previous = s - neighbour * previous
        y[i] = previous


@numba.njit(cache=True)
def _sweep_many(indptr, indices, data, inverse, R, Y, forward):
    """One triangular sweep for the k columns of R together."""
    n, k = R.shape
    previous = np.zeros(k)
    s = np.empty(k)
    for step in range(n):
        i = step if forward else n - 1 - step
        lo, hi, neighbour = _row(indptr, indices, data, i, forward)
        for c in range(k):
            s[c] = np.float64(R[i, c]) * inverse[i]
        for p in range(lo, hi):
            j, l_ij = indices[p], data[p]
            for c in range(k):
                s[c] -= l_ij * Y[j, c]
        for c in range(k):
            previous[c] = s[c] - neighbour * previous[c]
            Y[i, c] = previous[c]


@numba.njit(cache=True)
def _solve_sweeps(lp, li, ld, up, ui, ud, inverse, R):
    n, k = R.shape
    if k == 1:  # contiguous 1-D views: Numba indexes them faster than columns
        y, z = np.empty(n), np.empty(n)
        _sweep_one(lp, li, ld, inverse, R.reshape(n), y, True)
        _sweep_one(up, ui, ud, inverse, y, z, False)
        return z.reshape(n, 1)
    Y, Z = np.empty((n, k)), np.empty((n, k))
    _sweep_many(lp, li, ld, inverse, R, Y, True)
    _sweep_many(up, ui, ud, inverse, Y, Z, False)
    return Z


def _solve(sweeps, R):
    """``Z`` with ``L Lᵀ Z = R``; see ``IcholKernels.solve``."""
    return _solve_sweeps(*sweeps, R)


NUMBA_KERNELS = IcholKernels(factor=_factor, solve=_solve)
