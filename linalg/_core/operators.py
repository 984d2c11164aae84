"""Anything matrix-like behind one interface.

Dense arrays, SciPy sparse matrices and arrays, SciPy ``LinearOperator`` and
plain callables ``v -> A v`` all become an :class:`Operator` with ``shape``,
``dtype``, ``matvec``, ``rmatvec``, ``matmat`` and ``rmatmat`` on NumPy
arrays. A callable is called with vectors of the caller's own array type (a
PyTorch closure receives torch tensors), through DLPack, without copies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from linalg._core.namespace import NUMPY, ArrayKind, numpy_dtype, to_caller, to_numpy
from linalg._core.validate import as_float_array, check_finite, float_dtype

__all__ = ["Operator", "as_operator", "check_host_data", "is_cupyx_sparse", "is_sparse"]


class Operator:
    """A linear map on NumPy arrays.

    Subclasses implement ``_matmat`` (and ``_rmatmat`` for the adjoint);
    ``_matvec`` defaults to a one-column ``_matmat`` and vice versa.

    Parameters
    ----------
    shape : tuple of int
        ``(m, n)``.
    dtype : numpy.dtype
        float32 or float64.
    """

    def __init__(self, shape: tuple[int, int], dtype: np.dtype) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = numpy_dtype(dtype)

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """``A @ v`` for ``v`` of shape ``(n,)``."""
        return self._matvec(v)

    def matmat(self, V: np.ndarray) -> np.ndarray:
        """``A @ V`` for ``V`` of shape ``(n, k)``."""
        return self._matmat(V)

    def rmatvec(self, v: np.ndarray) -> np.ndarray:
        """``Aᵀ @ v`` for ``v`` of shape ``(m,)``."""
        return self._rmatvec(v)

    def rmatmat(self, V: np.ndarray) -> np.ndarray:
        """``Aᵀ @ V`` for ``V`` of shape ``(m, k)``."""
        return self._rmatmat(V)

    def apply(self, X: np.ndarray) -> np.ndarray:
        """``A @ X`` for ``X`` of shape ``(n,)`` or ``(n, k)``."""
        return self.matvec(X) if X.ndim == 1 else self.matmat(X)

    def _matvec(self, v: np.ndarray) -> np.ndarray:
        return self._matmat(v[:, None])[:, 0]

    def _matmat(self, V: np.ndarray) -> np.ndarray:
        if type(self)._matvec is Operator._matvec:
            raise NotImplementedError(f"{type(self).__name__} defines neither product")
        return np.stack([self._matvec(V[:, j]) for j in range(V.shape[1])], axis=1)

    def _rmatvec(self, v: np.ndarray) -> np.ndarray:
        return self._rmatmat(v[:, None])[:, 0]

    def _rmatmat(self, V: np.ndarray) -> np.ndarray:
        if type(self)._rmatvec is Operator._rmatvec:
            raise self._no_adjoint()
        return np.stack([self._rmatvec(V[:, j]) for j in range(V.shape[1])], axis=1)

    def _no_adjoint(self) -> TypeError:
        return TypeError(
            f"{type(self).__name__} has no adjoint product, and this routine needs Aᵀ v: "
            "pass a matrix or a LinearOperator with rmatvec instead"
        )

    def as_linear_operator(self):
        """This operator as a :class:`scipy.sparse.linalg.LinearOperator`."""
        from scipy.sparse.linalg import LinearOperator

        return LinearOperator(
            self.shape,
            matvec=self.matvec,
            rmatvec=self.rmatvec,
            matmat=self.matmat,
            rmatmat=self.rmatmat,
            dtype=self.dtype,
        )

    def __repr__(self) -> str:
        m, n = self.shape
        return f"<{m}x{n} {type(self).__name__} with dtype={self.dtype}>"


class MatrixOperator(Operator):
    """A matrix that multiplies with ``@``: a NumPy array, a SciPy sparse
    matrix or array in CSR or CSC format, or a dense array of another library
    (CuPy, a GPU tensor) multiplied in its own namespace."""

    def __init__(self, A: Any) -> None:
        super().__init__(A.shape, A.dtype)
        self.A = A

    def _matvec(self, v):
        return self.A @ v

    _matmat = _matvec

    def _rmatvec(self, v):
        return self.A.T @ v

    def _rmatmat(self, V):
        if isinstance(self.A, np.ndarray):
            return (V.T @ self.A).T  # OpenBLAS runs Vᵀ A about 1.6x faster than Aᵀ V
        return self.A.T @ V


class LinearOperatorAdapter(Operator):
    """A SciPy ``LinearOperator``, or any object with ``shape`` and ``matvec``."""

    def __init__(self, L: Any, dtype: np.dtype) -> None:
        super().__init__(L.shape, dtype)
        self.L = L

    def _matvec(self, v):
        return np.asarray(self.L.matvec(v)).reshape(self.shape[0])

    def _matmat(self, V):
        if hasattr(self.L, "matmat"):
            return np.asarray(self.L.matmat(V)).reshape(self.shape[0], V.shape[1])
        return super()._matmat(V)

    def _rmatvec(self, v):
        if not hasattr(self.L, "rmatvec"):
            raise self._no_adjoint()
        return np.asarray(self.L.rmatvec(v)).reshape(self.shape[1])

    def _rmatmat(self, V):
        if not hasattr(self.L, "rmatmat"):
            return super()._rmatmat(V)
        try:
            return np.asarray(self.L.rmatmat(V)).reshape(self.shape[1], V.shape[1])
        except (NotImplementedError, TypeError) as exc:  # SciPy's, built without rmatvec
            raise self._no_adjoint() from exc


class CallableOperator(Operator):
    """A function ``v -> A v`` (and optionally ``v -> Aᵀ v``) in the caller's array type."""

    def __init__(
        self,
        matvec: Callable,
        shape: tuple[int, int],
        dtype: np.dtype,
        kind: ArrayKind,
        rmatvec: Callable | None = None,
        name: str = "A",
    ) -> None:
        super().__init__(shape, dtype)
        self.function = matvec
        self.adjoint = rmatvec
        self.kind = kind
        self.name = name

    def _call(self, function: Callable, v: np.ndarray, rows: int) -> np.ndarray:
        out = to_numpy(function(to_caller(v, self.kind)), f"the result of {self.name}")
        out = np.asarray(out)
        if out.size != rows:
            raise ValueError(
                f"{self.name} returned shape {out.shape} for an input of shape {v.shape}; "
                f"expected {rows} entries"
            )
        return out.reshape(rows).astype(self.dtype, copy=False)

    def _matvec(self, v):
        return self._call(self.function, v, self.shape[0])

    def _rmatvec(self, v):
        if self.adjoint is None:
            raise self._no_adjoint()
        return self._call(self.adjoint, v, self.shape[1])


