"""A growing orthonormal basis, kept block by block, that records how each
new block was expressed in it."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg as sla

from linalg._core.namespace import HOST, Placement, numpy_dtype
from linalg._core.random import RandomStream

__all__ = ["Basis", "column_norms"]

# A first CholeskyQR whose R is this well conditioned leaves the block
# orthogonal to the basis to about eps · cond(R): no second projection needed.
_WELL_CONDITIONED = 1e3
# Directions of a block with |R_ii| below this times eps times the block's
# size are numerically in the span already (an exhausted Krylov space).
_DEFLATION_FACTOR = 1e3
# Fresh directions for a deflated block: drawn from this seed, the basis size
# as the stream, so that runs are reproducible.
_FILL_SEED = 0x5EED
# Gram–Schmidt needs no second pass when every column keeps this share of its norm.
_ONE_PASS = 1 / np.sqrt(2)


class Basis:
    """Orthonormal columns ``Q[:, :size]`` of a space of dimension ``rows``.

    :meth:`extend` orthonormalizes a block against the basis and returns the
    coefficients ``c`` with ``W = Q[:, :size] @ c`` (to rounding), which is all
    a Krylov method needs to know the projected matrix without another product
    with ``A``. Block classical Gram–Schmidt (twice where the first pass
    cancels much of a column) removes the part in the basis; CholeskyQR
    applied twice (``WᵀW = RᵀR``, ``Q = W R⁻¹``: two small Gram matrices and
    GEMMs, several times faster than Householder QR on a tall block)
    orthonormalizes the rest, with Householder QR where the block
    is too ill-conditioned for a Cholesky factor. Directions of the block that
    are already in the span are replaced by fresh random ones, so the basis
    stays orthonormal when the Krylov space is exhausted.

    Parameters
    ----------
    rows : int
        Dimension of the space.
    capacity : int
        Most columns the basis will hold (at most ``rows``).
    dtype : numpy.dtype
    place : Placement
        Where the basis lives (``HOST``: NumPy); the coefficients are always
        NumPy arrays.
    """

    def __init__(self, rows: int, capacity: int, dtype: np.dtype, place: Placement = HOST) -> None:
        self.place = place
        self.Q = place.empty((rows, capacity), dtype)
        self.size = 0

    @property
    def columns(self) -> Any:
        """The basis, ``(rows, size)``."""
        return self.Q[:, : self.size]

    @property
    def room(self) -> int:
        """Columns that can still be added."""
        return self.Q.shape[1] - self.size

    def reset(self) -> None:
        """Forget every column (subspace iteration keeps only its last block)."""
        self.size = 0

    def extend(self, W: Any) -> np.ndarray:
        """Append an orthonormal basis of ``W``'s part outside the span.

        Returns ``c`` of shape ``(size_after, b)``: ``W ≈ Q[:, :size_after] @ c``.
        The block ``W`` (``(rows, b)``, ``b <= room``) is overwritten.
        """
        place, old, b = self.place, self.size, W.shape[1]
        dtype = self.Q_dtype
        previous = self.columns
        norms = column_norms(W, place)
        scale = float(np.max(norms, initial=0.0))
        head = _project(previous, W, norms, place)
        block, R, cholesky = _orthonormalize(W, place)
        deficient = np.abs(np.diag(R)) <= _DEFLATION_FACTOR * np.finfo(dtype).eps * scale
        if deficient.any():
            stream = RandomStream(_FILL_SEED, old)
            shape = (W.shape[0], int(deficient.sum()))
            fill = place.draw(stream, "normal", shape, dtype=np.dtype(np.float64))  # where W is
            for column, j in enumerate(np.flatnonzero(deficient)):
                block[:, int(j)] = place.xp.astype(fill[:, column], place.dtype(dtype))
        if deficient.any() or not cholesky or _condition(R) > _WELL_CONDITIONED:
            head += _project(previous, block, column_norms(block, place), place) @ R
        block, R2, _ = _orthonormalize(block, place)
        coefficients = np.empty((old + b, b), dtype=dtype)
        coefficients[:old] = head
        coefficients[old:] = R2 @ R
        self.Q[:, old : old + b] = block
        self.size = old + b
        return coefficients

    @property
    def Q_dtype(self) -> np.dtype:
        """The basis's dtype, as NumPy names it."""
        return numpy_dtype(self.Q.dtype)


def column_norms(W: Any, place: Placement) -> np.ndarray:
    """The column norms of a tall block, on the host."""
    if place.on_host:
        return np.linalg.norm(W, axis=0)
    return place.host(place.xp.linalg.vector_norm(W, axis=0))


def _project(previous: Any, W: Any, norms: np.ndarray, place: Placement) -> np.ndarray:
    """Remove from ``W`` (in place) its part in ``span(previous)``; return the
    coefficients. Block Gram–Schmidt, repeated once unless every column kept
    at least ``1/√2`` of its norm (``norms``) in the first pass: then the
    first pass is already accurate to rounding (Kahan and Parlett's "twice is
    enough" test)."""
    if previous.shape[1] == 0:
        return np.zeros((0, W.shape[1]), dtype=numpy_dtype(W.dtype))
    head = previous.T @ W
    W -= previous @ head
    if np.all(column_norms(W, place) >= _ONE_PASS * norms):
        return place.host(head)
    again = previous.T @ W
    W -= previous @ again
    return place.host(head + again)


def _orthonormalize(W: Any, place: Placement) -> tuple[Any, np.ndarray, bool]:
    """``W = Q R`` by CholeskyQR, or Householder QR when the Gram matrix is
    not safely positive definite; also whether CholeskyQR was used. ``Q`` stays
    where ``W`` is; the Gram matrix and ``R`` are factored on the host."""
    gram = place.host(W.T @ W)
    dtype = gram.dtype
    try:
        L = np.linalg.cholesky(gram)
    except np.linalg.LinAlgError:
        L = None
    diagonal = np.diag(L) if L is not None else None
    if L is None or diagonal.min() <= np.sqrt(np.finfo(dtype).eps) * diagonal.max() * 1e2:
        if not place.on_host:
            Q, R = place.xp.linalg.qr(W)
            return Q, place.host(R), False
        Q, R = sla.qr(W, mode="economic", overwrite_a=True, check_finite=False)
        return np.asfortranarray(Q), R, False
    R = L.T
    inverse = sla.solve_triangular(R, np.eye(R.shape[0], dtype=dtype), check_finite=False)
    return (place.put(inverse).T @ W.T).T, R, True  # (R⁻ᵀ Wᵀ)ᵀ: Fortran order on the host


def _condition(R: np.ndarray) -> float:
    """``max |R_ii| / min |R_ii|``: a cheap lower bound on ``cond(R)``."""
    diagonal = np.abs(np.diag(R))
    return float(diagonal.max() / diagonal.min()) if diagonal.min() > 0 else np.inf
