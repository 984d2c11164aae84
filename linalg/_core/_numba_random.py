"""Numba kernels for :mod:`linalg._core.random` (engine ``"numba"``).

The arithmetic helpers of the reference module are compiled as they stand, so
both engines perform the same IEEE operations in the same order and give the
same bits. Only the control flow that NumPy expresses with masks (the branches
of the logarithm and of AS241) is written again here, per element. No fastmath:
it would let LLVM reassociate and fuse into FMAs, and the bits would change.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.extending import register_jitable

from linalg._core import random as ref
from linalg._core._numba_build import SerialOrThreaded

__all__ = ["element_words", "fill", "rademacher", "uniform_f64"]

for _helper in (
    ref._philox4x32_10,
    ref._uniform_f64,
    ref._uniform_f32,
    ref._rademacher,
    ref._horner,
    ref._log_reduced,
    ref._ppnd_central,
    ref._ppnd_tail,
):
    register_jitable(_helper)


@numba.njit(cache=True)
def _log(x: float) -> float:
    """Natural logarithm of positive finite ``x``; the same bits as ``ref._log``."""
    m, e = math.frexp(x)
    if m < ref._SQRT_HALF:
        m = 2.0 * m
        e -= 1
    return ref._log_reduced(m, float(e))


@numba.njit(cache=True)
def _ppnd(p: float) -> float:
    """Inverse standard normal CDF (AS241); the same bits as ``ref._ppnd``."""
    q = p - 0.5
    if abs(q) <= ref._CENTRAL_LIMIT:
        return ref._ppnd_central(q)
    r = math.sqrt(-_log(p if q < 0.0 else 1.0 - p))
    if r <= ref._NEAR_LIMIT:
        value = ref._ppnd_tail(r, ref._NEAR_SHIFT, ref._NEAR_NUM, ref._NEAR_DEN)
    else:
        value = ref._ppnd_tail(r, ref._FAR_SHIFT, ref._FAR_NUM, ref._FAR_DEN)
    return -value if q < 0.0 else value


@numba.njit(cache=True)
def _normal(words: tuple) -> float:
    return _ppnd(ref._uniform_f64(words))


uniform_f64 = numba.njit(ref._uniform_f64)
uniform_f32 = numba.njit(ref._uniform_f32)
rademacher = numba.njit(ref._rademacher)

# The transforms by number, so one cached kernel serves them all (the branch on
# ``kind`` is loop-invariant and hoisted out of the loop by LLVM).
_KINDS = {"uniform64": 0, "uniform32": 1, "normal": 2, "rademacher": 3}


@numba.njit(inline="always")
def element_words(index: np.uint64, k0, k1, s0, s1) -> tuple:
    """The four Philox words of stream element ``index`` (key and stream as 32-bit words)."""
    return ref._philox4x32_10(index & ref._MASK32, index >> ref._SHIFT32, s0, s1, k0, k1)


@SerialOrThreaded
def _fill(out, kind, k0, k1, s0, s1, offset):
    for j in numba.prange(out.size):
        words = element_words(offset + np.uint64(j), k0, k1, s0, s1)
        if kind == 0:
            out[j] = uniform_f64(words)
        elif kind == 1:
            out[j] = uniform_f32(words)
        elif kind == 2:
            out[j] = _normal(words)
        else:
            out[j] = rademacher(words)


def fill(transform: str, out: np.ndarray, key: tuple, stream: tuple, offset: np.uint64) -> None:
    """Write elements ``offset, offset + 1, ...`` of a stream into the flat ``out``.

    ``transform`` names the conversion (``"uniform64"``, ``"uniform32"``,
    ``"normal"``, ``"rademacher"``); ``key`` and ``stream`` are pairs of uint64
    32-bit words, low first.
    """
    _fill(out, _KINDS[transform], *key, *stream, offset)
