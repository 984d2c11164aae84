"""``cuda/ot.cu`` compiled for the host: the NumPy reference kernels' numbers.

No GPU is needed. The source, as the loader expands it, is compiled by the
host C++ compiler with stand-ins for the CUDA built-ins it uses; a launch
runs its blocks one after another, each block as ``blockDim.x * blockDim.y``
real threads (``threadIdx`` thread-local, ``__shared__`` a static shared by
them, ``__syncthreads`` a ``std::barrier``). So the block reductions and the
scan of the fill pass run as on a device, with several lanes per row,
several rows per block and a grid smaller than the rows (the grid-stride
loops), and a divergent ``__syncthreads`` would hang (the subprocess
timeout fails the test). What only a device can show (NVRTC, the real
launch limits, speed) is left to ``tests/ot/test_ot_gpu.py``.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

from linalg._core.cuda_sources import read_source
from linalg.ot._cupy import launch_shape
from linalg.ot._dual import REFERENCE_KERNELS

CXX = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no host C++ compiler")

SHIMS = r"""
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <math.h>
#include <thread>
#include <vector>
struct Dim { unsigned x = 0, y = 0, z = 0; };
static Dim blockIdx, blockDim{1, 1, 1}, gridDim{1, 1, 1};
static thread_local Dim threadIdx;
static std::barrier<>* block_barrier = nullptr;
#define __device__
#define __global__
#define __forceinline__ inline
#define __shared__ static
static inline void __syncthreads() { block_barrier->arrive_and_wait(); }
static inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
static inline double __longlong_as_double(long long i) {
    double d; std::memcpy(&d, &i, 8); return d;
}
"""

LAUNCHERS = r"""
// Blocks one after another; the threads of a block together, as on a device.
template <typename F>
static void launch(unsigned grid, unsigned lanes, unsigned rows, F kernel) {
    gridDim = Dim{grid, 1, 1};
    blockDim = Dim{lanes, rows, 1};
    for (unsigned b = 0; b < grid; ++b) {
        blockIdx = Dim{b, 0, 0};
        std::barrier<> sync(lanes * rows);
        block_barrier = &sync;
        std::vector<std::thread> threads;
        for (unsigned y = 0; y < rows; ++y)
            for (unsigned x = 0; x < lanes; ++x)
                threads.emplace_back([=] { threadIdx = Dim{x, y, 0}; kernel(); });
        for (auto& t : threads) t.join();
    }
}

// host_<kernel>(grid, lanes, rows, <the kernel's arguments>), called through ctypes.
#define HOST_LAUNCHER(NAME, ARGS, ...)                                                  \
    extern "C" void host_##NAME(unsigned grid, unsigned lanes, unsigned rows, __VA_ARGS__) { \
        launch(grid, lanes, rows, [&] { NAME ARGS; });                                  \
    }
#define HOST_LAUNCHERS(T, SUFFIX)                                                       \
    HOST_LAUNCHER(linalg_ot_lse_##SUFFIX, (K, shared, x, ks, nks, r, c, out), const T* K, \
                  int shared, const T* x, const long long* ks, long long nks, long long r, \
                  long long c, T* out)                                                  \
    HOST_LAUNCHER(linalg_ot_count_##SUFFIX, (P, n, m, theta, counts), const T* P,        \
                  long long n, long long m, const T* theta, long long* counts)          \
    HOST_LAUNCHER(linalg_ot_fill_##SUFFIX, (P, n, m, theta, indptr, indices, data),      \
                  const T* P, long long n, long long m, const T* theta,                 \
                  const long long* indptr, long long* indices, T* data)         \
    HOST_LAUNCHER(linalg_ot_kth_##SUFFIX, (P, n, m, k, theta), const T* P, long long n,  \
                  long long m, long long k, T* theta)
