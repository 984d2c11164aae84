"""Numba kernels for rank-one Cholesky modifications (engine ``"numba"``).

Same algorithms and interface as :mod:`linalg.curvature._cholesky_update`
(see :class:`~linalg.curvature._cholesky_update.CholeskyKernels`), on an
upper factor ``R`` in float64, one row at a time with the inner loops over
contiguous rows. The inner loops index 1-D row slices from 0: Numba then
vectorizes them (4x faster than indexing ``R[k + shift, j + shift]``).
Imported only through the engine registry.
"""

from __future__ import annotations

import numba
import numpy as np

from linalg.curvature._cholesky_update import CholeskyKernels

__all__ = ["NUMBA_KERNELS"]


@numba.njit(cache=True)
def _rotate_in(R, x, shift):
    """Factor of ``Sᵀ S + x xᵀ`` for ``S = R[shift:, shift:]``, written to ``R[:n, :n]``."""
    n = x.size
    for k in range(n):
        src = R[k + shift, k + shift : n + shift]
        dst = R[k, k:n]
        tail = x[k:]
        r = np.hypot(src[0], tail[0])
        c = src[0] / r
        s = tail[0] / r
        dst[0] = r
        for j in range(1, n - k):
            rv = src[j]
            xv = tail[j]
            dst[j] = c * rv + s * xv
            tail[j] = c * xv - s * rv


@numba.njit(cache=True)
def _update(R, x):
    _rotate_in(R, x.astype(np.float64), 0)


@numba.njit(cache=True)
def _delete_first(R):
    n = R.shape[0]
    _rotate_in(R, R[0, 1:].copy(), 1)
    for j in range(n):
        R[n - 1, j] = 0.0
        R[j, n - 1] = 0.0


@numba.njit(cache=True)
def _forward(R, b):
    """``y`` with ``Rᵀ y = b``, column by column (contiguous rows of ``R``)."""
    n = b.size
    y = b.astype(np.float64)
    for k in range(n):
        row = R[k, k:n]
        tail = y[k:]
        yk = tail[0] / row[0]
        tail[0] = yk
        for j in range(1, n - k):
            tail[j] -= yk * row[j]
    return y


@numba.njit(cache=True)
def _downdate(R, x):
    a = _forward(R, x)
    n = a.size
    slack = 1.0
    for i in range(n):
        slack -= a[i] * a[i]
    if not slack > 0.0:
        return False
    alpha = np.sqrt(slack)
    cosines = np.empty(n)
    sines = np.empty(n)
    for i in range(n - 1, -1, -1):
        norm = np.hypot(alpha, a[i])
        cosines[i] = alpha / norm
        sines[i] = a[i] / norm
        alpha = norm
    last = np.zeros(n)
    for i in range(n - 1, -1, -1):
        c = cosines[i]
        s = sines[i]
        row = R[i, i:n]
        tail = last[i:]
        for j in range(n - i):
            rv = row[j]
            lv = tail[j]
            row[j] = c * rv - s * lv
            tail[j] = s * rv + c * lv
    return True


@numba.njit(cache=True)
def _append(R, c):
    n = c.size
    y = _forward(R[: n - 1, : n - 1], c[: n - 1])
    d2 = c[n - 1]
    for i in range(n - 1):
        d2 -= y[i] * y[i]
        R[i, n - 1] = y[i]
        R[n - 1, i] = 0.0
    R[n - 1, n - 1] = np.sqrt(d2) if d2 > 0.0 else 0.0
    return d2


@numba.njit(cache=True)
def _backward(R, y):
    """``x`` with ``R x = y``, row by row (contiguous rows of ``R``)."""
    n = y.size
    x = np.empty(n)
    for i in range(n - 1, -1, -1):
        row = R[i, i:n]
        s = y[i]
        for j in range(1, n - i):
            s -= row[j] * x[i + j]
        x[i] = s / row[0]
    return x


@numba.njit(cache=True)
def _solve(R, B):
    """``X`` with ``Rᵀ R X = B``: on one core, with no BLAS threads to wake."""
    X = np.empty((B.shape[0], B.shape[1]))
    for j in range(B.shape[1]):
        X[:, j] = _backward(R, _forward(R, B[:, j]))
    return X


NUMBA_KERNELS = CholeskyKernels(
    update=_update,
    downdate=_downdate,
    delete_first=_delete_first,
    append=_append,
    solve=_solve,
)
