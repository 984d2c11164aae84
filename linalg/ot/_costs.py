"""Cost matrices: squared Euclidean between point clouds, and between grid cells."""

from __future__ import annotations

from typing import Any

import numpy as np

from linalg._core.namespace import common_kind, to_caller
from linalg._core.validate import check_int, check_real, float_input, result_dtype

__all__ = ["grid_cost", "sqeuclidean_cost"]


def sqeuclidean_cost(x: Any, y: Any) -> Any:
    """Squared Euclidean distances ``C_ij = ‖x_i − y_j‖²`` between two point clouds.

    Parameters
    ----------
    x : array_like, shape (n, d) or (n,)
        Points (1-D input: points on a line).
    y : array_like, shape (m, d) or (m,)
        Points, in the same dimension.

    Returns
    -------
    array, shape (n, m)
        The costs, non-negative, in the caller's array type and dtype
        (computed on the device for CuPy arrays and GPU tensors).

    Raises
    ------
    ValueError
        If the dimensions differ, or the points hold NaN or Inf.

    Notes
    -----
    Computed as ``‖x_i‖² + ‖y_j‖² − 2 x_i·y_j`` (one matrix product) and
    clipped at zero, so entries of nearly equal points carry a rounding
    error of order ``eps ‖x_i‖²``.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.ot import sqeuclidean_cost
    >>> sqeuclidean_cost(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 0.0]]))
    array([[1.],
           [1.]])
    """
    kind = common_kind(x, y)
    X, xp, _ = float_input(x, "x", ndim=(1, 2))
    Y = float_input(y, "y", ndim=(1, 2))[0]
    X, Y = (Z[:, None] if Z.ndim == 1 else Z for Z in (X, Y))
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"x and y must have the same dimension, got {tuple(X.shape)} and {tuple(Y.shape)}"
        )
    dtype = getattr(xp, result_dtype(X.dtype, Y.dtype).name)
    X, Y = xp.astype(X, dtype, copy=False), xp.astype(Y, dtype, copy=False)
    if isinstance(X, np.ndarray):  # in place, without temporaries the size of C
        C = np.einsum("ij,ij->i", X, X)[:, None] + np.einsum("ij,ij->i", Y, Y)[None, :]
        C -= 2.0 * (X @ Y.T)
        np.maximum(C, 0.0, out=C)
    else:  # CuPy, a GPU tensor: on its device
        C = xp.sum(X * X, axis=1)[:, None] + xp.sum(Y * Y, axis=1)[None, :] - 2.0 * (X @ Y.T)
        C = xp.maximum(C, xp.zeros_like(C))
    return to_caller(C, kind)


def grid_cost(shape: Any, p: float = 2, *, dtype: Any = np.float64) -> np.ndarray:
    """Costs ``C_ij = Σ_k |x_ik − x_jk|^p`` between the cells of a regular grid.

    Cells are numbered in C order (``numpy.ravel``) at integer coordinates,
    so ``p = 2`` gives squared Euclidean distances in grid units. Divide by
    ``C.max()`` to scale the costs to ``[0, 1]``.

    Parameters
    ----------
    shape : int or tuple of int
        The grid, e.g. ``(28, 28)``; ``N = prod(shape)`` cells.
    p : float
        Exponent, ``p > 0``.
    dtype : {numpy.float64, numpy.float32}
        The dtype of the result.

    Returns
    -------
    numpy.ndarray, shape (N, N)

    Raises
    ------
    ValueError
        If a side is smaller than 1 or ``p <= 0``.

    Examples
    --------
    >>> from linalg.ot import grid_cost
    >>> grid_cost((2, 2))
    array([[0., 1., 1., 2.],
           [1., 0., 2., 1.],
           [1., 2., 0., 1.],
           [2., 1., 1., 0.]])
    """
    sides = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    if not sides:
        raise ValueError("shape must have at least one side")
    sides = tuple(check_int(side, "shape", low=1) for side in sides)
    p = check_real(p, "p", low=0.0, low_inclusive=False)
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    coords = np.indices(sides).reshape(len(sides), -1).astype(np.float64)
    C = np.zeros((coords.shape[1], coords.shape[1]))
    for axis in coords:
        C += np.abs(axis[:, None] - axis[None, :]) ** p
    return C.astype(dtype, copy=False)
