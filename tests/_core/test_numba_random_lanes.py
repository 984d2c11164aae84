"""The lane-vectorized Numba stream kernels give the reference's bits: every transform and
dtype, block and task edges, offsets across the counter's words, serial and threaded builds,
the tail gathering of AS241 (the far tail included), the bit-cast logarithm, and
``philox_lanes`` (shared with the sparse sketches)."""

import itertools

import numpy as np
import pytest

from linalg._core import random as ref
from linalg._core.random import RandomStream

numba = pytest.importorskip("numba")
nr = pytest.importorskip("linalg._core._numba_random")

KINDS = [
    ("uniform64", np.float64),
    ("uniform32", np.float32),
    ("normal", np.float64),
    ("normal", np.float32),
    ("rademacher", np.float64),
    ("rademacher", np.float32),
]
UINT = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}
# Sizes around the SIMD width, the normal block (512) and the parallel task (2**14).
SIZES = [1, 3, 7, 8, 9, 17, 511, 512, 513, 1000, 2**14 - 1, 2**14 + 5]
OFFSETS = [0, 5, 2**32 - 700, 2**33 + 1, 2**64 - 2**14 - 5]
KEYS = [(0, 0), (0x9E3779B97F4A7C15, 7), (2**64 - 1, 2**64 - 1)]


def bits(x: np.ndarray) -> np.ndarray:
    return x.view(UINT[x.dtype])


def words(value: int) -> tuple[np.uint64, np.uint64]:
    return ref._split(value)


def reference(kind: str, dtype, size: int, seed: int, stream: int, offset: int) -> np.ndarray:
    out = np.empty(size, dtype=dtype)
    ref._fill_reference(kind, out, words(seed), words(stream), offset)
    return out


def numba_build(build: str, kind: str, dtype, size: int, seed: int, stream: int, offset: int):
    out = np.full(size, np.nan, dtype=dtype)
    kernel = getattr(nr._fill, build)
    kernel(out, nr._KINDS[kind], *words(seed), *words(stream), np.uint64(offset))
    return out


@pytest.mark.parametrize(("kind", "dtype"), KINDS)
@pytest.mark.parametrize("build", ["serial", "threaded"])
def test_both_builds_match_reference_at_block_edges(kind, dtype, build):
    for size in SIZES:
        for offset in OFFSETS:
            seed, stream = KEYS[(size + offset) % len(KEYS)]
            want = reference(kind, dtype, size, seed, stream, offset)
            got = numba_build(build, kind, dtype, size, seed, stream, offset)
            assert got.dtype == dtype
            np.testing.assert_array_equal(bits(got), bits(want), err_msg=f"{size=} {offset=}")


@pytest.mark.parametrize(("kind", "dtype"), KINDS)
@pytest.mark.parametrize(("seed", "stream"), KEYS)
def test_public_draw_takes_threaded_path_and_matches(kind, dtype, seed, stream):
    rs = RandomStream(seed, stream)
    size = 2**15 + 1234  # at or above THREADED_ROWS: the threaded build
    draw = rs.uniform if kind.startswith("uniform") else getattr(rs, kind)
    offset = 2**32 - 2**14
    want = draw(size, dtype=dtype, offset=offset)
    got = draw(size, dtype=dtype, offset=offset, engine="numba")
    np.testing.assert_array_equal(bits(got), bits(want))


def test_splitting_a_draw_is_invisible():
    rs = RandomStream(77, stream=5)
    whole = rs.normal(40_000, engine="numba")
    edges = [0, 1, 8, 513, 2**14 + 3, 2**15 + 9, 40_000]
    parts = [rs.normal(b - a, offset=a, engine="numba") for a, b in itertools.pairwise(edges)]
    np.testing.assert_array_equal(bits(np.concatenate(parts)), bits(whole))


def test_normal_is_inverse_cdf_of_uniform_with_tails_in_the_lanes():
    rs = RandomStream(3)
    u = rs.uniform(2**15 + 11, engine="numba")
    x = rs.normal(2**15 + 11, engine="numba")
    assert 0.14 < np.mean(np.abs(u - 0.5) > ref._CENTRAL_LIMIT) < 0.16
    np.testing.assert_array_equal(bits(x), bits(ref._ppnd(u)))