def as_operator(
    A: Any,
    name: str = "A",
    *,
    shape: tuple[int, int] | None = None,
    dtype: np.dtype | None = None,
    kind: ArrayKind = NUMPY,
) -> Operator:
    """Turn anything matrix-like into an :class:`Operator`, validating it.

    Parameters
    ----------
    A : array_like, sparse matrix, LinearOperator, Operator or callable
        The matrix. Host tensors (torch, JAX) are read through DLPack.
    name : str
        The argument's name, for error messages.
    shape : tuple of int, optional
        Required for a callable (which has no shape of its own).
    dtype : numpy.dtype, optional
        The dtype a callable computes in (default float64).
    kind : ArrayKind
        The caller's array type: what a callable is handed.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg._core.operators import as_operator
    >>> op = as_operator(lambda v: 2 * v, shape=(3, 3))
    >>> op.matvec(np.ones(3))
    array([2., 2., 2.])
    """
    if isinstance(A, Operator):
        return A
    A = to_numpy(A, name)
    if is_sparse(A):
        return _sparse_operator(A, name)
    if isinstance(A, np.ndarray) or (hasattr(A, "__array__") and not hasattr(A, "matvec")):
        arr = as_float_array(A, name, ndim=2)
        return MatrixOperator(arr)
    if is_linear_operator(A):
        op_dtype = getattr(A, "dtype", None)
        op_dtype = float_dtype(op_dtype, name) if op_dtype is not None else np.dtype(np.float64)
        if len(A.shape) != 2:
            raise ValueError(f"{name} must be 2-D, got shape {A.shape}")
        return LinearOperatorAdapter(A, op_dtype)
    if callable(A):
        if shape is None:
            raise TypeError(f"{name} is a callable, so its shape must be known from the data")
        return CallableOperator(A, shape, dtype or np.float64, kind, name=name)
    raise TypeError(
        f"{name} must be an array, a scipy.sparse matrix, a LinearOperator or a callable "
        f"v -> {name} v; got {type(A).__name__}"
    )


def is_sparse(A: Any) -> bool:
    return type(A).__module__.startswith("scipy.sparse") and hasattr(A, "format")


def is_cupyx_sparse(A: Any) -> bool:
    """A ``cupyx.scipy.sparse`` matrix (told without importing CuPy)."""
    return type(A).__module__.startswith("cupyx.scipy.sparse")


def check_host_data(kind: ArrayKind, needs: str, remedy: str) -> None:
    """Refuse :meth:`Operator.as_linear_operator` for an operator whose data is of
    ``kind``, when that is on a device: a SciPy LinearOperator computes on NumPy."""
    if kind.via_namespace:
        raise TypeError(
            f"as_linear_operator needs {needs} (a SciPy LinearOperator), and this operator "
            f"holds {kind}: {remedy}"
        )


def is_linear_operator(A: Any) -> bool:
    """A SciPy ``LinearOperator`` or any object with ``shape`` and ``matvec`` (not an Operator)."""
    return hasattr(A, "shape") and hasattr(A, "matvec") and not isinstance(A, Operator)


def _sparse_operator(A: Any, name: str) -> MatrixOperator:
    if len(A.shape) != 2:
        raise ValueError(f"{name} must be 2-D, got shape {A.shape}")
    if A.shape[0] == 0 or A.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {A.shape})")
    dtype = float_dtype(A.dtype, name)
    if A.format not in {"csr", "csc"}:
        A = A.tocsr()
    if A.dtype != dtype:
        A = A.astype(dtype)
    check_finite(A.data, name)
    return MatrixOperator(A)
