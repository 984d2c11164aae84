"""The range-finder iteration shared by every method of :func:`randomized_svd`.

Block Golub–Kahan, started on the left: ``U₁ = orth(A Ω)``, then alternately
``V_j`` from ``Aᵀ U_j`` and ``U_{j+1}`` from ``A V_j``. Subspace (power)
iteration keeps only the latest block of each side; block Krylov and Lanczos
keep them all, orthonormalized against each other. Either way ``Aᵀ U = V C``
holds exactly after each right half-step, with ``C`` the recorded
coefficients, so ``Uᵀ A = Cᵀ Vᵀ`` and the Rayleigh–Ritz singular triplets on
``span(U)`` come from the small ``svd(Cᵀ)`` without another pass over ``A``.
After the next left half-step ``A V = U D`` is known as well, which gives the
residual of those triplets (``A v - σ u``) at no extra cost: Lanczos stops on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla

from linalg._core.namespace import HOST, Placement
from linalg._core.operators import Operator
from linalg.svd._basis import Basis

__all__ = ["Iteration", "Ritz"]


@dataclass
class Ritz:
    """Rayleigh–Ritz triplets on the current bases: ``U X``, ``s``, ``V Y``
    (``X``, ``s``, ``Y`` on the host; the bases where ``place`` says)."""

    X: np.ndarray
    s: np.ndarray
    Y: np.ndarray
    U: Any  # the left basis the triplets live on (a view)
    V: Any  # the right basis
    place: Placement = HOST

    def left(self, r: int) -> Any:
        return self.U @ self.place.put(self.X[:, :r])

    def right_t(self, r: int) -> Any:
        return self.place.put(self.Y[:, :r].T) @ self.V.T


class Iteration:
    """One run of the block Golub–Kahan range finder on ``op``.

    Parameters
    ----------
    op : Operator
        The matrix, with ``matmat`` and ``rmatmat``.
    first_sample : ndarray, shape (m, b)
        ``A Ω``, the first pass.
    keep : bool
        Keep every block (block Krylov, Lanczos) or only the latest (subspace).
    max_blocks : int
        Most blocks each basis may hold when ``keep``; ``max_blocks * b`` must
        not exceed ``min(m, n)``.
    normalizer : {"qr", "lu", "none"}
        How subspace iteration rescales the blocks whose Ritz values are not
        needed; blocks that are kept are always orthonormalized.
    place : Placement
        Where the bases live: with ``op``'s data (``HOST`` for NumPy).
    """

    def __init__(
        self,
        op: Operator,
        first_sample: np.ndarray,
        *,
        keep: bool,
        max_blocks: int,
        normalizer: str = "qr",
        place: Placement = HOST,
    ) -> None:
        self.op, self.place = op, place
        self.dtype = op.dtype
        m, n = op.shape
        self.b = first_sample.shape[1]
        blocks = max_blocks if keep else 1
        self.U = Basis(m, blocks * self.b, self.dtype, place)
        self.V = Basis(n, blocks * self.b, self.dtype, place)
        self.C = np.zeros((self.V.Q.shape[1], self.U.Q.shape[1]), dtype=self.dtype)
        self.D = np.zeros((self.U.Q.shape[1], self.V.Q.shape[1]), dtype=self.dtype)
        self.keep = keep
        self.normalizer = normalizer
        self.passes = 1
        self._new_v = 0
        first = place.copy(first_sample, self.dtype)
        _, self._new_u = self._extend(self.U, first, orthonormal=True)

    # -- one half-step each way ---------------------------------------------

    def right(self, *, need_ritz: bool = True) -> Ritz | None:
        """``V_j`` from ``Aᵀ U_j``; the Ritz triplets on ``span(U)`` when asked."""
        start = self.U.size - self._new_u
        Z = self._product(self.op.rmatmat, self.U.Q[:, start : self.U.size])
        c, self._new_v = self._extend(self.V, Z, orthonormal=need_ritz)
        if c is not None:
            self.C[: self.V.size, start : self.U.size] = c
        if not need_ritz:
            return None
        B = self.C[: self.V.size, : self.U.size].T
        X, s, Yt = sla.svd(B, full_matrices=False, check_finite=False, lapack_driver="gesdd")
        return Ritz(X, s, Yt.T, self.U.columns, self.V.columns, self.place)

    def left(self, *, orthonormal: bool = True) -> None:
        """``U_{j+1}`` from ``A V_j``."""
        start = self.V.size - self._new_v
        W = self._product(self.op.matmat, self.V.Q[:, start : self.V.size])
        d, self._new_u = self._extend(self.U, W, orthonormal=orthonormal)
        if d is not None and self.keep:
            self.D[: self.U.size, start : self.V.size] = d

    def residuals(self, ritz: Ritz, r: int) -> np.ndarray:
        """``||A v_i - s_i u_i||`` for the first ``r`` triplets (after :meth:`left`)."""
        sU, sV = ritz.X.shape[0], ritz.Y.shape[0]
        AY = self.D[: self.U.size, :sV] @ ritz.Y[:, :r]
        AY[:sU] -= ritz.X[:, :r] * ritz.s[:r]
        return np.linalg.norm(AY, axis=0)

    @property
    def full(self) -> bool:
        """Whether a kept basis has no room for another block."""
        return self.keep and self.U.room == 0

    # -- helpers ----------------------------------------------------------------

    def _product(self, product: Any, block: Any) -> Any:
        self.passes += 1
        return self.place.copy(product(block), self.dtype)

    def _extend(self, basis: Basis, W: Any, *, orthonormal: bool) -> tuple[np.ndarray | None, int]:
        """Add ``W`` to ``basis`` (emptied first
        unless blocks are kept): orthonormalized, with the coefficients, or for
        subspace iteration's intermediate blocks only rescaled (LU, or not at all).
        Returns the coefficients (or None) and the number of columns added."""
        if not self.keep:
            basis.reset()
        if orthonormal or self.keep or self.normalizer == "qr":
            return basis.extend(W), W.shape[1]
        if self.normalizer == "lu":
            W = sla.lu(W, permute_l=True, check_finite=False)[0]
        basis.Q[:, : W.shape[1]] = W
        basis.size = W.shape[1]
        return None, W.shape[1]
