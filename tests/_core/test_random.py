"""Tests for linalg._core.random: Philox known answers, NumPy/Numba bit-identity,
blocking invariance, accuracy of the log and inverse-normal, statistics, validation."""

import itertools

import numpy as np
import pytest

from linalg._core import random as ref
from linalg._core.random import RandomStream, as_random_stream

KINDS = ("uniform", "normal", "rademacher")
DTYPES = (np.float32, np.float64)
UINT = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def bits(x: np.ndarray) -> np.ndarray:
    return x.view(UINT[x.dtype])


def draw(rs: RandomStream, kind: str, shape, **kwargs) -> np.ndarray:
    return getattr(rs, kind)(shape, **kwargs)


@pytest.fixture(scope="module")
def numba_kernels():
    pytest.importorskip("numba")
    from linalg._core import _numba_random

    return _numba_random


@pytest.fixture(scope="module")
def numba_elementwise(numba_kernels):
    """The Numba scalar ``_log`` and ``_ppnd`` mapped over a float64 array."""
    import numba

    def elementwise(scalar):
        @numba.njit
        def apply(x):
            out = np.empty_like(x)
            for i in range(x.size):
                out[i] = scalar(x[i])
            return out

        return apply

    return {"log": elementwise(numba_kernels._log), "ppnd": elementwise(numba_kernels._ppnd)}


# --- Philox4x32-10 -------------------------------------------------------------

# Random123 kat_vectors: philox4x32 10 rounds, counter, key -> output.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (
        (0xFFFFFFFF,) * 4,
        (0xFFFFFFFF, 0xFFFFFFFF),
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_philox_known_answers(counter, key, expected):
    words = ref._philox4x32_10(*map(np.uint64, counter), *map(np.uint64, key))
    assert tuple(int(w) for w in words) == expected


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_philox_known_answers_vectorized(counter, key, expected):
    counter = [np.full(3, c, dtype=np.uint64) for c in counter]
    words = ref._philox4x32_10(*counter, *map(np.uint64, key))
    assert [w.tolist() for w in words] == [[e] * 3 for e in expected]


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_philox_known_answers_numba(numba_kernels, counter, key, expected):
    import numba

    philox = numba.njit(ref._philox4x32_10)
    words = philox(*map(np.uint64, counter), *map(np.uint64, key))
    assert tuple(int(w) for w in words) == expected


def test_element_uses_counter_index_and_stream():
    seed, stream, index = 0x0123456789ABCDEF, 0xFEDCBA9876543210, 2**40 + 17
    words = ref._philox4x32_10(
        *map(np.uint64, (index & 0xFFFFFFFF, index >> 32, stream & 0xFFFFFFFF, stream >> 32)),
        *map(np.uint64, (seed & 0xFFFFFFFF, seed >> 32)),
    )
    expected = ref._uniform_f64(words)
    assert RandomStream(seed, stream).uniform(1, offset=index)[0] == expected


# --- conversions -----------------------------------------------------------------


@pytest.mark.parametrize("word", [0, 0xFFFFFFFF])
def test_uniform_extremes_stay_inside_open_interval(word):
    words = (np.uint64(word),) * 4
    u64 = ref._uniform_f64(words)
    u32 = np.float32(ref._uniform_f32(words))
    assert 0.0 < u64 < 1.0
    assert np.float32(0) < u32 < np.float32(1)
    assert float(u32) == ref._uniform_f32(words)  # exact in float32
    assert ref._ppnd(np.array([u64]))[0] == pytest.approx(np.sign(u64 - 0.5) * 8.2095, abs=1e-4)


def test_uniform_grids():
    rs = RandomStream(11)
    u64 = rs.uniform(10_000)
    u32 = rs.uniform(10_000, dtype=np.float32)
    np.testing.assert_array_equal(np.mod(u64 * 2.0**53, 2.0), 1.0)
    np.testing.assert_array_equal(np.mod(u32.astype(np.float64) * 2.0**24, 2.0), 1.0)
    # float32 uniforms are the float64 ones at coarser resolution (same top bits of w0).
    np.testing.assert_array_less(np.abs(u64 - u32), 2.0**-23)


