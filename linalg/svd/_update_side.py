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

``X'`` lives where a :class:`~linalg._core.namespace.Placement` says: NumPy
on the host, or the caller's array library on its device. ``K``, ``G`` and
every other ``k``-sized matrix are NumPy arrays on the host. Touched rows are
integer indices on the host and a boolean row mask on a device (the array API
standard scatters through boolean masks only).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linalg._core.namespace import HOST, Placement, numpy_dtype

__all__ = ["Side", "thin_qr"]

# Largest condition number of K (in the 1-norm) accepted by a sparse update:
# rows of X' are found with K⁻¹, so rounding errors grow with cond(K); past
# this the update is applied to the explicit factor instead (K folded in).
MAX_COND = 1e4


def well_conditioned(K: np.ndarray) -> bool:
    return bool(np.linalg.cond(K, 1) <= MAX_COND)


def thin_qr(X: Any, place: Placement) -> tuple[Any, np.ndarray]:
    """``X = Q R`` (reduced): ``Q`` where ``X`` lives, the small ``R`` on the host."""
    Q, R = place.xp.linalg.qr(X)
    return Q, place.host(R)


class Side:
    """``X = X' K`` with ``X'`` of shape ``(rows, k)`` and ``K`` of shape ``(k, k)``.

    Parameters
    ----------
    X : array, shape (rows, k)
        The explicit factor, of ``place``; owned by the object from now on
        (not copied).
    place : Placement
        Where ``X'`` lives (``HOST``: NumPy).
    """

    def __init__(self, X: Any, place: Placement = HOST) -> None:
        self.place = place
        self.dtype = numpy_dtype(X.dtype)
        self.set_explicit(X)

    # --- state ------------------------------------------------------------------

    def set_explicit(self, X: Any) -> None:
        """Make ``X' = X`` and ``K = I`` (the Gram is recomputed when next needed)."""
        self._buffer = np.ascontiguousarray(X) if self.place.on_host else X
        self._rows = X.shape[0]
        self.K = np.eye(X.shape[1], dtype=self.dtype)
        self._gram: np.ndarray | None = None

    @property
    def basis(self) -> Any:
        """``X'``, the rows of the buffer in use."""
        return self._buffer[: self._rows, :]

    @property
    def rows(self) -> int:
        return self._rows

    def form(self) -> Any:
        """The explicit ``X = X' K`` (a new array, where ``X'`` lives)."""
        return self.basis @ self.place.put(self.K)

    def qr(self, keep: np.ndarray | None = None) -> tuple[Any, np.ndarray]:
        """``X = Q R``, or of the rows ``keep`` (a host mask) of ``X`` when given."""
        X = self.form()
        return thin_qr(X if keep is None else X[self.place.put(keep)], self.place)

    def gram(self) -> np.ndarray:
        """``X'ᵀX'`` (on the host), computed once and then kept up to date by the
        sparse updates."""
        if self._gram is None:
            self._gram = self.place.host(self.basis.T @ self.basis)
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
        """``X ← [X Y1; Y2]`` (``Y2`` the new rows, shape ``(p, k)``, on the host).

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
        put = self.place.put
        self.set_explicit(self.place.xp.concat([self.form() @ put(Y1), put(Y2)]))

    def _append(self, new_rows: np.ndarray) -> None:
        """Rows after ``X'``, in a buffer that grows by doubling."""
        place, stop, capacity = self.place, self._rows + len(new_rows), self._buffer.shape[0]
        if stop > capacity:
            shape, dtype = (max(stop, 2 * capacity), len(self.K)), place.dtype(self.dtype)
            grown = place.xp.empty(shape, dtype=dtype, device=place.device)
            grown[: self._rows, :] = self.basis
            self._buffer = grown
        self._buffer[self._rows : stop, :] = place.put(new_rows)
        self._rows = stop

    def _write_rows(self, rows: Any, values: Any) -> None:
        """``X'[rows] = values``. Host rows are indices, valid in the buffer as they
        are; a device row mask is widened over the buffer's spare rows."""
        spare = self._buffer.shape[0] - self._rows
        if not self.place.on_host and spare:
            xp = self.place.xp
            rows = xp.concat([rows, xp.zeros(spare, dtype=xp.bool, device=self.place.device)])
        self._buffer[rows] = values

    # --- rotations --------------------------------------------------------------------

    def rotate_dense(self, Y1: np.ndarray, Q: Any, Y2: np.ndarray) -> None:
        """``X ← X Y1 + Q Y2`` with an explicit ``Q`` (``O(rows k (k + r))``)."""
        put = self.place.put
        self.set_explicit(self.form() @ put(Y1) + Q @ put(Y2))

    def rotate_sparse(
        self, Y1: np.ndarray, Y2: np.ndarray, *, H: np.ndarray, TY2: np.ndarray,
        rows: Any, Z_rows: Any,
    ) -> None:  # fmt: skip
        """``X ← X Y1 + Q Y2`` with ``Q = (Z − X H) T`` and ``Z`` non-zero on ``rows`` only.

        ``X Y1 + (Z − X H) T Y2 = X' K (Y1 − H T Y2) + Z T Y2``, so with
        ``K_new = K (Y1 − H T Y2)`` only the touched rows of ``X'`` change:
        ``X'[rows] += Z[rows] (T Y2) K_new⁻¹``. ``TY2`` is ``T Y2``,
        ``Z_rows`` is ``Z[rows]`` as a dense array, where ``X'`` lives.
        """
        place = self.place
        K_new = self.K @ (Y1 - H @ TY2)
        if not well_conditioned(K_new):
            X = self.basis @ place.put(K_new)
            X[rows] += Z_rows @ place.put(TY2)
            self.set_explicit(X)
            return
        delta = Z_rows @ place.put(np.linalg.solve(K_new.T, TY2.T).T)
        old = self.basis[rows]
        cross = place.host(old.T @ delta)
        self.gram()[...] += cross + cross.T + place.host(delta.T @ delta)
        self._write_rows(rows, old + delta)
        self.K = K_new

    def rotate(self, W: np.ndarray) -> None:
        """``X ← X W`` for a ``k x k`` matrix ``W`` (only ``K`` changes)."""
        self.K = self.K @ W
