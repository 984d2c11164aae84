"""The Jacobi (diagonal) preconditioner."""

from __future__ import annotations

from typing import Any

import numpy as np

from linalg._core.namespace import to_numpy
from linalg._core.operators import Operator, as_operator, is_sparse
from linalg._core.validate import as_float_array

__all__ = ["DiagonalOperator", "jacobi"]


class DiagonalOperator(Operator):
    """Multiplication by a diagonal matrix ``diag(d)``.

    Parameters
    ----------
    d : numpy.ndarray
        The diagonal, shape ``(n,)``.
    """

    def __init__(self, d: np.ndarray) -> None:
        super().__init__((d.size, d.size), d.dtype)
        self.diagonal = d

    def _matvec(self, v):
        return self.diagonal * v

    def _matmat(self, V):
        return self.diagonal[:, None] * V

    _rmatvec = _matvec
    _rmatmat = _matmat


def jacobi(A: Any) -> DiagonalOperator:
    """The Jacobi preconditioner ``M = diag(A)⁻¹``.

    Parameters
    ----------
    A : array_like or sparse matrix, shape (n, n)
        A square matrix with a nonzero diagonal (positive, for ``M`` to be
        SPD as :func:`cg` and :func:`minres` require).

    Returns
    -------
    DiagonalOperator
        Applies ``diag(A)⁻¹``; pass it as ``M=`` to any solver, or call
        ``as_linear_operator()`` for SciPy.

    Raises
    ------
    ValueError
        If ``A`` is not square or has a zero on its diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.solvers import cg, jacobi
    >>> A = np.diag([1.0, 10.0, 100.0]) + 0.1
    >>> res = cg(A, np.ones(3), M=jacobi(A), rtol=1e-10)
    >>> res.converged
    True
    """
    A = to_numpy(A, "A")
    if is_sparse(A):
        op = as_operator(A, "A")
        diagonal = np.asarray(op.A.diagonal())
    else:
        dense = as_float_array(A, "A", ndim=2)
        diagonal = np.diagonal(dense)
    if diagonal.size == 0 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be square and non-empty, got shape {A.shape}")
    if not np.all(diagonal != 0):
        raise ValueError(
            f"A has a zero on its diagonal (row {int(np.flatnonzero(diagonal == 0)[0])}); "
            "the Jacobi preconditioner needs a nonzero diagonal"
        )
    return DiagonalOperator(1.0 / diagonal)
