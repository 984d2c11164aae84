"""numba-cuda kernels for :mod:`linalg._core.random` (engine ``"numba-cuda"``).

The same numbers as the NumPy reference, bit for bit: the Philox words come
from the reference's own integer helper compiled for the device; the float
conversions repeat the reference's operations in the same order. One thing
differs from the CPU engines: NVVM contracts ``a * b + c`` into a fused
multiply-add by default, and numba-cuda offers no switch to stop it short of
nothing (``fastmath`` only adds contractions). Every product that feeds a sum
therefore goes through :func:`_product`: libdevice's ``__nv_dmul_rn``, which
is never fused, on a GPU, and a plain product in the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``), which computes with NumPy scalars and fuses
nothing.

Importing this module imports numba-cuda; :mod:`linalg._core.random` and
the engine registry import it only when the engine is used.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import config, cuda

from linalg._core import random as ref

__all__ = ["empty", "fill", "flat_view"]

_KINDS = {"uniform64": 0, "uniform32": 1, "normal": 2, "rademacher": 3}
_TWO_M52 = 2.0**-52
_TWO_M23 = 2.0**-23
_THREADS = 128
_MAX_BLOCKS = 4096


if config.ENABLE_CUDASIM:

    @cuda.jit(device=True)
    def _product(a, b):
        return a * b

else:
    from numba.cuda import libdevice

    @cuda.jit(device=True)
    def _product(a, b):
        return libdevice.dmul_rn(a, b)


_philox = cuda.jit(device=True)(ref._philox4x32_10)


@cuda.jit(device=True)
def _horner(x, coefficients):
    value = coefficients[0]
    for i in range(1, len(coefficients)):
        value = _product(value, x) + coefficients[i]
    return value


@cuda.jit(device=True)
def _log_exact(x):
    m, exponent = math.frexp(x)
    if m < ref._SQRT_HALF:
        m = _product(2.0, m)
        exponent -= 1
    e = float(exponent)
    f = m - 1.0
    s = f / (2.0 + f)
    z = _product(s, s)
    series = _product(z, _horner(z, ref._ATANH_SERIES))
    half_f2 = _product(_product(0.5, f), f)
    inner = _product(s, half_f2 + series) + _product(e, ref._LN2_LO)
    return _product(e, ref._LN2_HI) - ((half_f2 - inner) - f)


@cuda.jit(device=True)
def _ppnd(p):
    q = p - 0.5
    if abs(q) <= ref._CENTRAL_LIMIT:
        r = ref._CENTRAL_R - _product(q, q)
        return _product(q, _horner(r, ref._CENTRAL_NUM)) / _horner(r, ref._CENTRAL_DEN)
    r = math.sqrt(-_log_exact(p if q < 0.0 else 1.0 - p))
    if r <= ref._NEAR_LIMIT:
        r = r - ref._NEAR_SHIFT
        value = _horner(r, ref._NEAR_NUM) / _horner(r, ref._NEAR_DEN)
    else:
        r = r - ref._FAR_SHIFT
        value = _horner(r, ref._FAR_NUM) / _horner(r, ref._FAR_DEN)
    return -value if q < 0.0 else value


@cuda.jit(device=True)
def _uniform_f64(w0, w1):
    bits = (w0 >> ref._SHIFT6) * ref._TWO26 + (w1 >> ref._SHIFT6)
    return _product(bits + 0.5, _TWO_M52)


@cuda.jit
def _fill_kernel(out, kind, k0, k1, s0, s1, offset):
    for j in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        index = offset + np.uint64(j)
        w0, w1, _, _ = _philox(index & ref._MASK32, index >> ref._SHIFT32, s0, s1, k0, k1)
        if kind == 0:
            out[j] = _uniform_f64(w0, w1)
        elif kind == 1:
            out[j] = _product((w0 >> ref._SHIFT9) + 0.5, _TWO_M23)
        elif kind == 2:
            out[j] = _ppnd(_uniform_f64(w0, w1))
        else:
            out[j] = 1.0 - 2.0 * (w0 & ref._ONE)


def empty(size: int, dtype: np.dtype) -> Any:
    """A new flat numba-cuda device array."""
    return cuda.device_array(size, dtype=dtype)


def flat_view(out: Any) -> Any:
    """``out`` (a numba-cuda device array, or any object with
    ``__cuda_array_interface__``: CuPy arrays, torch CUDA tensors) as a flat numba
    device array sharing its memory."""
    if not cuda.devicearray.is_cuda_ndarray(out):
        if not hasattr(out, "__cuda_array_interface__"):
            raise TypeError(
                "out must be a CUDA array (numba-cuda, CuPy, or with __cuda_array_interface__) "
                f"for engine='numba-cuda', got {type(out).__name__}"
            )
        out = cuda.as_cuda_array(out)
    if not out.is_c_contiguous():
        raise TypeError("out must be C-contiguous")
    return out.reshape(out.size)


def fill(transform: str, out: Any, key: tuple, stream: tuple, offset: Any) -> None:
    """Write elements ``offset, offset + 1, ...`` of a stream into the flat device array ``out``.

    The same contract as :func:`linalg._core._numba_random.fill`, on a CUDA
    device: ``out`` is a 1-d contiguous float32 or float64 array on the
    device (a numba device array, or any object with
    ``__cuda_array_interface__`` such as a CuPy array), written in place.

    Parameters
    ----------
    transform : {"uniform64", "uniform32", "normal", "rademacher"}
        The conversion of each element's Philox words.
    out : device array
        Filled in place.
    key, stream : tuple of two numpy.uint64
        The seed's and the stream id's 32-bit words, low first.
    offset : int
        Stream index of ``out[0]``.
    """
    size = math.prod(out.shape)
    if not size:
        return
    blocks = min(_MAX_BLOCKS, -(-size // _THREADS))
    _fill_kernel[blocks, _THREADS](
        out, _KINDS[transform], *map(np.uint64, key), *map(np.uint64, stream), np.uint64(offset)
    )