HOST_LAUNCHERS(float, f32)
HOST_LAUNCHERS(double, f64)
"""

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]
# (grid blocks, lanes per row, rows per block): one lane; lanes >= the row; fewer
# lanes than the row with rows sharing a block; a grid far smaller than the rows.
SHAPES = [(1, 1, 1), (3, 64, 4), (2, 32, 8), (2, 256, 1)]
SENTINEL = 7.0
TOL = {np.float32: 1e-5, np.float64: 1e-12}


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> ctypes.CDLL:
    folder = tmp_path_factory.mktemp("ot_host")
    source = folder / "ot.cpp"
    source.write_text(SHIMS + read_source("ot") + LAUNCHERS)
    built = folder / "libot.so"
    flags = ["-std=c++20", "-O1", "-pthread", "-ffp-contract=off", "-shared", "-fPIC"]
    done = subprocess.run(
        [CXX, *flags, "-o", str(built), str(source)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return ctypes.CDLL(str(built))


def _c_argument(value):
    if isinstance(value, np.ndarray):
        assert value.flags.c_contiguous, "the kernels take C-ordered arrays"
        return ctypes.c_void_p(value.ctypes.data)
    return {np.int32: ctypes.c_int, np.int64: ctypes.c_longlong}[type(value)](value)


def _launch(library, name: str, shape, args) -> None:
    """Run kernel ``name`` (``"linalg_ot_lse_f64"``, ...) on a ``(grid, lanes, rows)`` launch."""
    grid, lanes, rows = (ctypes.c_uint(v) for v in shape)
    getattr(library, f"host_{name}")(grid, lanes, rows, *map(_c_argument, args))


def _suffix(dtype) -> str:
    return "f32" if np.dtype(dtype) == np.float32 else "f64"


def _host_lse(library, K, x, ks, shape):
    out = np.full((x.shape[0], K.shape[1]), SENTINEL, dtype=x.dtype)
    _, r, c = K.shape
    args = (K, np.int32(K.shape[0] == 1), x, ks.astype(np.int64), np.int64(ks.size))
    _launch(library, f"linalg_ot_lse_{_suffix(x.dtype)}", shape, (*args, *np.int64([r, c]), out))
    return out


def _problem(dtype, batch: int, r: int, c: int, shared: bool, seed: int):
    """A log-domain problem at ε = 1e-3: ``K = C / ε`` up to 1000, potentials of that size."""
    rng = np.random.default_rng(seed)
    reg = 1e-3
    K = (rng.random((1 if shared else batch, r, c)) / reg).astype(dtype)
    x = (rng.random((batch, c)) / reg).astype(dtype)
    return K, x


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "batch"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_lse_gives_the_reference(library, dtype, shared, shape):
    batch, r, c = 3, 37, 301
    K, x = _problem(dtype, batch, r, c, shared, seed=c + shared)
    ks = np.array([2, 0])  # member 1 is left alone
    K0, x0 = K.copy(), x.copy()
    got = _host_lse(library, K, x, ks, shape)
    want = np.full_like(got, SENTINEL)
    REFERENCE_KERNELS.lse(K, x, ks, want)
    np.testing.assert_array_equal(got[1], SENTINEL)
    scale = np.abs(want[ks]).max()
    np.testing.assert_allclose(got[ks], want[ks], rtol=0, atol=TOL[dtype] * scale)
    np.testing.assert_array_equal(K, K0)
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_lse_is_exact_in_float64_arithmetic(library, dtype):
    # Against log Σ exp in float64 of the same (rounded) inputs: the kernel's own error.
    K, x = _problem(dtype, 2, 20, 1000, shared=False, seed=1)
    got = _host_lse(library, K, x, np.arange(2), (2, 128, 2))
    Z = x[:, None, :].astype(np.float64) - K.astype(np.float64)
    top = Z.max(axis=2)
    exact = top + np.log(np.exp(Z - top[:, :, None]).sum(axis=2))
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(got, exact, rtol=0, atol=20 * eps * np.abs(exact).max())


def test_lse_handles_minus_infinity_and_overflowing_exponents(library):
    # u = -inf on zero-mass rows; z up to 1e5 would overflow exp without the shift.
    K = np.zeros((1, 3, 40))
    x = np.full((2, 40), -np.inf)
    x[0, 5] = 1e5
    x[0, 30] = 1e5 - np.log(3.0)
    got = _host_lse(library, K, x, np.arange(2), (1, 32, 1))
    np.testing.assert_allclose(got[0], 1e5 + np.log1p(1.0 / 3.0), rtol=1e-15)
    np.testing.assert_array_equal(got[1], -np.inf)


def test_the_launch_shape_covers_the_kernel_limits():
    for rows, length in [(1, 1), (7, 31), (1000, 33), (10, 10**6), (10**9, 3)]:
        (blocks,), (lanes, per_block) = launch_shape(rows, length)
        assert lanes * per_block == 256 and lanes & (lanes - 1) == 0
        assert 32 <= lanes <= 256 and 1 <= blocks <= 2**15
        assert blocks * per_block >= min(rows, 2**15 * per_block)


def _host_sparsify(library, P, theta, shape):
    n, m = (np.int64(v) for v in P.shape)
    counts = np.full(n, -1, dtype=np.int64)
    _launch(library, f"linalg_ot_count_{_suffix(P.dtype)}", shape, (P, n, m, theta, counts))
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.full(indptr[-1], -1, dtype=np.int64)
    data = np.full(indptr[-1], -1, dtype=P.dtype)
    args = (P, n, m, theta, indptr, indices, data)
    _launch(library, f"linalg_ot_fill_{_suffix(P.dtype)}", shape, args)
    return indptr, indices, data


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_sparsify_gives_the_reference_csr(library, dtype, shape):
    rng = np.random.default_rng(5)
    n, m = 29, 203
    P = np.exp(rng.standard_normal((n, m)) * 4).astype(dtype)
    theta = (1e-2 * P.sum(axis=1)).astype(dtype)  # a mass budget: θ_i = τ r_i
    P[3] = 0.0  # a row with nothing kept
    theta[7] = 0.0  # a row with everything kept
    theta[11] = P[11, 17]  # an entry equal to its threshold is kept
    P0 = P.copy()
    got = _host_sparsify(library, P, theta, shape)
    want = REFERENCE_KERNELS.sparsify(P, theta)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    assert got[0][4] == got[0][3] and got[0][8] - got[0][7] == m
    assert 17 in got[1][got[0][11] : got[0][12]]
    assert got[2].dtype == dtype
    np.testing.assert_array_equal(P, P0)


def test_sparsify_with_nothing_kept(library):
    P = np.ones((4, 10))
    got = _host_sparsify(library, P, np.full(4, 2.0), (1, 32, 2))
    np.testing.assert_array_equal(got[0], np.zeros(5))
    assert got[1].size == 0 and got[2].size == 0


def _host_kth(library, P, k, shape):
    theta = np.full(P.shape[0], SENTINEL, dtype=P.dtype)
    n, m = (np.int64(v) for v in P.shape)
    _launch(library, f"linalg_ot_kth_{_suffix(P.dtype)}", shape, (P, n, m, np.int64(k), theta))
    return theta


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_kth_largest_gives_the_partition(library, dtype, shape):
    rng = np.random.default_rng(6)
    n, m = 5, 75
    with np.errstate(over="ignore"):  # from subnormal to inf
        P = np.exp(rng.standard_normal((n, m)) * 30).astype(dtype)
    P[1] = 0.0  # every threshold 0
    P[2, :10] = P[2, 20]  # ties
    P[3, 3] = np.inf
    P[4, ::2] = np.finfo(dtype).smallest_subnormal
    P0 = P.copy()
    for k in (1, 11, m):
        got = _host_kth(library, P, k, shape)
        np.testing.assert_array_equal(got, np.partition(P, m - k, axis=1)[:, m - k])
    np.testing.assert_array_equal(P, P0)


# --- the CuPy engine's Python side, with NumPy standing in for CuPy ---------------------


@pytest.fixture
def emulated(library, monkeypatch):
    """``(cupy stand-in, CUPY_KERNELS)``: NumPy arrays, launches run by the host build.

    The kernels are grid-stride loops for any grid and block reductions for
    any power of two of lanes, so a launch runs at most 2 blocks of the grid
    asked for, and blocks are capped at 32 threads: every barrier of the
    emulation switches between all the threads of a block, and it stays fast.
    """
    from linalg.ot import _cupy

    class Module:
        @staticmethod
        def get_function(name: str):
            def kernel(grid, block, args):
                (blocks,), (lanes, rows) = grid, block
                assert lanes * rows <= 256 and lanes & (lanes - 1) == 0 and blocks <= 2**15
                _launch(library, name, (min(blocks, 2), lanes, rows), args)

            return kernel

    fake = types.ModuleType("cupy")
    fake.__dict__.update({k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    fake.asnumpy = np.asarray
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(_cupy, "load_module", lambda family: Module())
    monkeypatch.setattr(_cupy, "_THREADS", 32)
    return fake, _cupy.CUPY_KERNELS


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_the_cupy_engine_runs_the_gpu_tests_on_the_host(emulated, dtype):
    import test_ot_gpu as on_gpu

    cp, kernels = emulated
    for shared in (True, False):
        for n, m in [(1, 1), (5, 20), (37, 301), (8, 4097)]:
            on_gpu.test_lse_equals_the_reference(cp, kernels, dtype, shared, n, m)
    on_gpu.test_lse_takes_cupy_members_and_a_strided_output(cp, kernels, dtype)
    on_gpu.test_sinkhorn_iterations_on_the_kernels_follow_the_reference(cp, kernels, dtype)
    on_gpu.test_plan_equals_the_reference(cp, kernels, dtype)
    for n, m in [(1, 1), (29, 203), (10, 5000)]:
        on_gpu.test_sparsify_equals_the_reference(cp, kernels, dtype, n, m)
    for n, m in [(1, 1), (29, 203), (10, 700)]:
        on_gpu.test_kth_largest_equals_the_array_api_path(cp, kernels, dtype, n, m)


def test_the_cupy_engine_edge_cases_on_the_host(emulated):
    import test_ot_gpu as on_gpu

    cp, kernels = emulated
    on_gpu.test_lse_with_minus_infinity_potentials(cp, kernels)
    on_gpu.test_sparsify_keeping_nothing(cp, kernels)
    on_gpu.test_kth_largest_refuses_a_k_out_of_range(cp, kernels)
    out = np.full((2, 3), SENTINEL)
    kernels.lse(np.ones((1, 3, 4)), np.ones((2, 4)), np.array([], dtype=np.int64), out)
    np.testing.assert_array_equal(out, SENTINEL)  # no members: no launch, nothing written
