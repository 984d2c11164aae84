"""The CuPy engine of the sparse sketches and of the random stream, on a CUDA device.

Every test needs a GPU (marker ``gpu``, skipped by the default run): run with
``python -m pytest -m gpu tests/sketch/test_sketch_gpu.py`` where CuPy (and,
for one test, numba-cuda) is installed. Hashes and stream draws must equal the
NumPy reference bit for bit; ``S @ A`` adds with atomics in no fixed order, so it
is judged against the exact float64 product with a rounding bound.
"""

from __future__ import annotations

import numpy as np
import pytest

import linalg
from linalg._core import random as ref
from linalg._core.random import RandomStream
from linalg.sketch._sparse_sketches import REFERENCE_KERNELS, as_csc

from conftest import RTOL

pytestmark = pytest.mark.gpu

KINDS = ["uniform", "normal", "rademacher"]
DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]


@pytest.fixture(scope="module")
def gpu(cp):
    from linalg.sketch import _cupy

    return _cupy


def _transform(kind: str, dtype) -> str:
    if kind == "uniform":
        return "uniform32" if np.dtype(dtype) == np.float32 else "uniform64"
    return kind


def _assert_same_bits(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


# --- the random stream --------------------------------------------------------------


@pytest.mark.parametrize("offset", [0, 7, 2**32 - 1000, 2**64 - 5000])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", KINDS)
def test_stream_fill_gives_the_reference_bits(cp, gpu, kind, dtype, offset):
    rs = RandomStream(987654321987654321, stream=2**33 + 5)
    out = cp.empty(5000, dtype=dtype)
    gpu.stream_fill(_transform(kind, dtype), out, rs, offset)
    _assert_same_bits(cp.asnumpy(out), getattr(rs, kind)(5000, dtype=dtype, offset=offset))


def test_a_long_normal_stream_reaches_the_tails(cp, gpu):
    rs = RandomStream(5)
    out = cp.empty(3_000_000)
    gpu.stream_fill("normal", out, rs, 0)
    want = rs.normal(3_000_000)
    _assert_same_bits(cp.asnumpy(out), want)
    assert np.abs(want).max() > 4.5  # the AS241 tail branch was exercised


@pytest.mark.parametrize("kind", KINDS)
def test_any_grid_gives_the_same_stream(cp, gpu, kind, monkeypatch):
    from linalg._core import _cupy_random  # the stream's CuPy engine launches the fill

    monkeypatch.setattr(_cupy_random, "_MAX_BLOCKS", 3)  # 768 threads for 10,000 elements
    rs = RandomStream(11, stream=1)
    out = cp.empty(10_000)
    gpu.stream_fill(_transform(kind, np.float64), out, rs, 123)
    _assert_same_bits(cp.asnumpy(out), getattr(rs, kind)(10_000, offset=123))


def test_an_empty_fill_launches_nothing(cp, gpu):
    gpu.stream_fill("normal", cp.empty(0), RandomStream(0), 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", KINDS)
def test_numba_cuda_fill_on_the_device_gives_the_reference_bits(cp, kind, dtype):
    # On hardware, NVVM would fuse a * b + c unless the products are __nv_dmul_rn.
    status = linalg.engines()["numba-cuda"]
    if not status.usable:
        pytest.skip(status.reason)
    from linalg._core import _cuda_random

    rs = RandomStream(42, stream=9)
    out = cp.empty(200_000, dtype=dtype)
    _cuda_random.fill(
        _transform(kind, dtype), out, ref._split(rs.seed), ref._split(rs.stream), 2**32 - 7
    )
    want = getattr(rs, kind)(200_000, dtype=dtype, offset=2**32 - 7)
    _assert_same_bits(cp.asnumpy(out), want)


# --- the loader ------------------------------------------------------------------------


def test_modules_are_compiled_once_per_options(cp):
    from linalg._core.cuda_sources import NVRTC_OPTIONS, load_module

    assert "--fmad=false" in NVRTC_OPTIONS
    module = load_module("sketch")
    assert load_module("sketch") is module
    assert load_module("sketch", options=("-DLINALG_TEST=1",)) is not module
    assert module.get_function("linalg_sketch_hashes") is not None


# --- hashes: S itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "nnz"), [(50, 1), (7, 1), (64, 2), (64, 8), (100, 40), (12, 12)], ids=str
)
@pytest.mark.parametrize("start", [0, 12_345])
def test_hashes_are_the_reference_bits(cp, gpu, d, nnz, start):
    rs = RandomStream(3, stream=4)
    rows, signs = gpu.CUPY_KERNELS.hashes(rs, d, nnz, start, start + 3000)
    want_rows, want_signs = REFERENCE_KERNELS.hashes(rs, d, nnz, start, start + 3000)
    assert rows.dtype == cp.int64 and signs.dtype == cp.float64
    np.testing.assert_array_equal(cp.asnumpy(rows), want_rows)
    _assert_same_bits(cp.asnumpy(signs), want_signs)
    # Floyd's sampling gives distinct rows within a column.
    got = cp.asnumpy(rows)
    assert all(len(set(column)) == nnz for column in got[:200].tolist())


# --- S @ A -----------------------------------------------------------------------------


def _exact_and_bound(rs, d, nnz, start, A):
    """``S @ A`` in float64 and an elementwise bound ``|S| @ |A|`` for its rounding."""
    rows, signs = REFERENCE_KERNELS.hashes(rs, d, nnz, start, start + A.shape[0])
    values = signs / np.sqrt(nnz)
    S = as_csc(rows, values, d)
    A64 = A.astype(np.float64)
    return np.asarray(S @ A64), np.asarray(abs(S) @ np.abs(A64))


def _check_sketch(got, rs, d, nnz, start, A):
    exact, bound = _exact_and_bound(rs, d, nnz, start, A)
    got = np.asarray(got)
    assert got.dtype == A.dtype and got.shape == exact.shape
    error = np.abs(got.astype(np.float64) - exact)
    assert (error <= RTOL[np.dtype(A.dtype)] * bound).all(), error.max()


@pytest.mark.parametrize("k", [1, 5, 33, 100])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("nnz", [1, 8])
def test_sketch_equals_the_reference(cp, gpu, nnz, dtype, k):
    rng = np.random.default_rng(k)
    d, n, start = 40, 5000, 17
    A = rng.standard_normal((n, k)).astype(dtype)
    rs = RandomStream(8, stream=k)
    scale = 1.0 / np.sqrt(nnz)
    got = cp.asnumpy(gpu.CUPY_KERNELS.sketch(rs, d, nnz, start, cp.asarray(A), scale))
    _check_sketch(got, rs, d, nnz, start, A)
    # and so within twice the bound of the NumPy engine's own answer
    reference = REFERENCE_KERNELS.sketch(rs, d, nnz, start, A, scale)
    _, bound = _exact_and_bound(rs, d, nnz, start, A)
    difference = np.abs(got.astype(np.float64) - reference)
    assert (difference <= 2 * RTOL[np.dtype(dtype)] * bound).all()


@pytest.mark.parametrize("layout", ["fortran", "strided"])
def test_sketch_of_a_non_contiguous_input_leaves_it_unchanged(cp, gpu, layout):
    rng = np.random.default_rng(0)
    base = cp.asarray(rng.standard_normal((2000, 24)))
    A = cp.asfortranarray(base) if layout == "fortran" else base[:, ::3]
    before = A.copy()
    rs = RandomStream(1)
    got = gpu.CUPY_KERNELS.sketch(rs, 30, 4, 0, A, 0.5)
    cp.testing.assert_array_equal(A, before)
    assert A.flags.f_contiguous == (layout == "fortran")
    _check_sketch(cp.asnumpy(got), rs, 30, 4, 0, cp.asnumpy(A))


def test_a_sketch_with_many_colliding_rows(cp, gpu):
    # d = 2: every atomicAdd of a column lands on one of two rows.
    rng = np.random.default_rng(1)
    A = rng.standard_normal((100_000, 3))
    rs = RandomStream(2)
    got = cp.asnumpy(gpu.CUPY_KERNELS.sketch(rs, 2, 1, 0, cp.asarray(A), 1.0))
    _check_sketch(got, rs, 2, 1, 0, A)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_apply_transpose_equals_the_reference(cp, gpu, dtype):
    rs = RandomStream(6)
    rows, signs = gpu.CUPY_KERNELS.hashes(rs, 20, 3, 0, 500)
    values = (signs / np.sqrt(3)).astype(dtype)
    Y = np.random.default_rng(2).standard_normal((20, 7)).astype(dtype)
    got = gpu.CUPY_KERNELS.apply_transpose(rows, values, cp.asarray(Y))
    want_rows, want_signs = REFERENCE_KERNELS.hashes(rs, 20, 3, 0, 500)
    want = REFERENCE_KERNELS.apply_transpose(want_rows, (want_signs / np.sqrt(3)).astype(dtype), Y)
    assert got.dtype == dtype
    np.testing.assert_allclose(cp.asnumpy(got), want, rtol=RTOL[np.dtype(dtype)])


# --- the public operators, once SketchOperator sends device arrays to the engine ---------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", ["countsketch", "sparse_sign"])
def test_public_sketches_on_cupy_input(cp, kind, dtype):
    from linalg import sketch
    from linalg.sketch._operator import SketchOperator

    if not hasattr(SketchOperator, "_apply_device"):
        pytest.skip("SketchOperator does not route device arrays to the CuPy engine yet")
    S = getattr(sketch, kind)(64, 3000, rng=4, dtype=dtype)
    A = np.random.default_rng(3).standard_normal((3000, 10)).astype(dtype)
    A_gpu = cp.asarray(A)
    got = S @ A_gpu
    assert isinstance(got, cp.ndarray) and got.dtype == dtype
    cp.testing.assert_array_equal(A_gpu, cp.asarray(A))
    dense = S.todense().astype(np.float64)
    exact = dense @ A.astype(np.float64)
    bound = np.abs(dense) @ np.abs(A.astype(np.float64))
    assert (np.abs(cp.asnumpy(got) - exact) <= RTOL[np.dtype(dtype)] * bound).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("make", [linalg.sketch.countsketch, linalg.sketch.sparse_sign])
def test_torch_cuda_tensors_reach_the_cupy_kernels(cp, make, dtype):
    """A torch CUDA tensor is sketched by the CuPy engine through DLPack views and
    comes back as a torch tensor on its device."""
    torch = pytest.importorskip("torch")
    A = np.random.default_rng(3).standard_normal((500, 7)).astype(dtype)
    S = make(40, 500, rng=11)
    got = S @ torch.as_tensor(A, device="cuda")
    assert isinstance(got, torch.Tensor) and got.device.type == "cuda"
    want = S @ A
    scale = np.abs(want).max()
    assert np.abs(got.cpu().numpy() - want).max() <= RTOL[np.dtype(dtype)] * scale