# --- the AS241 lanes on chosen p, the far tail included ------------------------------------


def ppnd_lanes(p: np.ndarray, dtype=np.float64) -> np.ndarray:
    out = np.full(p.size, np.nan, dtype=dtype)
    scratch = [np.empty(p.size, dtype=np.int64), np.empty(p.size), np.empty(p.size)]
    nr._ppnd_lanes(p, out, *scratch)
    return out


def chosen_p() -> np.ndarray:
    grid = 2.0**-53 * (2 * np.arange(1, 4001) + 1)  # the smallest uniforms of the stream
    return np.concatenate(
        [
            grid,
            1.0 - grid,
            [2.0**-53, 1.0 - 2.0**-53, 0.075, 0.925, 0.5, np.nextafter(0.075, 1.0)],
            np.exp(-25.0) * np.array([0.999999, 1.0, 1.000001]),  # the r = 5 switch
            np.logspace(-300, np.log10(0.5), 3001),
            1.0 - np.logspace(-16, np.log10(0.5), 3001),
            RandomStream(4).uniform(5003),
        ]
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ppnd_lanes_bit_identical_in_every_branch(dtype):
    p = chosen_p()
    rng = np.random.default_rng(0)
    p = p[rng.permutation(p.size)]  # tails and centre interleaved in the lanes
    p_before = p.copy()
    got = ppnd_lanes(p, dtype)
    np.testing.assert_array_equal(p, p_before)  # the input is not modified
    want = ref._ppnd(p).astype(dtype)
    np.testing.assert_array_equal(bits(got), bits(want))
    assert (np.minimum(p, 1.0 - p) < np.exp(-25.0)).sum() > 100  # the far tail: r > 5


@pytest.mark.parametrize("size", [1, 2, 7, 8, 9, 63, 64, 65])
def test_ppnd_lanes_all_tail_or_all_central(size):
    tails = np.linspace(1e-20, 0.07, size)
    central = np.linspace(0.08, 0.92, size)
    for p in (tails, 1.0 - tails, central):
        np.testing.assert_array_equal(bits(ppnd_lanes(p)), bits(ref._ppnd(p)))


def test_bit_cast_log_matches_reference_on_normal_numbers():
    @numba.njit
    def log_all(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = nr._log_normal(x[i])
        return out

    rng = np.random.default_rng(1)
    x = np.concatenate(
        [
            10.0 ** rng.uniform(-307, 307, 50_000),
            2.0 ** np.arange(-1022.0, 1024.0),
            np.nextafter(ref._SQRT_HALF * 2.0 ** np.arange(-60.0, 60.0), 0.0),
            ref._SQRT_HALF * 2.0 ** np.arange(-60.0, 60.0),
            [np.finfo(np.float64).tiny, np.finfo(np.float64).max, 2.0**-53, 1.0 - 2.0**-53],
        ]
    )
    np.testing.assert_array_equal(bits(log_all(x)), bits(ref._log(x)))


# --- philox_lanes (the sparse sketches' words) -----------------------------------------------


@pytest.mark.parametrize(
    ("first", "first_type"),
    [(0, np.int64), (2**32 - 37, np.int64), (2**32 - 37, np.uint64), (2**64 - 100, np.uint64)],
)
def test_philox_lanes_match_reference_words(first, first_type):
    m = 99
    key, stream = words(0xDEADBEEF12345678), words(2**40 + 3)
    out = np.zeros((4, m + 5), dtype=np.uint64)
    nr.philox_lanes(out, m, first_type(first), *key, *stream)
    index = np.uint64(first) + np.arange(m, dtype=np.uint64)
    want = ref._philox4x32_10(index & ref._MASK32, index >> ref._SHIFT32, *stream, *key)
    np.testing.assert_array_equal(out[:, :m], np.array(want))
    np.testing.assert_array_equal(out[:, m:], 0)  # nothing written beyond m


def test_philox_lanes_known_answer():
    # Random123 kat_vectors, philox4x32 10 rounds: counter (2**32 - 1, 2**32 - 1, ...).
    out = np.zeros((4, 1), dtype=np.uint64)
    nr.philox_lanes(out, 1, np.uint64(2**64 - 1), *words(2**64 - 1), *words(2**64 - 1))
    assert out[:, 0].tolist() == [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]
