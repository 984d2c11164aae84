"""The CUDA kernels' arithmetic, compiled for the host: the NumPy reference's bits.

No GPU is needed: the kernel sources (as the loader expands them) are compiled
by the host C++ compiler with one-line stand-ins for the few CUDA built-ins
they use (thread indices, ``__umulhi``, the ``__d*_rn`` intrinsics as plain
IEEE operations with contraction off, a serial ``atomicAdd``), and each kernel
is run as one thread of a one-thread grid, whose grid-stride loop then visits
every element. This checks the Philox rounds, the conversions, the logarithm,
AS241 and Floyd's sampling of ``cuda/*.cu`` against :mod:`linalg._core.random`
and the reference sketch kernels; what only a device can show (NVRTC, the
launch shapes, atomics) is left to the ``gpu`` tests.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from linalg._core import random as ref
from linalg._core.cuda_sources import read_source
from linalg._core.random import RandomStream
from linalg.sketch._sparse_sketches import REFERENCE_KERNELS

CXX = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no host C++ compiler")

SHIMS = r"""
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>
using std::fabs;
using std::frexp;
struct Dim { unsigned x = 0, y = 0, z = 0; };
static Dim blockIdx, threadIdx, blockDim{1, 1, 1}, gridDim{1, 1, 1};
#define __device__
#define __global__
#define __forceinline__ inline
static inline unsigned __umulhi(unsigned a, unsigned b) {
    return (unsigned)(((unsigned long long)a * b) >> 32);
}
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline double __dsqrt_rn(double a) { return std::sqrt(a); }
template <typename T> static inline T atomicAdd(T* p, T v) { T old = *p; *p += v; return old; }
"""

RANDOM_MAIN = r"""
int main(int argc, char** argv) {
    const int kind = atoi(argv[1]), single = atoi(argv[2]);
    const long long size = atoll(argv[3]);
    const unsigned long long offset = strtoull(argv[4], nullptr, 10);
    unsigned w[4];
    for (int i = 0; i < 4; ++i) w[i] = (unsigned)strtoul(argv[5 + i], nullptr, 10);
    if (single) {
        std::vector<float> out(size);
        linalg_stream_fill_f32(out.data(), size, kind, w[0], w[1], w[2], w[3], offset);
        fwrite(out.data(), sizeof(float), size, stdout);
    } else {
        std::vector<double> out(size);
        linalg_stream_fill_f64(out.data(), size, kind, w[0], w[1], w[2], w[3], offset);
        fwrite(out.data(), sizeof(double), size, stdout);
    }
}
"""

SKETCH_MAIN = r"""
int main(int argc, char** argv) {
    const long long m = atoll(argv[1]), d = atoll(argv[3]), k = atoll(argv[5]);
    const int nnz = atoi(argv[2]);
    const unsigned long long start = strtoull(argv[4], nullptr, 10);
    unsigned w[4];
    for (int i = 0; i < 4; ++i) w[i] = (unsigned)strtoul(argv[6 + i], nullptr, 10);
    std::vector<long long> rows(m * nnz);
    std::vector<double> signs(m * nnz), A(m * k), out(d * k, 0.0);
    linalg_sketch_hashes(rows.data(), signs.data(), m, nnz, d, start, w[0], w[1], w[2], w[3]);
    if (fread(A.data(), sizeof(double), m * k, stdin) != (size_t)(m * k)) return 1;
    linalg_sketch_scatter_f64(A.data(), m, k, rows.data(), signs.data(), nnz, atof(argv[10]),
                              out.data());
    fwrite(rows.data(), sizeof(long long), m * nnz, stdout);
    fwrite(signs.data(), sizeof(double), m * nnz, stdout);
    fwrite(out.data(), sizeof(double), d * k, stdout);
}
"""


@pytest.fixture(scope="module")
def programs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("host")
    built = {}
    for family, main in (("random", RANDOM_MAIN), ("sketch", SKETCH_MAIN)):
        source = folder / f"{family}.cpp"
        source.write_text(SHIMS + read_source(family) + main)
        binary = folder / family
        done = subprocess.run(
            [CXX, "-std=c++17", "-O1", "-ffp-contract=off", "-o", str(binary), str(source)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        built[family] = binary
    return built


def _words(rs: RandomStream) -> list[str]:
    return [str(int(w)) for w in (*ref._split(rs.seed), *ref._split(rs.stream))]


KINDS = {"uniform": 0, "normal": 2, "rademacher": 3}


@pytest.mark.parametrize("offset", [0, 2**32 - 300, 2**64 - 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_stream_fill_gives_the_reference_bits(programs, kind, dtype, offset):
    rs = RandomStream(2**63 + 12345, stream=77)
    number = 1 if (kind == "uniform" and dtype == np.float32) else KINDS[kind]
    single = str(int(dtype == np.float32))
    args = [str(number), single, "1000", str(offset), *_words(rs)]
    done = subprocess.run([programs["random"], *args], capture_output=True, check=True)
    got = np.frombuffer(done.stdout, dtype=dtype)
    want = getattr(rs, kind)(1000, dtype=dtype, offset=offset)
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def test_a_long_normal_stream_reaches_the_tails(programs):
    rs = RandomStream(5)
    args = ["2", "0", "400000", "0", *_words(rs)]
    done = subprocess.run([programs["random"], *args], capture_output=True, check=True)
    want = rs.normal(400_000)
    np.testing.assert_array_equal(np.frombuffer(done.stdout).view(np.uint8), want.view(np.uint8))
    assert np.abs(want).max() > 4.0


@pytest.mark.parametrize(
    ("d", "nnz", "start"), [(50, 1, 0), (64, 8, 12_345), (100, 40, 7), (12, 12, 0)], ids=str
)
def test_hashes_and_scatter_give_the_reference(programs, d, nnz, start):
    rs = RandomStream(3, stream=4)
    m, k = 700, 5
    A = np.random.default_rng(d).standard_normal((m, k))
    scale = 1.0 / np.sqrt(nnz)
    args = [str(m), str(nnz), str(d), str(start), str(k), *_words(rs), repr(float(scale))]
    done = subprocess.run(
        [programs["sketch"], *args], input=A.tobytes(), capture_output=True, check=True
    )
    rows = np.frombuffer(done.stdout, dtype=np.int64, count=m * nnz).reshape(m, nnz)
    signs = np.frombuffer(done.stdout, count=m * nnz, offset=8 * m * nnz).reshape(m, nnz)
    out = np.frombuffer(done.stdout, offset=16 * m * nnz).reshape(d, k)
    want_rows, want_signs = REFERENCE_KERNELS.hashes(rs, d, nnz, start, start + m)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_array_equal(signs, want_signs)
    want = REFERENCE_KERNELS.sketch(rs, d, nnz, start, A, scale)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
