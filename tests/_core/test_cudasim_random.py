"""The numba-cuda random stream: the reference's bits, under the CUDA simulator or on a GPU.

Run with ``NUMBA_ENABLE_CUDASIM=1 python -m pytest -m cudasim tests/_core/test_cudasim_random.py``
(numba-cuda installed); on a machine with a GPU the same tests run on the device.
"""

from __future__ import annotations

import numpy as np
import pytest

from linalg._core import random as ref
from linalg._core.random import RandomStream

try:  # a module global, so that the simulator can swap it inside the test kernels
    from numba import cuda
except ImportError:
    cuda = None

pytestmark = pytest.mark.cudasim

KINDS = ["uniform", "normal", "rademacher"]
OFFSETS = [0, 5, 2**32 - 100, 2**64 - 257]


@pytest.fixture(scope="module")
def kernels():
    pytest.importorskip("numba_cuda", reason="numba-cuda is not installed")
    if not cuda.is_available():
        pytest.skip("no CUDA device, and NUMBA_ENABLE_CUDASIM is not 1")
    from linalg._core import _cuda_random

    return _cuda_random


def _device_draw(kernels, rs, kind, size, dtype, offset):
    transform = {"uniform": "uniform32" if dtype == np.float32 else "uniform64"}.get(kind, kind)
    out = cuda.device_array(size, dtype=dtype)
    kernels.fill(transform, out, ref._split(rs.seed), ref._split(rs.stream), offset)
    return out.copy_to_host()


def _assert_same_bits(got, want):
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_fill_gives_the_reference_bits(kernels, kind, dtype, offset):
    rs = RandomStream(20261123, stream=2**40 + 3)
    got = _device_draw(kernels, rs, kind, 257, dtype, offset)
    want = getattr(rs, kind)(257, dtype=dtype, offset=offset)
    _assert_same_bits(got, want)


@pytest.mark.parametrize("kind", KINDS)
def test_any_launch_shape_gives_the_same_numbers(kernels, kind, monkeypatch):
    # Two blocks of 32 threads for 300 elements: every thread loops.
    monkeypatch.setattr(kernels, "_THREADS", 32)
    monkeypatch.setattr(kernels, "_MAX_BLOCKS", 2)
    rs = RandomStream(2**64 - 1, stream=0)
    got = _device_draw(kernels, rs, kind, 300, np.float64, 11)
    _assert_same_bits(got, getattr(rs, kind)(300, offset=11))


@pytest.mark.parametrize("size", [0, 1])
def test_tiny_fills(kernels, size):
    rs = RandomStream(1)
    _assert_same_bits(_device_draw(kernels, rs, "normal", size, np.float64, 0), rs.normal(size))


def _elementwise(device_function, x: np.ndarray) -> np.ndarray:
    """``device_function`` applied to every entry of ``x`` by a numba-cuda kernel."""

    @cuda.jit
    def evaluate(x, out):
        i = cuda.grid(1)
        if i < x.size:
            out[i] = device_function(x[i])

    out = np.empty_like(x)
    evaluate[(x.size + 31) // 32, 32](x, out)
    return out


# Probabilities reaching every branch of AS241: the centre, the near tail and
# the far tail (r > 5, p < 1.4e-11) that a few hundred draws never reach.
PROBABILITIES = np.array(
    [
        *(2.0**-53, 1e-300, 1e-100, 1e-20, 1e-12, 1.3e-11, 1e-6, 0.01, 0.074, 0.075, 0.0751),
        *(0.3, 0.5, 0.5 + 2.0**-52, 0.7, 0.925, 0.9249, 0.99, 1 - 1e-9, 1 - 2.0**-52),
    ]
)


def test_inverse_normal_cdf_in_every_branch(kernels):
    _assert_same_bits(_elementwise(kernels._ppnd, PROBABILITIES), ref._ppnd(PROBABILITIES))
    assert (np.abs(ref._ppnd(PROBABILITIES)) > 6.7).sum() >= 4  # the far tail was reached


def test_logarithm_of_every_binade(kernels):
    x = np.concatenate(
        [
            np.array([5e-324, 2.0**-1022, 1e-300, 0.5, 0.7071067811865476, 0.70710678118654746]),
            np.array(
                [1.0, 1.0 + 2.0**-52, 1.4142135623730951, 2.0, 3.0, 1e300, 1.7976931348623157e308]
            ),
            np.geomspace(1e-20, 1.0, 40),
        ]
    )

    _assert_same_bits(_elementwise(kernels._log_exact, x), ref._log(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_public_draws_on_the_device(kernels, kind, dtype):
    """``RandomStream.<kind>(..., engine="numba-cuda")``: a device array of the shape
    asked for, with the reference's bits."""
    rs = RandomStream(77, stream=5)
    got = getattr(rs, kind)((6, 9), dtype=dtype, offset=40, engine="numba-cuda")
    assert got.shape == (6, 9)
    _assert_same_bits(got.copy_to_host(), getattr(rs, kind)((6, 9), dtype=dtype, offset=40))


@pytest.mark.parametrize("kind", KINDS)
def test_fill_writes_a_device_buffer_in_place(kernels, kind):
    rs = RandomStream(3)
    out = cuda.device_array((4, 5), dtype=np.float32)
    assert rs.fill(out, kind, offset=9, engine="numba-cuda") is out
    want = getattr(rs, kind)((4, 5), dtype=np.float32, offset=9)
    _assert_same_bits(out.copy_to_host(), want)


def test_fill_refuses_host_and_strided_buffers(kernels):
    rs = RandomStream(3)
    with pytest.raises(TypeError, match="out must be a CUDA array"):
        rs.fill(np.empty(4), "normal", engine="numba-cuda")
    with pytest.raises(TypeError, match="C-contiguous"):
        rs.fill(cuda.device_array((4, 4))[:, ::2], "normal", engine="numba-cuda")
