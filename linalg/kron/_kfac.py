"""K-FAC: the damped inverse of a layer's Kronecker-factored Fisher."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.linalg import lapack

from linalg._core.namespace import cholesky_or_none, device_of, namespace_of
from linalg._core.results import LinAlgError
from linalg.kron._factored import KroneckerFactored
from linalg.kron._products import astype, eigh, inverse_scale

__all__ = ["KFAC"]

_MODES = ("plain", "pi", "exact")


def _spd_inverse(M: Any, shift: float, name: str) -> tuple[Any, float]:
    """``(M + shift I)⁻¹`` and ``log det(M + shift I)``, by LAPACK potrf + potri in float64.

    potri forms the inverse from the Cholesky factor in ``n³ / 3`` flops more
    (a third of an LU-based inverse); it fills the lower triangle only. Off
    the host: the Cholesky factor's triangular inverse ``L⁻¹`` and ``L⁻ᵀ L⁻¹``.
    """
    if not isinstance(M, np.ndarray):
        return _spd_inverse_namespace(M, shift, name)
    damped = M.astype(np.float64)
    damped[np.diag_indices_from(damped)] += shift
    L, info = lapack.dpotrf(damped, lower=1, clean=1, overwrite_a=1)
    if info != 0:
        raise LinAlgError(f"{name} + {shift:.3g} I is not positive definite; increase damping")
    inverse, info = lapack.dpotri(L, lower=1, overwrite_c=0)
    if info != 0:
        raise LinAlgError(f"{name} + {shift:.3g} I is singular; increase damping")
    lower = np.tril(inverse)
    lower += np.tril(inverse, -1).T
    return lower, 2.0 * float(np.log(np.diagonal(L)).sum())


def _spd_inverse_namespace(M: Any, shift: float, name: str) -> tuple[Any, float]:
    xp = namespace_of(M)
    eye = xp.eye(M.shape[0], dtype=xp.float64, device=device_of(M))
    L = cholesky_or_none(xp.astype(M, xp.float64) + shift * eye)
    if L is None:
        raise LinAlgError(f"{name} + {shift:.3g} I is not positive definite; increase damping")
    # L⁻¹ by LU of a triangular matrix (no pivoting happens): exactly lower triangular.
    inverse_L = xp.linalg.inv(L)
    return inverse_L.T @ inverse_L, 2.0 * float(xp.sum(xp.log(xp.linalg.diagonal(L))))


class KFAC(KroneckerFactored):
    """The damped K-FAC inverse for a weight gradient ``V`` of shape ``(out, in)``.

    The layer's Fisher is approximated by ``A ⊗ G`` on column-major
    ``vec(V)`` (``F vec(V) = vec(G V A)``). :meth:`solve` applies a damped
    inverse, by ``damping_mode`` (``λ = damping``):

    * ``"plain"``: ``Y = (G + √λ I)⁻¹ V (A + √λ I)⁻¹``;
    * ``"pi"``: ``Y = (G + (√λ/π) I)⁻¹ V (A + π√λ I)⁻¹`` with
      ``π = sqrt((tr A / dim A) / (tr G / dim G))`` (1 if either trace is 0);
    * ``"exact"``: ``Y`` solves ``G Y A + λ Y = V``; with ``A = Q_A Λ_A Q_Aᵀ``
      and ``G = Q_G Λ_G Q_Gᵀ``, ``Y = Q_G [(Q_Gᵀ V Q_A) / (λ_G λ_Aᵀ + λ)] Q_Aᵀ``.

    Parameters
    ----------
    A : array_like, shape (in, in)
        Symmetric input factor (e.g. from :func:`kfac_factors`). Never modified.
        CuPy arrays and GPU tensors (``A`` and ``G`` alike) are factored and
        applied on their device; ``V`` must then live there too.
    G : array_like, shape (out, out)
        Symmetric output-gradient factor.
    damping : float
        ``λ >= 0``; 0 is allowed where the damped factors stay positive definite.
    damping_mode : {"pi", "plain", "exact"}, default "pi"
    engine : {"auto", "reference"}, optional
        Only ``"reference"`` is registered (see Notes).

    Attributes
    ----------
    A, G : array
        The factors, in :attr:`dtype` (NumPy for host inputs, else the
        inputs' library).
    damping, damping_mode, dim_in, dim_out
        As given / the factor sizes.
    dtype : numpy.dtype
        float32 if both factors are float32, else float64.
    engine : str
        The engine used.

    Raises
    ------
    LinAlgError
        On first use, if a damped factor (or the damped Kronecker matrix, for
        ``"exact"``) is not positive definite: increase damping.

    Notes
    -----
    The factorizations are computed once, on first use, in float64, and kept
    in :attr:`dtype`: for ``"plain"``/``"pi"`` the Cholesky factors give the
    explicit damped inverses, so :meth:`solve` is two GEMMs; for ``"exact"``
    the eigendecompositions give :meth:`solve` as four GEMMs and one
    elementwise product with the precomputed ``1 / (λ_G λ_Aᵀ + λ)``. All the
    work is BLAS-3, so only the reference engine (NumPy's BLAS) is registered.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.kron import KFAC
    >>> kfac = KFAC(np.diag([1.0, 3.0]), np.array([[2.0]]), damping=1.0, damping_mode="exact")
    >>> kfac.solve(np.array([[3.0, 7.0]]))  # (2 * [1, 3] + 1) Y = V
    array([[1., 1.]])
    >>> print(f"{kfac.logdet():.6f} {np.log(3.0 * 7.0):.6f}")
    3.044522 3.044522
    """

    _operation = "kron.kfac"

    def __init__(
        self,
        A: Any,
        G: Any,
        *,
        damping: float,
        damping_mode: str = "pi",
        engine: str | None = None,
    ) -> None:
        if damping_mode not in _MODES:
            raise ValueError(
                f"damping_mode must be one of {', '.join(map(repr, _MODES))}, got {damping_mode!r}"
            )
        self.damping_mode = damping_mode
        super().__init__(A, G, damping, engine)

    @property
    def pi(self) -> float:
        """The π of ``"pi"`` damping (1 for the other modes)."""
        if self.damping_mode != "pi":
            return 1.0
        xp = self.xp
        mean_A = float(xp.linalg.trace(self.A, dtype=xp.float64)) / self.dim_in
        mean_G = float(xp.linalg.trace(self.G, dtype=xp.float64)) / self.dim_out
        return float(np.sqrt(mean_A / mean_G)) if mean_A > 0 and mean_G > 0 else 1.0

    def _factorize(self) -> tuple[np.ndarray, ...]:
        if self.damping_mode == "exact":
            w_A, Q_A = eigh(self.A)
            w_G, Q_G = eigh(self.G)
            scale = inverse_scale(w_G[:, None] * w_A[None, :], self.damping, "A ⊗ G")
            logdet = -float(self.xp.sum(self.xp.log(scale)))
            return (
                astype(Q_G, self.dtype),
                astype(Q_A, self.dtype),
                astype(scale, self.dtype),
                logdet,
            )
        root, pi = math.sqrt(self.damping), self.pi
        A_inv, logdet_A = _spd_inverse(self.A, pi * root, "A")
        G_inv, logdet_G = _spd_inverse(self.G, root / pi, "G")
        logdet = self.dim_out * logdet_A + self.dim_in * logdet_G
        return astype(G_inv, self.dtype), astype(A_inv, self.dtype), logdet

    def _solve(self, V: np.ndarray) -> np.ndarray:
        if self.damping_mode == "exact":
            Q_G, Q_A, scale, _ = self._pieces
            return self._kernels.eigen_solve(Q_G, Q_A, scale, V)
        G_inv, A_inv, _ = self._pieces
        return self._kernels.sandwich(G_inv, V, A_inv)

    def _matvec(self, V: np.ndarray) -> np.ndarray:
        return self._kernels.sandwich(self.G, V, self.A)

    def _logdet(self) -> float:
        return self._pieces[-1]

    def __repr__(self) -> str:
        return (
            f"<KFAC in={self.dim_in} out={self.dim_out} damping={self.damping:g} "
            f"mode={self.damping_mode!r} dtype={self.dtype}>"
        )
