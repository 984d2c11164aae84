"""Products with and solves against Kronecker products, without forming them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from linalg._core.engines import ANY_ARRAY_LIBRARY, register, select
from linalg._core.namespace import NUMPY, ArrayKind, common_kind, namespace_of, to_caller, to_numpy
from linalg._core.results import LinAlgError
from linalg._core.validate import (
    as_float_array,
    check_real,
    check_symmetric,
    float_input,
    result_dtype,
)

__all__ = ["BlasKernels", "kron_matvec", "kron_solve"]

for _operation in ("kron.kron_matvec", "kron.kron_solve", "kron.kfac", "kron.ekfac"):
    register(
        _operation, "reference", "linalg.kron._products:BlasKernels", libraries=ANY_ARRAY_LIBRARY
    )


class BlasKernels:
    """The reference engine: every product is a BLAS-3 GEMM through the arrays'
    own matmul (NumPy's on the host; CuPy's or a GPU tensor's on a GPU).

    ``V`` is one matrix ``(m, n)`` or a batch ``(k, m, n)``. A batch times a
    right factor is one GEMM on the ``(k m, n)`` reshape.
    """

    @staticmethod
    def sandwich(left: np.ndarray, V: np.ndarray, right: np.ndarray) -> np.ndarray:
        """``left @ V @ right`` for every matrix ``V`` of the batch."""
        if V.ndim == 2:
            return left @ (V @ right)
        xp = namespace_of(V)
        k, m, n = V.shape
        W = xp.reshape(xp.reshape(V, (k * m, n)) @ right, (k, m, right.shape[1]))
        return left @ W

    @staticmethod
    def eigen_solve(
        Q_left: np.ndarray, Q_right: np.ndarray, inverse_scale: np.ndarray, V: np.ndarray
    ) -> np.ndarray:
        """``Q_left [(Q_leftᵀ V Q_right) * inverse_scale] Q_rightᵀ``: four GEMMs and a product."""
        W = BlasKernels.sandwich(Q_left.T, V, Q_right)
        W *= inverse_scale
        return BlasKernels.sandwich(Q_left, W, Q_right.T)

    @staticmethod
    def mode_product(factor: np.ndarray, X: np.ndarray, axis: int) -> np.ndarray:
        """Multiply axis ``axis`` of ``X`` by ``factor`` (``X ×_axis factor``)."""
        xp = namespace_of(X)
        return xp.moveaxis(xp.tensordot(factor, X, axes=([1], [axis])), 0, axis)


def _kernels(operation: str, engine: str | None, dtype: np.dtype, kind: ArrayKind = NUMPY) -> Any:
    kind = kind if kind.via_namespace else NUMPY
    return select(operation, engine=engine, kind=kind, dtype=dtype).load()


def astype(x: Any, dtype: np.dtype) -> Any:
    """``x`` in the float dtype named like the NumPy ``dtype``, in ``x``'s namespace."""
    xp = namespace_of(x)
    return xp.astype(x, getattr(xp, np.dtype(dtype).name), copy=False)


def check_damping(damping: Any) -> float:
    """A finite ``damping >= 0``."""
    return check_real(damping, "damping", low=0.0)


def _matrix(x: Any, name: str, ndim: Any, anywhere: bool) -> Any:
    """A float array: host data as NumPy; with ``anywhere``, device data stays put."""
    if anywhere:
        return float_input(x, name, ndim=ndim)[0]
    return as_float_array(to_numpy(x, name), name, ndim=ndim)


def symmetric_factor(A: Any, name: str, *, anywhere: bool = False) -> Any:
    """Validate a square symmetric finite factor; returned as float32/float64."""
    A = _matrix(A, name, 2, anywhere)
    check_symmetric(A, name)
    return A


def eigh(A: Any) -> tuple[Any, Any]:
    """Eigenvalues and eigenvectors of a symmetric factor, computed in float64."""
    xp = namespace_of(A)
    w, Q = xp.linalg.eigh(xp.astype(A, xp.float64))
    return w, Q


def inverse_scale(scale: Any, damping: float, what: str) -> Any:
    """``1 / (scale + damping)``, refusing a (numerically) singular damped matrix."""
    xp = namespace_of(scale)
    damped = scale + damping
    smallest = float(xp.min(damped))
    limit = max(damped.shape) * np.finfo(np.float64).eps * float(xp.max(xp.abs(damped)))
    if not (smallest > limit):
        raise LinAlgError(
            f"{what} plus damping * I is not positive definite (smallest eigenvalue "
            f"{smallest:.3g}); increase damping"
        )
    return 1.0 / damped


def check_matrices(V: Any, name: str, shape: tuple[int, int], *, anywhere: bool = False) -> Any:
    """A matrix of ``shape`` or a batch ``(k, *shape)``."""
    V = _matrix(V, name, (2, 3), anywhere)
    if tuple(V.shape[-2:]) != shape:
        raise ValueError(
            f"{name} must have shape {shape} or (k, {shape[0]}, {shape[1]}), got {tuple(V.shape)}"
        )
    return V


def inverse_operator(solve: Callable, shape: tuple[int, int], dtype: np.dtype):
    """A SciPy LinearOperator ``vec(V) -> vec(solve(V))``, column-major ``vec``.

    ``solve`` maps NumPy matrices ``(m, n)`` or batches ``(k, m, n)`` to the same
    shapes, and is symmetric (so it is its own adjoint).
    """
    from scipy.sparse.linalg import LinearOperator

    m, n = shape

    def matmat(X: np.ndarray) -> np.ndarray:
        k = X.shape[1]
        V = X.T.reshape(k, n, m).transpose(0, 2, 1)
        return solve(V).transpose(0, 2, 1).reshape(k, m * n).T

    def matvec(x: np.ndarray) -> np.ndarray:
        return matmat(np.reshape(x, (m * n, 1)))[:, 0]

    return LinearOperator(
        (m * n, m * n), matvec=matvec, rmatvec=matvec, matmat=matmat, rmatmat=matmat, dtype=dtype
    )


def kron_matvec(A: Any, B: Any, X: Any = None, *, engine: str | None = None) -> Any:
    """Apply a Kronecker product to a vector without forming it.

    Two forms:

    * ``kron_matvec(A, B, X)``: ``(A ⊗ B) vec(X)`` with the column-major
      ``vec`` (stacked columns). ``A`` is ``(p, q)``, ``B`` is ``(r, s)`` and
      ``X`` is ``(s, q)`` (columns of ``B``, columns of ``A``), or a batch
      ``(k, s, q)``; the result is ``B X Aᵀ``, ``(r, p)`` (or ``(k, r, p)``).
    * ``kron_matvec([A1, ..., Ad], X)``: ``(A1 ⊗ ... ⊗ Ad) x`` for a tensor
      ``X`` of shape ``(n1, ..., nd)`` whose axis ``j`` has the columns of
      ``Aj``, read in row-major (C) order: ``x = X.reshape(-1)``. The result
      is the tensor ``X ×_1 A1 ×_2 A2 ... ×_d Ad`` of shape ``(m1, ..., md)``,
      whose C-order ravel equals ``numpy.kron(A1, ..., Ad) @ X.reshape(-1)``.
      A leading batch axis on ``X`` (``ndim = d + 1``) is kept.

    The two forms agree: ``kron_matvec([A, B], X.T)`` is ``kron_matvec(A, B, X).T``.

    Parameters
    ----------
    A : array_like or sequence of array_like
        The first factor, or the list of all factors (then ``B`` is ``X``).
    B : array_like
        The second factor (two-factor form) or the tensor ``X`` (list form).
    X : array_like, optional
        The matrix (or batch) to multiply, in the two-factor form only.
    engine : {"auto", "reference"}, optional
        Only ``"reference"`` (BLAS-3 products) is registered.

    Returns
    -------
    array
        The product, in the caller's array type and the inputs' float dtype.
        CuPy arrays, GPU tensors and other array-API arrays are multiplied in
        their own library (every input in one place, else a TypeError).

    Notes
    -----
    Cost: ``O(r s q + r q p)`` flops (two GEMMs) instead of ``O(p q r s)``
    for the explicit product; ``d`` tensor contractions in the list form.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.kron import kron_matvec
    >>> A, B = np.array([[1.0, 2.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> X = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> kron_matvec(A, B, X)  # B X Aᵀ
    array([[11.],
           [ 5.]])
    >>> np.kron(A, B) @ X.reshape(-1, order="F")
    array([11.,  5.])
    >>> kron_matvec([A, B], X.T)
    array([[11.,  5.]])
    """
    if isinstance(A, list | tuple):
        if X is not None:
            raise TypeError("kron_matvec(factors, X) takes no third argument")
        return _kron_matvec_list(A, B, engine)
    kind = common_kind(A, B, X)
    A = _matrix(A, "A", 2, anywhere=True)
    B = _matrix(B, "B", 2, anywhere=True)
    if X is None:
        raise TypeError("kron_matvec(A, B, X) needs X")
    X = check_matrices(X, "X", (B.shape[1], A.shape[1]), anywhere=True)
    dtype = result_dtype(A.dtype, B.dtype, X.dtype)
    kernels = _kernels("kron.kron_matvec", engine, dtype, kind)
    A, B, X = (astype(M, dtype) for M in (A, B, X))
    return to_caller(kernels.sandwich(B, X, A.T), kind)


def _kron_matvec_list(factors: Sequence[Any], X: Any, engine: str | None) -> Any:
    if len(factors) == 0:
        raise ValueError("factors must hold at least one matrix")
    kind = common_kind(*factors, X)
    mats = [_matrix(F, f"factors[{j}]", 2, anywhere=True) for j, F in enumerate(factors)]
    X = _matrix(X, "X", None, anywhere=True)
    d = len(mats)
    columns = tuple(F.shape[1] for F in mats)
    if X.ndim not in (d, d + 1) or tuple(X.shape[X.ndim - d :]) != columns:
        raise ValueError(
            f"X must have shape {columns} (the columns of the factors) or a leading batch "
            f"axis before them, got {tuple(X.shape)}"
        )
    dtype = result_dtype(X.dtype, *(F.dtype for F in mats))
    kernels = _kernels("kron.kron_matvec", engine, dtype, kind)
    offset = X.ndim - d
    Y = astype(X, dtype)
    for j, F in enumerate(mats):
        Y = kernels.mode_product(astype(F, dtype), Y, offset + j)
    return to_caller(np.ascontiguousarray(Y) if isinstance(Y, np.ndarray) else Y, kind)


def kron_solve(A: Any, B: Any, X: Any, *, damping: float, engine: str | None = None) -> Any:
    """Solve ``(A ⊗ B + λ I) vec(Y) = vec(X)`` through eigendecompositions of ``A`` and ``B``.

    Same convention as :func:`kron_matvec`: column-major ``vec``, ``X`` of
    shape ``(n_B, n_A)`` or a batch ``(k, n_B, n_A)``. With ``A = Q_A Λ_A
    Q_Aᵀ`` and ``B = Q_B Λ_B Q_Bᵀ``, ``Y = Q_B [(Q_Bᵀ X Q_A) / (λ_B λ_Aᵀ +
    λ)] Q_Aᵀ``.

    Parameters
    ----------
    A, B : array_like, square and symmetric
        The factors (``A`` acts on the columns of ``X``, ``B`` on its rows).
    X : array_like, shape (n_B, n_A) or (k, n_B, n_A)
        Right-hand side(s).
    damping : float
        ``λ >= 0``.
    engine : {"auto", "reference"}, optional
        Only ``"reference"`` (BLAS-3 products) is registered.

    Returns
    -------
    array
        ``Y``, the shape of ``X``, in the caller's array type (computed on
        the device for CuPy arrays and GPU tensors, as :func:`kron_matvec`).

    Raises
    ------
    LinAlgError
        If ``A ⊗ B + λ I`` is not positive definite (increase damping).

    Notes
    -----
    Cost: two symmetric eigendecompositions (in float64) and four GEMMs.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.kron import kron_solve
    >>> A, B = np.diag([1.0, 2.0]), np.diag([3.0])
    >>> kron_solve(A, B, np.array([[4.0, 7.0]]), damping=1.0)
    array([[1., 1.]])
    """
    kind = common_kind(A, B, X)
    A = symmetric_factor(A, "A", anywhere=True)
    B = symmetric_factor(B, "B", anywhere=True)
    X = check_matrices(X, "X", (B.shape[0], A.shape[0]), anywhere=True)
    damping = check_damping(damping)
    dtype = result_dtype(A.dtype, B.dtype, X.dtype)
    kernels = _kernels("kron.kron_solve", engine, dtype, kind)
    w_A, Q_A = eigh(A)
    w_B, Q_B = eigh(B)
    scale = inverse_scale(w_B[:, None] * w_A[None, :], damping, "A ⊗ B")
    Q_B, Q_A, scale, X = (astype(M, dtype) for M in (Q_B, Q_A, scale, X))
    return to_caller(kernels.eigen_solve(Q_B, Q_A, scale, X), kind)
