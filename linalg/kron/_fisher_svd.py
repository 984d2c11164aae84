"""Fisher-weighted low-rank approximation: truncated SVD in a Kronecker-factored norm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular

from linalg._core.namespace import (
    common_kind,
    device_of,
    namespace_of,
    to_caller,
    to_host,
)
from linalg._core.validate import check_int, float_input, result_dtype
from linalg.kron._inverse_factor import spd_cholesky

__all__ = ["LowRank", "fisher_weighted_svd"]


@dataclass(frozen=True)
class LowRank:
    """``W ≈ L @ R``.

    Attributes
    ----------
    L : array, shape (out, rank)
    R : array, shape (rank, in)
    error : float
        ``||G^{1/2} (W - L R) A^{1/2}||_F / ||G^{1/2} W A^{1/2}||_F`` (0 for ``W = 0``).
    """

    L: Any
    R: Any
    error: float


def fisher_weighted_svd(W: Any, A: Any, G: Any, rank: int) -> LowRank:
    """The rank-``rank`` matrix nearest to ``W`` in the norm ``||G^{1/2} X A^{1/2}||_F``.

    For a layer with weights ``W`` (out x in), input covariance ``A`` and
    output-gradient covariance ``G`` (K-FAC's factors), this norm is the
    Fisher norm ``vec(X)ᵀ (A ⊗ G) vec(X)`` of a weight change. With the
    Cholesky factors ``G = C_G C_Gᵀ`` and ``A = C_A C_Aᵀ``,
    ``||G^{1/2} X A^{1/2}||_F = ||C_Gᵀ X C_A||_F`` (both equal
    ``sqrt(tr(G X A Xᵀ))``), so the optimum is: whiten ``W~ = C_Gᵀ W C_A``,
    truncate its SVD ``W~ ≈ U_r S_r V_rᵀ``, and unwhiten with the balanced
    split ``L = C_G^{-T} U_r S_r^{1/2}``, ``R = S_r^{1/2} V_rᵀ C_A^{-1}``.
    Cholesky factors are cheaper than symmetric square roots and give the
    same optimum, since the whitening map is invertible and keeps the norm.

    Parameters
    ----------
    W : array_like, shape (out, in)
        Real, float32 or float64 (integers promoted to float64). Never modified.
        With ``A`` and ``G`` as CuPy arrays or GPU tensors, everything runs on
        their device (LU solves with the Cholesky factors there: the array API
        has no triangular solve).
    A : array_like, shape (in, in)
        Symmetric positive definite input-side weight.
    G : array_like, shape (out, out)
        Symmetric positive definite output-side weight.
    rank : int
        ``1 <= rank <= min(out, in)``.

    Returns
    -------
    LowRank
        ``L`` and ``R`` in the caller's array type (dtype: the widest input
        dtype), and ``error``, the relative weighted error
        ``sqrt(sum_{k >= rank} s_k²) / sqrt(sum_k s_k²)`` from the singular
        values ``s`` of ``W~``: the exact optimum.

    Raises
    ------
    TypeError
        If an array is complex or not numeric, or ``rank`` is not an integer.
    ValueError
        If an array is not finite or has the wrong shape, ``A`` or ``G`` is not
        symmetric, or ``rank`` is out of range.
    LinAlgError
        If ``A`` or ``G`` is not positive definite (the message says to add
        damping).

    References
    ----------
    Y.-C. Hsu, T. Hua, S. Chang, Q. Lou, Y. Shen and H. Jin, "Language Model
    Compression with Weighted Low-Rank Factorization", ICLR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.kron import fisher_weighted_svd
    >>> W = np.array([[3.0, 0.0], [0.0, 1.0]])
    >>> low = fisher_weighted_svd(W, np.eye(2), np.diag([1.0, 16.0]), rank=1)
    >>> low.L @ low.R  # the weight on row 2 makes its entry the one to keep
    array([[0., 0.],
           [0., 1.]])
    >>> round(low.error, 6)  # sqrt(9 / (9 + 16))
    0.6
    """
    kind = common_kind(W, A, G)
    W, xp, _ = float_input(W, "W", ndim=2)
    A = float_input(A, "A", ndim=2)[0]
    G = float_input(G, "G", ndim=2)[0]
    n_out, n_in = W.shape
    if tuple(A.shape) != (n_in, n_in):
        raise ValueError(
            f"A must have shape (in, in) = {(n_in, n_in)} for W {tuple(W.shape)}, "
            f"got {tuple(A.shape)}"
        )
    if tuple(G.shape) != (n_out, n_out):
        raise ValueError(
            f"G must have shape (out, out) = {(n_out, n_out)} for W {tuple(W.shape)}, "
            f"got {tuple(G.shape)}"
        )
    rank = check_int(rank, "rank", low=1)
    if rank > min(n_out, n_in):
        raise ValueError(f"rank must be <= min(out, in) = {min(n_out, n_in)}, got {rank}")
    dtype = getattr(xp, result_dtype(W.dtype, A.dtype, G.dtype).name)
    upper_a = spd_cholesky(xp.astype(A, dtype, copy=False), "A")  # A = C_A C_Aᵀ, C_A = Uᵀ
    upper_g = spd_cholesky(xp.astype(G, dtype, copy=False), "G")
    whitened = upper_g @ xp.astype(W, dtype, copy=False) @ upper_a.T
    U, s, Vt = xp.linalg.svd(whitened, full_matrices=False)
    s = to_host(s)
    root = xp.asarray(np.sqrt(s[:rank]), device=device_of(U))
    L = _solve_upper(upper_g, U[:, :rank] * root)
    R = _solve_upper(upper_a, Vt[:rank, :].T * root).T
    total = float(np.linalg.norm(s))
    error = float(np.linalg.norm(s[rank:])) / total if total > 0 else 0.0
    L, R = xp.astype(L, dtype, copy=False), xp.astype(R, dtype, copy=False)
    return LowRank(to_caller(L, kind), to_caller(R, kind), error)


def _solve_upper(upper: Any, B: Any) -> Any:
    """``upper⁻¹ B`` for an upper-triangular factor: a triangular solve on the host, an LU
    solve in the data's namespace otherwise (the array API has no triangular solve)."""
    if isinstance(upper, np.ndarray):
        return solve_triangular(upper, B, lower=False)
    return namespace_of(upper).linalg.solve(upper, B)
