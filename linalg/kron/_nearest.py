"""Nearest Kronecker product approximation (Van Loan–Pitsianis)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from linalg._core.namespace import Placement, common_kind, numpy_dtype, placement_of, to_caller
from linalg._core.random import as_random_stream
from linalg._core.validate import check_int, float_input

__all__ = ["KronApprox", "nearest_kronecker"]

_METHODS = ("svd", "power")


@dataclass(frozen=True)
class KronApprox:
    """``M ≈ sum_r A[r] ⊗ B[r]``.

    Attributes
    ----------
    A : array, shape (rank, m1, n1)
        The left factors, stacked along a leading rank axis (also for rank 1).
    B : array, shape (rank, m2, n2)
        The right factors, stacked the same way.
    error : float
        The relative Frobenius error ``||M - sum_r A[r] ⊗ B[r]||_F / ||M||_F``
        (0 for ``M = 0``).
    """

    A: Any
    B: Any
    error: float


def nearest_kronecker(
    M: Any,
    shape_a: tuple[int, int],
    shape_b: tuple[int, int],
    *,
    rank: int = 1,
    method: str = "svd",
    n_iter: int = 1,
    rng: Any = None,
) -> KronApprox:
    """The sum of ``rank`` Kronecker products nearest to ``M`` in the Frobenius norm.

    With ``M`` of shape ``(m1 * m2, n1 * n2)`` split into an ``m1 x n1`` grid
    of ``m2 x n2`` blocks ``M_ij``, the rearrangement ``R(M)`` has the row-major
    flattened block ``vec(M_ij)`` as its row ``i * n1 + j``. It maps ``A ⊗ B``
    to ``vec(A) vec(B)ᵀ`` (``vec`` = row-major ``ravel``), so
    ``||M - sum_r A_r ⊗ B_r||_F = ||R(M) - sum_r vec(A_r) vec(B_r)ᵀ||_F``
    and the optimum is a truncated SVD of ``R(M)`` (Van Loan and Pitsianis,
    1993). Each singular triple is split evenly: ``A_r = sqrt(s_r) u_r``,
    ``B_r = sqrt(s_r) v_r``, signed so that the largest-magnitude entry of
    ``A_r`` is positive (a symmetric positive definite ``A_r`` thus has a
    positive diagonal).

    ``method="power"`` runs ``n_iter`` steps of block power iteration on the
    symmetric dilation of ``R(M)``: ``X <- orth(R(M) Y)`` and
    ``Y <- orth(R(M)ᵀ X)`` from the previous ``(X, Y)`` together, then the best
    approximation ``X C Yᵀ`` with ``C = Xᵀ R(M) Y``. Without ``rng`` it starts
    from ``vec(I)`` (``I`` the ``numpy.eye`` of each shape) in the first column,
    so that for ``M = sum_n vec(G_n) vec(G_n)ᵀ`` with ``G_n`` of shape
    ``(m, n)``, ``shape_a = (m, m)`` and ``shape_b = (n, n)``, one step
    (``n_iter=1``, ``rank=1``) gives ``A ∝ sum_n G_n G_nᵀ`` and
    ``B ∝ sum_n G_nᵀ G_n``: Shampoo's ``L`` and ``R`` (Morwani et al., 2024),
    scaled by the optimal constant. More steps converge to the SVD answer.

    Parameters
    ----------
    M : array_like, shape (m1 * m2, n1 * n2)
        Real, float32 or float64 (integers promoted to float64). Never modified.
        A CuPy array or GPU tensor (or another array-API array) is factored
        on its device, the factors returned in its type.
    shape_a, shape_b : tuple of int
        ``(m1, n1)`` and ``(m2, n2)``.
    rank : int, default 1
        Number of Kronecker terms, at most ``min(m1 * n1, m2 * n2)``.
    method : {"svd", "power"}, default "svd"
        Exact truncated SVD of ``R(M)``, or block power iteration.
    n_iter : int, default 1
        Power iteration steps (``method="power"`` only), ``>= 1``.
    rng : None, int, numpy.random.Generator or RandomStream, optional
        For ``method="power"``: a random normal start. ``None`` starts from
        ``vec(I)`` with, for ``rank > 1``, further columns drawn from seed 0.

    Returns
    -------
    KronApprox
        ``A`` (``(rank, m1, n1)``), ``B`` (``(rank, m2, n2)``) in the caller's
        array type, and ``error``. For ``"svd"`` the error comes from the
        singular values, ``sqrt(sum_{k >= rank} s_k²) / ||M||_F``; for
        ``"power"`` from ``||R(M)||_F² - ||C||_F²`` (so resolved down to about
        ``sqrt(eps)``). Neither forms the sum.

    Raises
    ------
    TypeError
        If ``M`` is complex or not numeric, or an option has the wrong type.
    ValueError
        If ``M`` is not finite or its shape does not match the factor shapes,
        or an option is out of range.

    References
    ----------
    C. F. Van Loan and N. Pitsianis, "Approximation with Kronecker products",
    in *Linear Algebra for Large Scale and Real-Time Applications*, 1993.

    D. Morwani, I. Shapira, N. Vyas, E. Malach, S. Kakade and L. Janson, "A New
    Perspective on Shampoo's Preconditioner", arXiv:2406.17748, 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.kron import nearest_kronecker
    >>> A = np.array([[2.0, 1.0], [0.0, 1.0]])
    >>> B = np.array([[1.0, 3.0, 0.0]])
    >>> approx = nearest_kronecker(np.kron(A, B), (2, 2), (1, 3))
    >>> approx.A.shape, approx.B.shape, approx.error < 1e-15
    ((1, 2, 2), (1, 1, 3), True)
    >>> np.allclose(np.kron(approx.A[0], approx.B[0]), np.kron(A, B))
    True
    """
    kind, place = common_kind(M), placement_of(M)
    (m1, n1) = _check_shape(shape_a, "shape_a")
    (m2, n2) = _check_shape(shape_b, "shape_b")
    M = float_input(M, "M", ndim=2)[0]
    if tuple(M.shape) != (m1 * m2, n1 * n2):
        raise ValueError(
            f"M must have shape (m1 * m2, n1 * n2) = {(m1 * m2, n1 * n2)} for shape_a "
            f"{(m1, n1)} and shape_b {(m2, n2)}, got {tuple(M.shape)}"
        )
    rank = check_int(rank, "rank", low=1)
    if rank > min(m1 * n1, m2 * n2):
        raise ValueError(
            f"rank must be <= min(m1 * n1, m2 * n2) = {min(m1 * n1, m2 * n2)}, got {rank}"
        )
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    n_iter = check_int(n_iter, "n_iter", low=1)
    xp, dtype = place.xp, numpy_dtype(M.dtype)
    R = xp.permute_dims(xp.reshape(M, (m1, m2, n1, n2)), (0, 2, 1, 3))
    R = xp.reshape(R, (m1 * n1, m2 * n2))
    norm = _frobenius(R, place)
    if method == "svd":
        U, s, Vt = xp.linalg.svd(R, full_matrices=False)
        s = place.host(s)
        U, s, Vt, tail = U[:, :rank], s[:rank], Vt[:rank, :], float(np.linalg.norm(s[rank:]))
    else:
        start = _power_start(rank, (m1, n1), (m2, n2), dtype, rng, place)
        U, s, Vt, tail = _power(R, start, n_iter, place)
    signs = _signs(place.host(U))
    root = np.sqrt(s).astype(dtype)
    A = xp.reshape((U * place.put(signs * root)).T, (rank, m1, n1))
    B = xp.reshape(Vt * place.put((signs * root)[:, None]), (rank, m2, n2))
    error = tail / norm if norm > 0 else 0.0
    return KronApprox(to_caller(A, kind), to_caller(B, kind), error)


def _frobenius(R: Any, place: Placement) -> float:
    if place.on_host:
        return float(np.linalg.norm(R))
    return float(place.xp.linalg.matrix_norm(R))


def _check_shape(shape: Any, name: str) -> tuple[int, int]:
    if not isinstance(shape, tuple | list) or len(shape) != 2:
        raise TypeError(f"{name} must be a pair of ints (rows, columns), got {shape!r}")
    return (check_int(shape[0], f"{name}[0]", low=1), check_int(shape[1], f"{name}[1]", low=1))


def _power_start(
    rank: int,
    shape_a: tuple[int, int],
    shape_b: tuple[int, int],
    dtype: np.dtype,
    rng: Any,
    place: Placement,
) -> tuple[Any, Any]:
    """Start blocks ``(X, Y)`` where ``place`` keeps its arrays (drawn there):
    ``vec(I)`` first unless ``rng`` asks for a random start."""
    stream = as_random_stream(0 if rng is None else rng)
    blocks, offset = [], 0
    for m, n in (shape_a, shape_b):
        block = place.draw(stream, "normal", (rank, m * n), dtype=dtype, offset=offset).T
        offset += rank * m * n
        if rng is None:
            block = _identity_first(block, (m, n), place)
        blocks.append(block)
    return blocks[0], blocks[1]


def _identity_first(block: Any, shape: tuple[int, int], place: Placement) -> Any:
    """``block`` with its first column replaced by ``vec(I)``, ``I = eye(*shape)``."""
    xp = place.xp
    identity = xp.eye(*shape, dtype=block.dtype, device=place.device)
    return xp.concat([xp.reshape(identity, (-1, 1)), block[:, 1:]], axis=1)


def _power(
    R: Any, start: tuple[Any, Any], n_iter: int, place: Placement
) -> tuple[Any, np.ndarray, Any, float]:
    """Block power iteration on the dilation of ``R``; ``(U, s, Vt, tail)``, ``s`` on the host."""
    xp = place.xp
    X, Y = start
    for _ in range(n_iter):
        X, Y = xp.linalg.qr(R @ Y)[0], xp.linalg.qr(R.T @ X)[0]
    P, s, Qt = np.linalg.svd(place.host(X.T @ R @ Y))
    tail2 = _frobenius(R, place) ** 2 - float(np.linalg.norm(s)) ** 2
    return X @ place.put(P), s, place.put(Qt) @ Y.T, float(np.sqrt(max(tail2, 0.0)))


def _signs(U: np.ndarray) -> np.ndarray:
    """``±1`` per pair ``(u_r, v_r)``: the largest-magnitude entry of ``u_r`` made positive."""
    biggest = U[np.argmax(np.abs(U), axis=0), np.arange(U.shape[1])]
    return np.where(biggest < 0, -1, 1).astype(U.dtype)
