"""The random stream's device engines on a GPU: CuPy arrays and torch CUDA tensors
get the CPU engines' bits (``gpu`` tests)."""

from __future__ import annotations

import numpy as np
import pytest

from linalg._core.random import RandomStream

pytestmark = pytest.mark.gpu

KINDS = ["uniform", "normal", "rademacher"]
DTYPES = [np.float32, np.float64]


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x).view(np.uint8)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("offset", [0, 2**32 - 7])
def test_cupy_draws_equal_the_reference(cp, kind, dtype, offset):
    rs = RandomStream(20261123, stream=9)
    got = getattr(rs, kind)((33, 65), dtype=dtype, offset=offset, engine="cupy")
    assert isinstance(got, cp.ndarray) and got.shape == (33, 65) and got.dtype == dtype
    want = getattr(rs, kind)((33, 65), dtype=dtype, offset=offset)
    np.testing.assert_array_equal(_bits(cp.asnumpy(got)), _bits(want))


@pytest.mark.parametrize("engine", ["cupy", "numba-cuda"])
def test_fill_writes_a_torch_cuda_tensor_in_place(cp, engine):
    torch = pytest.importorskip("torch")
    if engine == "numba-cuda":
        pytest.importorskip("numba_cuda")
    out = torch.empty((8, 3), dtype=torch.float64, device="cuda")
    rs = RandomStream(5)
    assert rs.fill(out, "normal", offset=17, engine=engine) is out
    want = rs.normal((8, 3), offset=17)
    np.testing.assert_array_equal(_bits(out.cpu().numpy()), _bits(want))


def test_numba_cuda_draw_is_readable_by_cupy(cp):
    pytest.importorskip("numba_cuda")
    rs = RandomStream(1)
    got = cp.asarray(rs.uniform((4, 4), engine="numba-cuda"))
    np.testing.assert_array_equal(cp.asnumpy(got), rs.uniform((4, 4)))