def test_log_within_one_ulp_of_numpy():
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            10.0 ** rng.uniform(-307, 307, 200_000),
            1.0 + rng.uniform(-1e-3, 1e-3, 20_000),
            1.0 + rng.uniform(-1e-12, 1e-12, 20_000),
            rng.uniform(0.0, 1.0, 200_000),
            2.0 ** np.arange(-1074.0, 1024.0),
            [np.finfo(np.float64).max, np.finfo(np.float64).tiny, 5e-324],
        ]
    )
    got, want = ref._log(x), np.log(x)
    assert np.all(got[want == 0.0] == 0.0)
    nonzero = want != 0.0
    ulps = np.abs(got - want)[nonzero] / np.spacing(np.abs(want[nonzero]))
    assert ulps.max() <= 1.0


def test_normal_matches_scipy_ndtri():
    special = pytest.importorskip("scipy.special")
    p = np.concatenate(
        [
            RandomStream(1).uniform(200_000),
            2.0**-53 * np.arange(1, 2001, 2),
            1.0 - 2.0**-53 * np.arange(1, 2001, 2),
            np.logspace(-300, -1, 3000),
            np.linspace(0.07, 0.08, 3001),  # around |p - 1/2| = 0.425
            [np.exp(-25.0), 0.5],  # around the r = 5 switch; the centre
        ]
    )
    got, want = ref._ppnd(p), special.ndtri(p)
    np.testing.assert_allclose(got, want, rtol=2e-15, atol=0)


def test_normal_is_odd_on_the_uniform_grid():
    u = RandomStream(4).uniform(100_000)  # 1 - u is exact and on the grid
    np.testing.assert_array_equal(ref._ppnd(1.0 - u), -ref._ppnd(u))


# --- NumPy vs Numba: the same bits ------------------------------------------------

CASES = [
    (0, 0, 0),
    (1, 0, 2**32 - 1000),  # crosses into the counter's high word
    (2**64 - 1, 2**64 - 1, 2**64 - 3000),  # the very end of the stream
    (0x9E3779B97F4A7C15, 7, 5 * 2**32 + 12345),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("seed", "stream", "offset"), CASES)
def test_numba_bit_identical(numba_kernels, kind, dtype, seed, stream, offset):
    rs = RandomStream(seed, stream)
    a = draw(rs, kind, (50, 60), dtype=dtype, offset=offset)
    b = draw(rs, kind, (50, 60), dtype=dtype, offset=offset, engine="numba")
    assert a.dtype == b.dtype == dtype and a.shape == b.shape == (50, 60)
    np.testing.assert_array_equal(bits(a), bits(b))


def test_numba_log_bit_identical(numba_elementwise):
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [10.0 ** rng.uniform(-307, 307, 100_000), 2.0 ** np.arange(-1074.0, 1024.0), [5e-324]]
    )
    np.testing.assert_array_equal(bits(ref._log(x)), bits(numba_elementwise["log"](x)))


def test_numba_ppnd_bit_identical_in_all_branches(numba_elementwise):
    p = np.concatenate(
        [
            RandomStream(2).uniform(50_000),
            np.logspace(-300, np.log10(0.5), 5000),
            1.0 - np.logspace(-16, np.log10(0.5), 5000),
            [2.0**-53, 1.0 - 2.0**-53, 0.075, 0.925, np.exp(-25.0), 0.5],
        ]
    )
    np.testing.assert_array_equal(bits(ref._ppnd(p)), bits(numba_elementwise["ppnd"](p)))


# --- blocking ------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["reference", "numba"])
@pytest.mark.parametrize("kind", KINDS)
def test_blocks_equal_one_long_draw(engine, kind):
    if engine == "numba":
        pytest.importorskip("numba")
    rs = RandomStream(2024, stream=3)
    whole = draw(rs, kind, 1000, engine=engine)
    edges = (0, 137, 600, 1000)
    parts = [
        draw(rs, kind, stop - start, offset=start, engine=engine)
        for start, stop in itertools.pairwise(edges)
    ]
    np.testing.assert_array_equal(bits(np.concatenate(parts)), bits(whole))
    np.testing.assert_array_equal(
        bits(draw(rs, kind, (25, 40), engine=engine)), bits(whole.reshape(25, 40))
    )
    np.testing.assert_array_equal(
        bits(draw(rs, kind, (2, 5, 10), offset=300, engine=engine)),
        bits(whole[300:400].reshape(2, 5, 10)),
    )


