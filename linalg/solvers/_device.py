"""What the device solvers share: a system ``A X = B`` validated where its data
lives, products of ``A`` and ``M`` with blocks in the data's namespace, per-column
reductions, and the host's rare look at a few small arrays.

Every device solver (``_cg_device.py``, ``_minres_device.py``, ``_gmres_device.py``,
``_lsqr_device.py``) iterates on ``(n, k)`` blocks, one column per right-hand side,
and keeps the per-column scalars of its recurrences as device arrays of shape
``(k,)`` in float64, as the host solvers keep them in Python floats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from linalg._core.namespace import (
    ArrayKind,
    array_kind,
    common_kind,
    device_of,
    numpy_dtype,
    to_host,
)
from linalg._core.operators import Operator, is_cupyx_sparse, is_linear_operator, is_sparse
from linalg._core.validate import float_input, result_dtype

__all__ = [
    "BlockOperator",
    "DeviceSystem",
    "check_engine",
    "column_dots",
    "column_norms",
    "fetch",
    "prepare",
    "scaled",
]


@dataclass
class BlockOperator:
    """``X -> A X`` (and ``X -> Aᵀ X`` where known) on blocks ``X`` of shape ``(n, k)``.

    ``dtype`` is None for a callable, which computes in the dtype of the vectors
    it is given. Products come back in the dtype of ``X``. ``matrix`` is the
    dense array or cupyx sparse matrix behind the products, if there is one.
    """

    shape: tuple[int, int]
    dtype: np.dtype | None
    name: str
    forward: Callable[[Any], Any]
    adjoint: Callable[[Any], Any] | None
    xp: Any
    matrix: Any = None

    def matmat(self, X: Any) -> Any:
        return self.xp.astype(self.forward(X), X.dtype, copy=False)

    def rmatmat(self, X: Any) -> Any:
        if self.adjoint is None:
            raise TypeError(
                f"this solver needs {self.name}ᵀ v, and a plain callable gives only "
                f"{self.name} v: pass a matrix or an Operator that defines rmatmat"
            )
        return self.xp.astype(self.adjoint(X), X.dtype, copy=False)

    def astype(self, dtype: np.dtype) -> BlockOperator:
        """This operator computing in ``dtype``: a matrix of another dtype is cast
        once (some libraries, torch for one, refuse to multiply mixed dtypes)."""
        if self.matrix is None or self.dtype == dtype:
            return self
        matrix = self.xp.astype(self.matrix, getattr(self.xp, dtype.name))
        return _matrix_operator(matrix, self.name, self.xp)

    def shifted(self, shift: float) -> BlockOperator:
        """``A - shift I``."""
        return BlockOperator(
            self.shape, self.dtype, self.name, lambda X: self.matmat(X) - shift * X, None, self.xp
        )


@dataclass
class DeviceSystem:
    """``A X = B`` with ``B`` of shape ``(m, k)``, in namespace ``xp``.

    ``X0`` is the start, ``(n, k)``, or None (zeros); ``vector`` says whether
    ``b`` was one vector; ``kind`` is where the answer goes back.
    """

    A: BlockOperator
    B: Any
    X0: Any
    M: BlockOperator | None
    xp: Any
    kind: ArrayKind
    vector: bool

    @property
    def device(self) -> Any:
        return device_of(self.B)

    def start(self) -> Any:
        """The starting block: ``X0``, or zeros."""
        n, k = self.A.shape[1], self.B.shape[1]
        if self.X0 is not None:
            return self.X0
        return self.xp.zeros((n, k), dtype=self.B.dtype, device=self.device)

    def residual(self, X: Any, A: BlockOperator | None = None) -> Any:
        """``B - A X`` (``A`` defaults to the system's)."""
        return self.B - (self.A if A is None else A).matmat(X)

    def caller_shape(self, X: Any) -> Any:
        """``X`` shaped as the caller's ``b``: one column as a vector."""
        return X[:, 0] if self.vector else X


def check_engine(engine: str | None, solver: str, b: Any) -> None:
    """Device data is computed by its own library: only "auto" and "reference"."""
    if engine not in (None, "auto", "reference"):
        raise TypeError(
            f"engine {engine!r} has no {solver} for {array_kind(b)}: use engine='reference' "
            "(the array-API iteration on the data's device) or move the data to the host"
        )


def prepare(A: Any, b: Any, x0: Any, M: Any, *, square: bool = True) -> DeviceSystem:
    """Validate ``A``, ``b``, ``x0`` and ``M`` where they live, with the host's errors.

    ``b`` may be ``(m,)`` or ``(m, k)``. A callable ``A`` is taken as square with the
    size of ``b`` (``square=True``). Nothing is copied unless a dtype conversion
    needs it.
    """
    kind = common_kind(A, b, x0, M)
    b_in, xp, _ = float_input(b, "b", ndim=(1, 2))
    vector = b_in.ndim == 1
    B = b_in[:, None] if vector else b_in
    m = B.shape[0]
    op = block_operator(A, "A", xp, kind, size=m if square else None)
    if square and op.shape[0] != op.shape[1]:
        raise ValueError(f"A must be square, got shape {op.shape}")
    if op.shape[0] != m:
        raise ValueError(f"b has {m} rows but A has shape {op.shape}; they must match")
    dtype = result_dtype(op.dtype or B.dtype, B.dtype)
    op = op.astype(dtype)
    B = xp.astype(B, getattr(xp, dtype.name), copy=False)
    n = op.shape[1]
    X0 = None
    if x0 is not None:
        X0 = float_input(x0, "x0", ndim=b_in.ndim)[0]
        expected = (n, *b_in.shape[1:])
        if tuple(X0.shape) != expected:
            raise ValueError(f"x0 must have shape {expected}, got {tuple(X0.shape)}")
        X0 = xp.astype(X0[:, None] if vector else X0, B.dtype, copy=False)
    precond = None
    if M is not None:
        precond = block_operator(M, "M", xp, kind, size=n)
        if precond.shape != (n, n):
            raise ValueError(f"M must have shape {(n, n)}, got {precond.shape}")
        precond = precond.astype(dtype)
    return DeviceSystem(op, B, X0, precond, xp, kind, vector)


def block_operator(
    A: Any, name: str, xp: Any, kind: ArrayKind, *, size: int | None
) -> BlockOperator:
    """``A`` as a :class:`BlockOperator` on blocks of ``kind``: a dense array of the
    same library, a cupyx sparse matrix, a linalg :class:`Operator` or any object
    with ``shape`` and ``matmat`` (not SciPy's) whose products take such blocks, or
    a callable ``v -> A v`` (square, of ``size``)."""
    if isinstance(A, Operator):
        forward = _checked(A.matmat, name, A.shape[0], kind)
        adjoint = _checked(_operator_adjoint(A, name), name, A.shape[1], kind)
        return BlockOperator(A.shape, A.dtype, name, forward, adjoint, xp)
    if _is_device_operator(A):
        shape = (int(A.shape[0]), int(A.shape[1]))
        dtype = numpy_dtype(A.dtype) if hasattr(A, "dtype") else None
        forward = _checked(A.matmat, name, shape[0], kind)
        rmatmat = getattr(A, "rmatmat", None)
        adjoint = None if rmatmat is None else _checked(rmatmat, name, shape[1], kind)
        return BlockOperator(shape, dtype, name, forward, adjoint, xp)
    if is_sparse(A) or is_linear_operator(A):
        raise TypeError(
            f"{name} is a SciPy {'sparse matrix' if is_sparse(A) else 'LinearOperator'}, which "
            f"computes on NumPy arrays, and b holds {kind}: pass {name} as an array of b's "
            "library, a cupyx sparse matrix, an Operator or a callable, or move b to the host"
        )
    if callable(A) and not hasattr(A, "shape"):
        if size is None:
            raise TypeError(f"{name} is a callable, so its shape must be known from the data")
        columns = _checked(_by_columns(A, name, xp, kind), name, size, kind)
        return BlockOperator((size, size), None, name, columns, None, xp)
    if is_cupyx_sparse(A):
        float_input(A.data, name)  # its entries: real floats, finite
        matrix = A  # multiplied with @, on its device
    else:
        matrix = float_input(A, name, ndim=2)[0]
    return _matrix_operator(matrix, name, xp)


def _is_device_operator(A: Any) -> bool:
    """An object with ``shape`` and ``matmat`` that is not SciPy's (whose products
    convert their arguments to NumPy): a user's operator on device blocks."""
    return (
        hasattr(A, "shape")
        and callable(getattr(A, "matmat", None))
        and not type(A).__module__.startswith("scipy.")
    )


def _matrix_operator(matrix: Any, name: str, xp: Any) -> BlockOperator:
    """The products of a dense device array or a cupyx sparse matrix, with ``@``."""
    shape = (int(matrix.shape[0]), int(matrix.shape[1]))
    dtype = numpy_dtype(matrix.dtype)
    return BlockOperator(shape, dtype, name, matrix.__matmul__, matrix.T.__matmul__, xp, matrix)


def _operator_adjoint(A: Operator, name: str) -> Callable[[Any], Any]:
    def adjoint(X: Any) -> Any:
        try:
            return A.rmatmat(X)
        except NotImplementedError as exc:
            raise TypeError(
                f"this solver needs {name}ᵀ v, but {name} has no rmatmat: pass a matrix "
                "or an Operator that defines rmatmat"
            ) from exc

    return adjoint


def _by_columns(A: Callable[[Any], Any], name: str, xp: Any, kind: ArrayKind) -> Callable:
    """A callable ``v -> A v`` applied to every column of a block."""

    def columns(X: Any) -> Any:
        out = [_where_b_lives(A(X[:, j]), name, kind) for j in range(X.shape[1])]
        return xp.stack([xp.reshape(column, (-1,)) for column in out], axis=1)

    return columns


def _where_b_lives(out: Any, name: str, kind: ArrayKind) -> Any:
    """``out``, a product by ``name``, once known to be of ``kind``."""
    if array_kind(out) != kind:
        raise TypeError(
            f"{name} returned {array_kind(out)} for {kind}: {name} must compute where the "
            "data lives (pass an operator of the data's library, or move the data to the host)"
        )
    return out


def _checked(apply: Callable[[Any], Any], name: str, rows: int, kind: ArrayKind) -> Callable:
    """``apply`` whose results are checked: of ``kind`` (not moved anywhere), ``rows`` tall."""

    def product(X: Any) -> Any:
        out = _where_b_lives(apply(X), name, kind)
        if tuple(out.shape) != (rows, X.shape[1]):
            expected = (rows,) if X.shape[1] == 1 else (rows, X.shape[1])
            raise ValueError(f"{name} returned shape {tuple(out.shape)}; expected {expected}")
        return out

    return product


def column_dots(xp: Any, X: Any, Y: Any) -> Any:
    """``xᵀ y`` per column, accumulated in float64 (as the host solvers' dots)."""
    return xp.sum(xp.astype(X, xp.float64) * xp.astype(Y, xp.float64), axis=0)


def column_norms(xp: Any, X: Any) -> Any:
    """``||x||`` per column, accumulated in float64."""
    return xp.sqrt(column_dots(xp, X, X))


def scaled(xp: Any, X: Any, c: Any) -> Any:
    """``X`` times the per-column float64 ``c``, rounded to ``X``'s dtype first (as a
    Python float multiplies a float32 vector on the host)."""
    return X * xp.astype(c, X.dtype)


def fetch(xp: Any, *arrays: Any) -> list[np.ndarray]:
    """Small device arrays on the host, in float64, brought over in one transfer:
    one synchronization for all of them."""
    flat = xp.concat([xp.reshape(xp.astype(a, xp.float64), (-1,)) for a in arrays])
    host = to_host(flat)
    out, start = [], 0
    for a in arrays:
        shape = tuple(a.shape)
        size = int(np.prod(shape))
        out.append(host[start : start + size].reshape(shape))
        start += size
    return out
