"""One side of a truncated SVD kept as an extended factorization ``X = X' K``.

``X`` (``U`` or ``V``, shape ``(rows, k)``) is never stored: ``X'`` (the
basis, a row buffer that grows by doubling) and a small ``k x k`` matrix
``K`` are, after Deng et al. (ICLR 2024). An update that rotates ``X`` by a
``k x k`` matrix changes only ``K``; appended rows go into ``X'`` already
multiplied by ``K⁻¹``; a rank-``p`` correction supported on a few rows
changes only those rows of ``X'``. So the work follows the rows an update
touches, not ``rows``.

The Gram matrix ``G = X'ᵀX'`` is kept up to date (``O(k²)`` per touched row)
while the sparse updates run, so ``‖KᵀGK − I‖ = ‖XᵀX − I‖`` (the drift of
the orthonormality) costs ``O(k³)`` to check.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Side"]

# Largest condition number of K (in the 1-norm) accepted by a sparse update:
# rows of X' are found with K⁻¹, so rounding errors grow with cond(K); past
# this the update is applied to the explicit factor instead (K folded in).
MAX_COND = 1e4


def well_conditioned(K: np.ndarray) -> bool:
    return bool(np.linalg.cond(K, 1) <= MAX_COND)


class Side:
    """``X = X' K`` with ``X'`` of shape ``(rows, k)`` and ``K`` of shape ``(k, k)``.

    Parameters
    ----------
    X : numpy.ndarray, shape (rows, k)
        The explicit factor; owned by the object from now on (not copied).
    """

    def __init__(self, X: np.ndarray) -> None:
        self.set_explicit(X)

    # --- state ------------------------------------------------------------------

    def set_explicit(self, X: np.ndarray) -> None:
        """Make ``X' = X`` and ``K = I`` (the Gram is recomputed when next needed)."""
        self._buffer = np.ascontiguousarray(X)
        self._rows = X.shape[0]
        self.K = np.eye(X.shape[1], dtype=X.dtype)
        self._gram: np.ndarray | None = None

    @property
    def basis(self) -> np.ndarray:
        """``X'``, a view of the row buffer."""
        return self._buffer[: self._rows]

    @property
    def rows(self) -> int:
        return self._rows

    def form(self) -> np.ndarray:
        """The explicit ``X = X' K`` (a new array)."""
        return self.basis @ self.K

    def gram(self) -> np.ndarray:
        """``X'ᵀX'``, computed once and then kept up to date by the sparse updates."""
        if self._gram is None:
            self._gram = self.basis.T @ self.basis
        return self._gram

    def orthogonality_estimate(self) -> float:
        """``‖XᵀX − I‖_F ≥ ‖XᵀX − I‖₂`` from the Gram matrix, ``O(k³)``."""
        XtX = self.K.T @ self.gram() @ self.K
        return float(np.linalg.norm(XtX - np.eye(len(XtX))))

    def flip(self, signs: np.ndarray) -> None:
        """Multiply column ``j`` of ``X`` by ``signs[j]``."""
        self.K *= signs

    # --- appended rows ------------------------------------------------------------

    def grow(self, Y1: np.ndarray, Y2: np.ndarray, *, sparse: bool) -> None:
        """``X ← [X Y1; Y2]`` (``Y2`` the new rows, shape ``(p, k)``).

        Sparse: ``K ← K Y1`` and the new rows of ``X'`` are ``Y2 K⁻¹``,
        ``O(p k² + k³)``. Dense (or when ``K Y1`` is too ill-conditioned):
        the explicit product, ``O(rows k²)``.
        """
        if sparse:
            K_new = self.K @ Y1
            if well_conditioned(K_new):
                new_rows = np.linalg.solve(K_new.T, Y2.T).T
                gram = self.gram()
                self._append(new_rows)
                gram += new_rows.T @ new_rows
                self.K = K_new
                return
        self.set_explicit(np.vstack([self.form() @ Y1, Y2]))

    def _append(self, new_rows: np.ndarray) -> None:
        stop = self._rows + len(new_rows)
        if stop > len(self._buffer):
            grown = np.empty((max(stop, 2 * len(self._buffer)), self.K.shape[0]), self.K.dtype)
            grown[: self._rows] = self.basis
            self._buffer = grown
        self._buffer[self._rows : stop] = new_rows
        self._rows = stop

    # --- rotations --------------------------------------------------------------------

    def rotate_dense(self, Y1: np.ndarray, Q: np.ndarray, Y2: np.ndarray) -> None:
        """``X ← X Y1 + Q Y2`` with an explicit ``Q`` (``O(rows k (k + r))``)."""
        self.set_explicit(self.form() @ Y1 + Q @ Y2)

    def rotate_sparse(
        self, Y1: np.ndarray, Y2: np.ndarray, *, H: np.ndarray, TY2: np.ndarray,
        rows: np.ndarray, Z_rows: np.ndarray,
    ) -> None:  # fmt: skip
        """``X ← X Y1 + Q Y2`` with ``Q = (Z − X H) T`` and ``Z`` non-zero on ``rows`` only.

        ``X Y1 + (Z − X H) T Y2 = X' K (Y1 − H T Y2) + Z T Y2``, so with
        ``K_new = K (Y1 − H T Y2)`` only the touched rows of ``X'`` change:
        ``X'[rows] += Z[rows] (T Y2) K_new⁻¹``. ``TY2`` is ``T Y2``,
        ``Z_rows`` is ``Z[rows]`` as a dense array.
        """
        K_new = self.K @ (Y1 - H @ TY2)
        if not well_conditioned(K_new):
            X = self.basis @ K_new
            X[rows] += Z_rows @ TY2
            self.set_explicit(X)
            return
        delta = Z_rows @ np.linalg.solve(K_new.T, TY2.T).T
        old = self.basis[rows]
        cross = old.T @ delta
        self.gram()[...] += cross + cross.T + delta.T @ delta
        self.basis[rows] = old + delta
        self.K = K_new

    def rotate(self, W: np.ndarray) -> None:
        """``X ← X W`` for a ``k x k`` matrix ``W`` (only ``K`` changes)."""
        self.K = self.K @ W
