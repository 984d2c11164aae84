"""Numba kernels for incomplete Cholesky, IC(0) and MIC(0) (engine ``"numba"``).

Same algorithms and interface as :mod:`linalg.solvers._ichol_reference`
(see :class:`~linalg.solvers._ichol_reference.IcholKernels`): a right-looking
factorization on the columns of ``L``, then a forward solve with ``L`` by rows
and a backward solve with ``Lᵀ`` by a column sweep over ``L``'s rows in
reverse, both on the same CSR storage. Everything accumulates in float64.
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


@numba.njit(cache=True)
def _solve(indptr, indices, data, R):
    """``Z`` with ``L Lᵀ Z = R``; see ``IcholKernels.solve``."""
    n, k = R.shape
    Z = np.empty((n, k), dtype=np.float64)
    for i in range(n):  # forward: L Y = R, row by row
        diag = indptr[i + 1] - 1
        for c in range(k):
            Z[i, c] = R[i, c]
        for p in range(indptr[i], diag):
            j = indices[p]
            l_ij = np.float64(data[p])
            for c in range(k):
                Z[i, c] -= l_ij * Z[j, c]
        inverse = 1.0 / np.float64(data[diag])
        for c in range(k):
            Z[i, c] *= inverse
    for i in range(n - 1, -1, -1):  # backward: Lᵀ Z = Y, row i of L is column i of Lᵀ
        diag = indptr[i + 1] - 1
        inverse = 1.0 / np.float64(data[diag])
        for c in range(k):
            Z[i, c] *= inverse
        for p in range(indptr[i], diag):
            j = indices[p]
            l_ij = np.float64(data[p])
            for c in range(k):
                Z[j, c] -= l_ij * Z[i, c]
    return Z


NUMBA_KERNELS = IcholKernels(factor=_factor, solve=_solve)
