"""The CuPy engine of :mod:`linalg._core.random`: the stream on a CUDA device.

``cuda/random.cu`` (compiled at run time by NVRTC, see
:mod:`linalg._core.cuda_sources`) computes each element from its index alone,
with the reference's integer and floating-point steps (``cuda/philox.cuh``),
so a device draw has the CPU engines' bits. CuPy is imported when a function
runs, never by importing this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linalg._core.cuda_sources import load_module

__all__ = ["SUFFIX", "THREADS", "empty", "fill", "flat_view", "launch_blocks"]

_KINDS = {"uniform64": 0, "uniform32": 1, "normal": 2, "rademacher": 3}
# The CuPy kernels' launch shape and dtype suffixes (the sketch kernels share them).
SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
THREADS = 256
_MAX_BLOCKS = 1 << 15


def launch_blocks(items: int, per_block: int) -> int:
    """Blocks of a grid-stride launch over ``items``, ``per_block`` at a time."""
    return max(1, min(_MAX_BLOCKS, -(-items // per_block)))


def empty(size: int, dtype: np.dtype) -> Any:
    """A new flat CuPy array on the current device."""
    import cupy

    return cupy.empty(size, dtype=dtype)


def flat_view(out: Any) -> Any:
    """``out`` (a CuPy array, or any object with ``__cuda_array_interface__``, such as
    a torch CUDA tensor) as a flat CuPy array sharing its memory."""
    import cupy

    if not isinstance(out, cupy.ndarray) and not hasattr(out, "__cuda_array_interface__"):
        raise TypeError(
            f"out must be a CUDA array (CuPy, or with __cuda_array_interface__) for "
            f"engine='cupy', got {type(out).__name__}"
        )
    view = cupy.asarray(out)  # zero-copy for __cuda_array_interface__ objects
    if not view.flags.c_contiguous:
        raise TypeError("out must be C-contiguous")
    return view.reshape(-1)


def fill(transform: str, out: Any, key: tuple, stream: tuple, offset: Any) -> None:
    """Write elements ``offset, offset + 1, ...`` of a stream into the flat CuPy array ``out``.

    The contract of :func:`linalg._core._cuda_random.fill`; ``key`` and
    ``stream`` are the seed's and the stream id's 32-bit words, low first.
    """
    size = out.size
    if not size:
        return
    kernel = load_module("random").get_function(f"linalg_stream_fill_{SUFFIX[out.dtype]}")
    words = tuple(np.uint32(w) for w in (*key, *stream))
    kernel(
        (launch_blocks(size, THREADS),),
        (THREADS,),
        (out, np.int64(size), np.int32(_KINDS[transform]), *words, np.uint64(offset)),
    )
