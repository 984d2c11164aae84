"""NumPy reference kernels for incomplete Cholesky, IC(0) and MIC(0).

The factorization is right-looking (Saad, *Iterative Methods for Sparse
Linear Systems*, 2nd ed., ch. 10): column ``k`` of ``L`` is finished, then
its outer product ``l_k l_kᵀ`` is subtracted from the trailing matrix, kept
only where the lower-triangular pattern of ``A`` has an entry. An update that
falls outside the pattern (a fill entry ``l_ik l_jk`` at ``(i, j)``) is dropped
by IC(0); MIC(0) subtracts it from the pivots of rows ``i`` and ``j`` instead,
so that ``L Lᵀ`` has the row sums of ``A``.

Both kernels take raw CSR arrays and work in float64 whatever the input dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve_triangular

__all__ = ["REFERENCE_KERNELS", "IcholKernels", "TriangularSweeps", "sweeps_of"]

FactorResult = tuple[np.ndarray, np.ndarray, np.ndarray, int]


class IcholKernels(NamedTuple):
    """One engine's kernels for :func:`linalg.solvers.ichol`.

    Attributes
    ----------
    factor : callable
        ``factor(indptr, indices, data, alpha, modified, rtol)`` factors
        ``A + alpha * diag(A)``. Input: the CSR arrays of ``tril(A)ᵀ``, the
        upper triangle of the symmetric ``A`` (diagonal included, column
        indices sorted, so the diagonal comes first in every row); its row
        ``k`` holds the pattern and values of column ``k`` of ``tril(A)``.
        A pivot ``<= rtol * a_kk`` is a breakdown. Returns ``(indptr,
        indices, data, failed_row)``: ``L``'s CSR arrays (float64 data,
        sorted column indices, the diagonal last in every row) and ``-1``, or
        empty arrays and the row where the factorization broke down.
    solve : callable
        ``solve(sweeps, R)`` returns ``Z`` (float64, shape of ``R``) with
        ``L Lᵀ Z = R``, for ``L`` laid out as :class:`TriangularSweeps` and a
        C-contiguous ``R`` of shape ``(n, k)``.
    """

    factor: Callable[..., FactorResult]
    solve: Callable[[TriangularSweeps, np.ndarray], np.ndarray]


def factor(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    alpha: float,
    modified: bool,
    rtol: float,
) -> FactorResult:
    """IC(0) or MIC(0) of ``A + alpha * diag(A)``; see :class:`IcholKernels`."""
    n = indptr.size - 1
    values = data.astype(np.float64)  # becomes the columns of L, in place
    diagonal = values[indptr[:-1]].copy()
    pivots = (1.0 + alpha) * diagonal
    for k in range(n):
        start, end = indptr[k], indptr[k + 1]
        if not pivots[k] > rtol * diagonal[k]:
            empty = np.empty(0, dtype=indices.dtype)
            return np.empty(0, dtype=indptr.dtype), empty, np.empty(0), k
        values[start] = np.sqrt(pivots[k])
        rows = indices[start + 1 : end]
        column = values[start + 1 : end]
        column /= values[start]
        pivots[rows] -= column**2
        for a in range(rows.size - 1):
            products = column[a] * column[a + 1 :]
            _update_column(
                rows[a], rows[a + 1 :], products, indptr, indices, values, pivots, modified
            )
    return (*_rows_of(indptr, indices, values), -1)


def _update_column(
    j: int,
    targets: np.ndarray,
    products: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    pivots: np.ndarray,
    modified: bool,
) -> None:
    """Subtract ``products`` from column ``j`` of L at rows ``targets`` (> j)."""
    start = indptr[j] + 1  # below the diagonal
    rows = indices[start : indptr[j + 1]]
    where = np.searchsorted(rows, targets)
    kept = where < rows.size
    kept[kept] = rows[where[kept]] == targets[kept]
    values[start + where[kept]] -= products[kept]
    if modified:
        dropped = products[~kept]
        pivots[j] -= dropped.sum()
        pivots[targets[~kept]] -= dropped


def _rows_of(
    indptr: np.ndarray, indices: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column storage of L -> L's CSR arrays, column indices sorted."""
    n = indptr.size - 1
    lower = sp.csc_array((values, indices, indptr), shape=(n, n)).tocsr()
    lower.sort_indices()
    return lower.indptr, lower.indices, lower.data


class TriangularSweeps(NamedTuple):
    """``L`` laid out for the two triangular sweeps of a solve ``L Lᵀ z = r``.

    Both triangles are strictly triangular and scaled by the inverse
    diagonal, so a sweep computes ``y_i = r_i / l_ii - Σ_j (l_ij / l_ii) y_j``
    with one multiplication per row and no division: forward with the rows of
    ``D⁻¹ L``, backward with the rows of ``D⁻¹ Lᵀ``. Column indices are sorted,
    so the entry on the neighbouring row, the one a sweep waits for, is the
    last of a forward row and the first of a backward row. Indices are
    unsigned: Numba then skips its wrap-around test on every index, which
    halves the time of a sweep.
    """

    lower_indptr: np.ndarray
    lower_indices: np.ndarray
    lower_data: np.ndarray
    upper_indptr: np.ndarray
    upper_indices: np.ndarray
    upper_data: np.ndarray
    inverse_diagonal: np.ndarray


def sweeps_of(L: sp.csr_array) -> TriangularSweeps:
    """Lay out a lower-triangular factor ``L`` for :class:`TriangularSweeps`."""
    inverse = 1.0 / L.diagonal().astype(np.float64)
    scale = sp.diags_array(inverse)
    lower = sp.csr_array(scale @ sp.tril(L, k=-1).astype(np.float64))
    upper = sp.csr_array(scale @ sp.triu(L.T, k=1).astype(np.float64))
    lower.sort_indices()
    upper.sort_indices()
    index = np.uint64 if max(lower.nnz, upper.nnz) >= 2**32 else np.uint32
    return TriangularSweeps(
        *(a.astype(index) for a in (lower.indptr, lower.indices)),
        lower.data,
        *(a.astype(index) for a in (upper.indptr, upper.indices)),
        upper.data,
        inverse,
    )


def solve(sweeps: TriangularSweeps, R: np.ndarray) -> np.ndarray:
    """``Z`` with ``L Lᵀ Z = R``; see :class:`IcholKernels`."""
    n = sweeps.inverse_diagonal.size
    unit = sp.eye_array(n, format="csr")
    lower = unit + sp.csr_array(sweeps[0:3][::-1], shape=(n, n))
    upper = unit + sp.csr_array(sweeps[3:6][::-1], shape=(n, n))
    inverse = sweeps.inverse_diagonal[:, None]
    Y = spsolve_triangular(lower, inverse * R, lower=True, unit_diagonal=True)
    return spsolve_triangular(upper, inverse * Y, lower=False, unit_diagonal=True)


REFERENCE_KERNELS = IcholKernels(factor=factor, solve=solve)
