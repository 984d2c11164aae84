"""A growing orthonormal basis, kept block by block, that records how each
new block was expressed in it."""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from linalg._core.random import RandomStream

__all__ = ["Basis"]

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
    """

    def __init__(self, rows: int, capacity: int, dtype: np.dtype) -> None:
        self.Q = np.empty((rows, capacity), dtype=dtype, order="F")
        self.size = 0

    @property
    def columns(self) -> np.ndarray:
        """The basis, ``(rows, size)``."""
        return self.Q[:, : self.size]

    @property
    def room(self) -> int:
        """Columns that can still be added."""
        return self.Q.shape[1] - self.size

    def reset(self) -> None:
        """Forget every column (subspace iteration keeps only its last block)."""
        self.size = 0

    def extend(self, W: np.ndarray) -> np.ndarray:
        """Append an orthonormal basis of ``W``'s part outside the span.

        Returns ``c`` of shape ``(size_after, b)``: ``W ≈ Q[:, :size_after] @ c``.
        The block ``W`` (``(rows, b)``, ``b <= room``) is overwritten.
        """
        old, b = self.size, W.shape[1]
        previous = self.columns
        norms = np.linalg.norm(W, axis=0)
        scale = float(np.max(norms, initial=0.0))
        head = _project(previous, W, norms)
        block, R, cholesky = _orthonormalize(W)
        deficient = np.abs(np.diag(R)) <= _DEFLATION_FACTOR * np.finfo(W.dtype).eps * scale
        if deficient.any():
            fill = RandomStream(_FILL_SEED, old).normal((W.shape[0], int(deficient.sum())))
            block[:, deficient] = fill.astype(W.dtype)
        if deficient.any() or not cholesky or _condition(R) > _WELL_CONDITIONED:
            head += _project(previous, block, np.linalg.norm(block, axis=0)) @ R
        block, R2, _ = _orthonormalize(block)
        coefficients = np.empty((old + b, b), dtype=W.dtype)
        coefficients[:old] = head
        coefficients[old:] = R2 @ R
        self.Q[:, old : old + b] = block
        self.size = old + b
        return coefficients


def _project(previous: np.ndarray, W: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """Remove from ``W`` (in place) its part in ``span(previous)``; return the
    coefficients. Block Gram–Schmidt, repeated once unless every column kept
    at least ``1/√2`` of its norm (``norms``) in the first pass: then the
    first pass is already accurate to rounding (Kahan and Parlett's "twice is
    enough" test)."""
    if previous.shape[1] == 0:
        return np.zeros((0, W.shape[1]), dtype=W.dtype)
    head = previous.T @ W
    W -= previous @ head
    if np.all(np.linalg.norm(W, axis=0) >= _ONE_PASS * norms):
        return head
    again = previous.T @ W
    W -= previous @ again
    return head + again


def _orthonormalize(W: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """``W = Q R`` by CholeskyQR, or Householder QR when the Gram matrix is
    not safely positive definite; also whether CholeskyQR was used."""
    gram = W.T @ W
    try:
        L = np.linalg.cholesky(gram)
    except np.linalg.LinAlgError:
        L = None
    diagonal = np.diag(L) if L is not None else None
    if L is None or diagonal.min() <= np.sqrt(np.finfo(W.dtype).eps) * diagonal.max() * 1e2:
        Q, R = sla.qr(W, mode="economic", overwrite_a=True, check_finite=False)
        return np.asfortranarray(Q), R, False
    R = L.T
    inverse = sla.solve_triangular(R, np.eye(R.shape[0], dtype=W.dtype), check_finite=False)
    return (inverse.T @ W.T).T, R, True  # (R⁻ᵀ Wᵀ)ᵀ comes out in Fortran order


def _condition(R: np.ndarray) -> float:
    """``max |R_ii| / min |R_ii|``: a cheap lower bound on ``cond(R)``."""
    diagonal = np.abs(np.diag(R))
    return float(diagonal.max() / diagonal.min()) if diagonal.min() > 0 else np.inf