def test_reference_chunks_are_invisible(monkeypatch):
    rs = RandomStream(5)
    want = rs.normal(1000, offset=2**32 - 300)
    monkeypatch.setattr(ref, "_CHUNK", 64)
    np.testing.assert_array_equal(bits(rs.normal(1000, offset=2**32 - 300)), bits(want))


@pytest.mark.parametrize("shape", [0, (0,), (3, 0), ()])
def test_empty_and_scalar_shapes(shape):
    out = RandomStream(0).uniform(shape)
    assert out.shape == np.empty(shape).shape


# --- statistics ------------------------------------------------------------------------


def test_uniform_statistics():
    u = RandomStream(7).uniform(10**6)
    assert u.min() > 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 2e-3
    assert abs(u.var() - 1.0 / 12.0) < 1e-3
    counts = np.bincount((u * 10).astype(int), minlength=10)
    assert np.all(np.abs(counts - 10**5) < 2000)  # about 6 standard deviations


def test_normal_statistics():
    x = RandomStream(8).normal(10**6)
    assert abs(x.mean()) < 5e-3
    assert abs(x.var() - 1.0) < 1e-2
    assert abs(np.mean(x**3)) < 2e-2
    assert abs(np.mean(x**4) - 3.0) < 5e-2
    assert abs(np.mean(np.abs(x) < 1.0) - 0.6826894921370859) < 3e-3


def test_normal_float32_is_rounded_float64():
    rs = RandomStream(9)
    np.testing.assert_array_equal(
        rs.normal(5000, dtype=np.float32), rs.normal(5000).astype(np.float32)
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_rademacher_statistics(dtype):
    s = RandomStream(10).rademacher(10**5, dtype=dtype)
    assert s.dtype == dtype
    assert set(np.unique(s).tolist()) == {-1.0, 1.0}
    assert abs(s.mean()) < 0.02  # 6 standard deviations


def test_seeds_and_streams_differ():
    draws = [
        RandomStream(seed, stream).uniform(100)
        for seed, stream in [(0, 0), (1, 0), (0, 1), (2**32, 0), (0, 2**32)]
    ]
    for i, a in enumerate(draws):
        for b in draws[i + 1 :]:
            assert not np.any(a == b)


# --- spawn and as_random_stream -------------------------------------------------------------


def test_spawn_is_deterministic_and_distinct():
    parent = RandomStream(42, stream=9)
    children = parent.spawn(5)
    assert [c.stream for c in children] == [c.stream for c in parent.spawn(5)]
    assert [c.stream for c in parent.spawn(3)] == [c.stream for c in children[:3]]
    assert all(c.seed == 42 for c in children)
    assert len({c.stream for c in children} | {parent.stream}) == 6
    grandchildren = children[0].spawn(5)
    assert not {c.stream for c in grandchildren} & {c.stream for c in children}
    assert RandomStream(42, stream=10).spawn(1)[0].stream != children[0].stream
    assert parent.spawn(0) == []


def test_as_random_stream():
    rs = RandomStream(1, 2)
    assert as_random_stream(rs) is rs
    from_int = as_random_stream(np.int64(17))
    assert (from_int.seed, from_int.stream) == (17, 0)
    gen = np.random.default_rng(3)
    seed = int(np.random.default_rng(3).integers(2**64, dtype=np.uint64))
    assert as_random_stream(gen).seed == seed
    assert as_random_stream(gen).seed != seed  # the generator advanced
    assert isinstance(as_random_stream(None), RandomStream)
    assert as_random_stream(None).seed != as_random_stream(None).seed


@pytest.mark.parametrize("bad", [1.5, "3", True, [1], np.random.RandomState(0)])
def test_as_random_stream_rejects(bad):
    with pytest.raises(TypeError, match="rng must be None, an int"):
        as_random_stream(bad)


def test_repr_and_read_only_properties():
    rs = RandomStream(3, 4)
    assert repr(rs) == "RandomStream(seed=3, stream=4)"
    with pytest.raises(AttributeError):
        rs.seed = 5


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**64}, ValueError, "seed"),
        ({"seed": 1.0}, TypeError, "seed"),
        ({"seed": True}, TypeError, "seed"),
        ({"seed": 0, "stream": -1}, ValueError, "stream"),
        ({"seed": 0, "stream": 2**64}, ValueError, "stream"),
        ({"seed": 0, "stream": "1"}, TypeError, "stream"),
    ],
)
def test_constructor_validation(kwargs, error, name):
    with pytest.raises(error, match=name):
        RandomStream(**kwargs)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("args", "kwargs", "error", "name"),
    [
        ((-1,), {}, ValueError, "shape"),
        (((3, -2),), {}, ValueError, "shape"),
        ((2.5,), {}, TypeError, "shape"),
        (((2, None),), {}, TypeError, "shape"),
        ((3,), {"dtype": np.int64}, TypeError, "dtype"),
        ((3,), {"dtype": np.complex128}, TypeError, "dtype"),
        ((3,), {"dtype": "not a dtype"}, TypeError, "dtype"),
        ((3,), {"offset": -1}, ValueError, "offset"),
        ((3,), {"offset": 1.0}, TypeError, "offset"),
        ((3,), {"offset": 2**64 - 2}, ValueError, "offset"),
        ((3,), {"engine": "CuPy"}, ValueError, "engine"),
        ((3,), {"engine": None}, ValueError, "engine"),
    ],
)
def test_draw_validation(kind, args, kwargs, error, name):
    with pytest.raises(error, match=name):
        draw(RandomStream(0), kind, *args, **kwargs)


