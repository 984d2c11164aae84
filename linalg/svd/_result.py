"""The result of a truncated singular value decomposition."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from linalg._core.namespace import HOST, Placement, numpy_dtype

__all__ = ["SVDResult", "column_signs", "extreme_signs", "flip_signs"]


@dataclass(frozen=True, repr=False)
class SVDResult:
    """The leading ``k`` singular triplets of a matrix, ``A ≈ U diag(s) Vt``.

    Unpacks like :func:`numpy.linalg.svd`: ``U, s, Vt = randomized_svd(A, k)``.

    Attributes
    ----------
    U : array, shape (m, k)
        Left singular vectors, orthonormal columns.
    s : array, shape (k,)
        Singular values, non-increasing.
    Vt : array, shape (k, n)
        Right singular vectors, orthonormal rows.
    error_estimate : float
        An estimate of ``||A - U diag(s) Vt||₂`` (spectral norm); ``nan``
        when the method did not compute one.
    n_passes : int
        Passes over ``A`` (products with ``A`` or ``Aᵀ`` by a block of vectors).
    converged : bool
        Whether a requested tolerance was met (``True`` when none was asked).
    info : dict
        Details: the method used, the rank reached, the block size.
    """

    U: Any
    s: Any
    Vt: Any
    error_estimate: float = float("nan")
    n_passes: int = 0
    converged: bool = True
    info: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):
        return iter((self.U, self.s, self.Vt))

    def __repr__(self) -> str:
        m, k = np.shape(self.U)
        n = np.shape(self.Vt)[1]
        return (
            f"SVDResult(shape=({m}, {n}), k={k}, error_estimate={self.error_estimate:.3g}, "
            f"n_passes={self.n_passes}, converged={self.converged}, info={self.info!r})"
        )


def flip_signs(U: Any, Vt: Any, place: Placement = HOST) -> tuple[Any, Any]:
    """Signs fixed as ``svd_flip``: the largest-magnitude entry of each column
    of ``U`` (the first, on ties) is positive; ``Vt``'s rows follow."""
    signs = place.put(column_signs(U, place))
    return U * signs, Vt * signs[:, None]


def column_signs(U: Any, place: Placement = HOST) -> np.ndarray:
    """``±1`` (a host array of ``U``'s dtype): the sign of the largest-magnitude
    entry of each column of ``U``, the first on ties. Off the host it is found
    from the column extremes without moving ``U`` (``+1`` on ties)."""
    dtype = numpy_dtype(U.dtype)
    if not place.on_host:
        high, low = place.host(place.xp.max(U, axis=0)), place.host(place.xp.min(U, axis=0))
        return extreme_signs(high, low).astype(dtype)
    rows = np.argmax(np.abs(U), axis=0)
    return np.where(U[rows, np.arange(U.shape[1])] < 0, -1, 1).astype(dtype)


def extreme_signs(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """``+1`` where a column's largest entry ``high`` outweighs its smallest ``low``, else -1."""
    return np.where(high >= -low, 1.0, -1.0)
