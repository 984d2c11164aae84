"""Products with and solves against Kronecker products, without forming them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from linalg._core.engines import register, select
from linalg._core.namespace import NUMPY, common_kind, to_caller, to_numpy
from linalg._core.results import LinAlgError
from linalg._core.validate import as_float_array, check_real, check_symmetric, result_dtype

__all__ = ["BlasKernels", "kron_matvec", "kron_solve"]

for _operation in ("kron.kron_matvec", "kron.kron_solve", "kron.kfac", "kron.ekfac"):
    register(_operation, "reference", "linalg.kron._products:BlasKernels")


class BlasKernels:
    """The reference engine: every product is a BLAS-3 GEMM through NumPy's matmul.

    ``V`` is one matrix ``(m, n)`` or a batch ``(k, m, n)``. A batch times a
    right factor is one GEMM on the ``(k m, n)`` reshape.
    """

    @staticmethod
    def sandwich(left: np.ndarray, V: np.ndarray, right: np.ndarray) -> np.ndarray:
        """``left @ V @ right`` for every matrix ``V`` of the batch."""
        if V.ndim == 2:
            return left @ (V @ right)
        k, m, n = V.shape
        W = (V.reshape(k * m, n) @ right).reshape(k, m, right.shape[1])
        return np.matmul(left, W)

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
        return np.moveaxis(np.tensordot(factor, X, axes=(1, axis)), 0, axis)


def _kernels(operation: str, engine: str | None, dtype: np.dtype) -> Any:
    return select(operation, engine=engine, kind=NUMPY, dtype=dtype).load()


def check_damping(damping: Any) -> float:
    """A finite ``damping >= 0``."""
    return check_real(damping, "damping", low=0.0)


def symmetric_factor(A: Any, name: str) -> np.ndarray:
    """Validate a square symmetric finite factor; returned as float32/float64."""
    A = as_float_array(to_numpy(A, name), name, ndim=2)
    check_symmetric(A, name)
    return A


def eigh(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors of a symmetric factor, computed in float64."""
    w, Q = np.linalg.eigh(A.astype(np.float64))
    return w, Q


def inverse_scale(scale: np.ndarray, damping: float, what: str) -> np.ndarray:
    """``1 / (scale + damping)``, refusing a (numerically) singular damped matrix."""
    damped = scale + damping
    limit = max(damped.shape) * np.finfo(np.float64).eps * np.abs(damped).max(initial=0.0)
    if not (damped.min() > limit):
        raise LinAlgError(
            f"{what} plus damping * I is not positive definite (smallest eigenvalue "
            f"{damped.min():.3g}); increase damping"
        )
    return 1.0 / damped


def check_matrices(V: Any, name: str, shape: tuple[int, int]) -> np.ndarray:
    """A matrix of ``shape`` or a batch ``(k, *shape)``."""
    V = as_float_array(to_numpy(V, name), name, ndim=(2, 3))
    if V.shape[-2:] != shape:
        raise ValueError(
            f"{name} must have shape {shape} or (k, {shape[0]}, {shape[1]}), got {V.shape}"
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
    A = as_float_array(to_numpy(A, "A"), "A", ndim=2)
    B = as_float_array(to_numpy(B, "B"), "B", ndim=2)
    if X is None:
        raise TypeError("kron_matvec(A, B, X) needs X")
    X = check_matrices(X, "X", (B.shape[1], A.shape[1]))
    kernels = _kernels("kron.kron_matvec", engine, result_dtype(A.dtype, B.dtype, X.dtype))
    return to_caller(kernels.sandwich(B, X, A.T), kind)


def _kron_matvec_list(factors: Sequence[Any], X: Any, engine: str | None) -> Any:
    if len(factors) == 0:
        raise ValueError("factors must hold at least one matrix")
    kind = common_kind(*factors, X)
    mats = [
        as_float_array(to_numpy(F, f"factors[{j}]"), f"factors[{j}]", ndim=2)
        for j, F in enumerate(factors)
    ]
    X = as_float_array(to_numpy(X, "X"), "X")
    d = len(mats)
    columns = tuple(F.shape[1] for F in mats)
    if X.ndim not in (d, d + 1) or X.shape[X.ndim - d :] != columns:
        raise ValueError(
            f"X must have shape {columns} (the columns of the factors) or a leading batch "
            f"axis before them, got {X.shape}"
        )
    kernels = _kernels("kron.kron_matvec", engine, result_dtype(X.dtype, *(F.dtype for F in mats)))
    offset = X.ndim - d
    Y = X
    for j, F in enumerate(mats):
        Y = kernels.mode_product(F, Y, offset + j)
    return to_caller(np.ascontiguousarray(Y), kind)


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
        ``Y``, the shape of ``X``, in the caller's array type.

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
    A = symmetric_factor(A, "A")
    B = symmetric_factor(B, "B")
    X = check_matrices(X, "X", (B.shape[0], A.shape[0]))
    damping = check_damping(damping)
    dtype = result_dtype(A.dtype, B.dtype, X.dtype)
    kernels = _kernels("kron.kron_solve", engine, dtype)
    w_A, Q_A = eigh(A)
    w_B, Q_B = eigh(B)
    scale = inverse_scale(np.outer(w_B, w_A), damping, "A ⊗ B")
    Y = kernels.eigen_solve(Q_B.astype(dtype), Q_A.astype(dtype), scale.astype(dtype), X)
    return to_caller(Y.astype(dtype, copy=False), kind)