@pytest.mark.parametrize("engine", ["cupy", "numba-cuda"])
def test_device_engines_say_why_they_cannot_run(engine, monkeypatch):
    """Without CuPy (or a CUDA device) a device draw says why, never a raw CUDA error."""
    import linalg

    status = linalg.engines()[engine]
    if status.usable:
        pytest.skip(f"engine {engine!r} is usable here")
    with pytest.raises(RuntimeError, match=f"engine '{engine}' is not usable here") as caught:
        RandomStream(0).normal(3, engine=engine)
    assert status.reason in str(caught.value)
    with pytest.raises(RuntimeError, match="not usable here"):
        RandomStream(0).fill(np.empty(3), "normal", engine=engine)


def test_last_elements_of_the_stream_are_reachable():
    assert RandomStream(0).uniform(3, offset=2**64 - 3).shape == (3,)


@pytest.mark.parametrize("n", [-1, 1.5])
def test_spawn_validation(n):
    with pytest.raises((TypeError, ValueError), match="n must"):
        RandomStream(0).spawn(n)


@pytest.mark.parametrize("kind", ["uniform", "normal", "rademacher"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fill_equals_a_fresh_draw(kind, dtype, engine):
    rs = RandomStream(11, stream=3)
    out = np.full((5, 7), np.nan, dtype=dtype)
    assert rs.fill(out, kind, offset=123, engine=engine) is out
    draw = getattr(rs, kind)((5, 7), dtype=dtype, offset=123, engine="reference")
    np.testing.assert_array_equal(out, draw)


def test_fill_rejects_bad_buffers():
    rs = RandomStream(0)
    with pytest.raises(TypeError, match="C-contiguous"):
        rs.fill(np.empty((4, 4))[:, ::2], "normal")
    frozen = np.empty(3)
    frozen.flags.writeable = False
    with pytest.raises(TypeError, match="writeable"):
        rs.fill(frozen, "normal")
    with pytest.raises(ValueError, match="kind must be"):
        rs.fill(np.empty(3), "gamma")
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        rs.fill(np.empty(3, dtype=np.int64), "normal")
