"""The Jacobi (diagonal) preconditioner."""

from __future__ import annotations

from typing import Any

import numpy as np

from linalg._core.namespace import (
    array_kind,
    check_lives_with,
    namespace_of,
    to_host,
    to_numpy,
)
from linalg._core.operators import (
    Operator,
    as_operator,
    check_host_data,
    is_cupyx_sparse,
    is_sparse,
)
from linalg._core.validate import as_float_array, float_input

__all__ = ["DiagonalOperator", "jacobi"]


class DiagonalOperator(Operator):
    """Multiplication by a diagonal matrix ``diag(d)``.

    Parameters
    ----------
    d : array, shape (n,)
        The diagonal: NumPy, or an array of a device library (CuPy, a GPU tensor,
        another array-API library), which then multiplies vectors and blocks of
        that library on its device.
    """

    def __init__(self, d: Any) -> None:
        super().__init__((d.shape[0], d.shape[0]), d.dtype)
        self.diagonal = d
        self._kind = array_kind(d)

    def _matvec(self, v):
        return self._where_diagonal_lives(v) * v

    def _matmat(self, V):
        return self._where_diagonal_lives(V)[:, None] * V

    _rmatvec = _matvec
    _rmatmat = _matmat

    def _where_diagonal_lives(self, V: Any) -> Any:
        """The diagonal, once ``V`` is known to live where it does."""
        check_lives_with(V, "X", self._kind, "the diagonal")
        return self.diagonal

    def as_linear_operator(self):
        """This operator as a :class:`scipy.sparse.linalg.LinearOperator` (host diagonal only)."""
        check_host_data(self._kind, "a host diagonal", "use matvec/matmat on the device")
        return super().as_linear_operator()


def jacobi(A: Any) -> DiagonalOperator:
    """The Jacobi preconditioner ``M = diag(A)⁻¹``.

    Parameters
    ----------
    A : array_like or sparse matrix, shape (n, n)
        A square matrix with a nonzero diagonal (positive, for ``M`` to be
        SPD as :func:`cg` and :func:`minres` require). A CuPy array, a cupyx
        sparse matrix, a GPU tensor (or an array of another array-API library)
        gives an operator whose diagonal stays on that device and which
        multiplies that library's vectors and blocks there, as the device
        paths of the solvers use it.

    Returns
    -------
    DiagonalOperator
        Applies ``diag(A)⁻¹``; pass it as ``M=`` to any solver, or call
        ``as_linear_operator()`` for SciPy (host ``A`` only).

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
    if array_kind(A).via_namespace:
        diagonal = _device_diagonal(A)
    else:
        A = to_numpy(A, "A")
        if is_sparse(A):
            diagonal = np.asarray(as_operator(A, "A").A.diagonal())
        else:
            diagonal = np.diagonal(as_float_array(A, "A", ndim=2))
    shape = tuple(A.shape)
    if diagonal.shape[0] == 0 or shape[0] != shape[1]:
        raise ValueError(f"A must be square and non-empty, got shape {shape}")
    xp = namespace_of(diagonal)
    if not bool(xp.all(diagonal != 0)):  # on a device: one synchronization
        zeros = np.flatnonzero(to_host(diagonal) == 0)
        raise ValueError(
            f"A has a zero on its diagonal (row {int(zeros[0])}); "
            "the Jacobi preconditioner needs a nonzero diagonal"
        )
    return DiagonalOperator(1.0 / diagonal)


def _device_diagonal(A: Any) -> Any:
    """The diagonal of a device matrix (dense, or cupyx sparse), on its device."""
    if is_cupyx_sparse(A):
        float_input(A.data, "A")  # its entries: real floats, finite
        return A.diagonal()
    dense, xp, _ = float_input(A, "A", ndim=2)
    return xp.linalg.diagonal(dense)
