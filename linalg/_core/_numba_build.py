"""Numba kernels built twice, serial and multithreaded, picked by problem size.

Starting Numba's threads costs tens of microseconds (far more on a busy
machine), more than a small problem's whole pass, so a kernel written with
``numba.prange`` is also compiled serially and the call picks the build.
"""

from __future__ import annotations

import types

import numba
import numpy as np

__all__ = ["THREADED_ROWS", "SerialOrThreaded"]

# Below this many rows a pass runs on one thread (measured crossover ~ 2**15 for CG).
THREADED_ROWS = 1 << 15


class SerialOrThreaded:
    """One kernel, compiled serial and multithreaded; the call picks by its first array's rows."""

    def __init__(self, function: types.FunctionType) -> None:
        self.serial = numba.njit(cache=True, nogil=True)(function)
        # A renamed copy, so Numba's on-disk cache keeps the two builds apart.
        twin = types.FunctionType(
            function.__code__, function.__globals__, function.__name__ + "_threaded"
        )
        twin.__qualname__ = function.__qualname__ + "_threaded"
        self.threaded = numba.njit(parallel=True, cache=True, nogil=True)(twin)

    def __call__(self, *arrays: np.ndarray):
        rows = arrays[0].shape[0]
        return (self.threaded if rows >= THREADED_ROWS else self.serial)(*arrays)
