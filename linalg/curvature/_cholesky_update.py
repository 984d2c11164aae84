"""Rank-one modifications of a Cholesky factor (NumPy reference, engine ``"reference"``).

Every kernel works in place on an upper-triangular factor ``R`` with a
positive diagonal, ``C = Rᵀ R``, stored C-contiguous in float64: a row of
``R`` is a column of the lower factor ``L = Rᵀ``, so each step below reads and
writes contiguous rows (and LAPACK reads the same memory as the F-ordered
``L`` without a copy). All four cost ``O(n²)``:

- :func:`update`: ``Rᵀ R + x xᵀ`` by ``n`` Givens rotations, each zeroing
  one entry of ``x`` against a diagonal entry of ``R`` (Golub & Van Loan,
  *Matrix Computations*, 4th ed., §6.5.4; LINPACK ``dchud``).
- :func:`downdate`: ``Rᵀ R - x xᵀ`` as in LINPACK ``dchdd``: solve
  ``Rᵀ a = x``; the result is positive definite iff ``‖a‖ < 1``, checked
  before ``R`` is touched; then rotations that fold ``[a; √(1 - ‖a‖²)]`` into
  the last unit vector, applied to ``[R; 0]``, leave ``[R̃; xᵀ]``.
- :func:`delete_first`: the factor of ``C[1:, 1:] = R₂₂ᵀ R₂₂ + r₁₂ r₁₂ᵀ`` is an
  update of ``R₂₂`` by ``x = r₁₂`` (the first row of ``R`` past its diagonal);
  each updated row is written one row up and one column left, so the factor
  ends in the leading block with no extra copy.
- :func:`append`: a last row and column of ``C``: solve ``Rᵀ y = c[:-1]``;
  the new column of ``R`` is ``[y; √(c[-1] - y·y)]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.linalg

__all__ = [
    "REFERENCE_KERNELS",
    "CholeskyKernels",
    "append",
    "delete_first",
    "downdate",
    "solve",
    "update",
]


class CholeskyKernels(NamedTuple):
    """One engine's kernels on an upper factor ``R`` (float64, C-contiguous, ``C = Rᵀ R``).

    Attributes
    ----------
    update : callable
        ``update(R, x)``: ``R`` becomes the factor of ``Rᵀ R + x xᵀ``.
    downdate : callable
        ``downdate(R, x) -> bool``: ``R`` becomes the factor of
        ``Rᵀ R - x xᵀ`` and True is returned, or, when that matrix is not
        numerically positive definite, False and ``R`` is left unchanged.
    delete_first : callable
        ``delete_first(R)``: the leading ``(n-1, n-1)`` block of ``R``
        becomes the factor of ``C[1:, 1:]``; the last row and column are zeroed.
    append : callable
        ``append(R, c) -> float``: with the factor of ``C[:-1, :-1]`` in the
        leading block of ``R`` (``n x n``) and ``c = C[:, -1]``, fill the last
        column of ``R``. Returns the squared new diagonal entry ``d²``; its
        root is stored when ``d² > 0``, else 0 (a breakdown, for the caller
        to handle).
    solve : callable
        ``solve(R, B) -> X`` with ``Rᵀ R X = B`` for ``B`` of shape ``(n, k)``.

    ``x``, ``c`` and ``B`` are never modified.
    """

    update: Callable[[np.ndarray, np.ndarray], None]
    downdate: Callable[[np.ndarray, np.ndarray], bool]
    delete_first: Callable[[np.ndarray], None]
    append: Callable[[np.ndarray, np.ndarray], float]
    solve: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _rotate_in(R: np.ndarray, x: np.ndarray, shift: int) -> None:
    """Factor of ``S ᵀ S + x xᵀ`` for ``S = R[shift:, shift:]``, written to ``R[:n, :n]``."""
    n = x.size
    for k in range(n):
        src = R[k + shift, k + shift : n + shift]
        r = np.hypot(src[0], x[k])
        c, s = src[0] / r, x[k] / r
        row = c * src + s * x[k:]
        x[k:] = c * x[k:] - s * src
        row[0] = r
        R[k, k:n] = row


def update(R: np.ndarray, x: np.ndarray) -> None:
    """``R`` <- the upper factor of ``Rᵀ R + x xᵀ``, in place."""
    _rotate_in(R, np.array(x, dtype=np.float64), 0)


def delete_first(R: np.ndarray) -> None:
    """Leading ``(n-1, n-1)`` block of ``R`` <- the factor of ``C[1:, 1:]``; see module."""
    _rotate_in(R, R[0, 1:].copy(), 1)
    R[-1, :] = 0.0
    R[:, -1] = 0.0


def _forward(R: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``y`` with ``Rᵀ y = b``, column by column (contiguous rows of ``R``)."""
    y = np.array(b, dtype=np.float64)
    for k in range(y.size):
        y[k] /= R[k, k]
        y[k + 1 :] -= y[k] * R[k, k + 1 :]
    return y


def downdate(R: np.ndarray, x: np.ndarray) -> bool:
    """``R`` <- the upper factor of ``Rᵀ R - x xᵀ`` if positive definite; see module."""
    a = _forward(R, x)
    slack = 1.0 - a @ a
    if not slack > 0.0:
        return False
    n = a.size
    alpha = np.sqrt(slack)
    cosines, sines = np.empty(n), np.empty(n)
    for i in range(n - 1, -1, -1):
        norm = np.hypot(alpha, a[i])
        cosines[i], sines[i] = alpha / norm, a[i] / norm
        alpha = norm
    last = np.zeros(n)
    for i in range(n - 1, -1, -1):
        row = R[i, i:].copy()
        R[i, i:] = cosines[i] * row - sines[i] * last[i:]
        last[i:] = sines[i] * row + cosines[i] * last[i:]
    return True


def append(R: np.ndarray, c: np.ndarray) -> float:
    """Fill the last column of ``R`` from ``c = C[:, -1]``; return ``d²``; see module."""
    n = c.size
    y = _forward(R[: n - 1, : n - 1], c[: n - 1])
    d2 = float(c[n - 1] - y @ y)
    R[: n - 1, n - 1] = y
    R[n - 1, : n - 1] = 0.0
    R[n - 1, n - 1] = np.sqrt(d2) if d2 > 0.0 else 0.0
    return d2


def solve(R: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``X`` with ``Rᵀ R X = B``; see module."""
    return scipy.linalg.cho_solve((R, False), B, check_finite=False)


REFERENCE_KERNELS = CholeskyKernels(
    update=update, downdate=downdate, delete_first=delete_first, append=append, solve=solve
)
