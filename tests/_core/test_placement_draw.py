"""``Placement.draw``: a random stream's numbers made where a placement's arrays live.

Every route (the host, a host draw moved with ``put``, a fill on a CUDA device by
the ``"cupy"`` or ``"numba-cuda"`` engine) must give the host draw's bits. The
default run covers the host and the ``put`` routes and which engine a placement
draws with; ``-m cudasim`` (``NUMBA_ENABLE_CUDASIM=1``) the numba-cuda fill under
the simulator; ``-m gpu`` CuPy arrays and torch CUDA tensors.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from linalg._core import engines, namespace
from linalg._core.namespace import HOST, Placement, draw_engine, namespace_of, placement_of
from linalg._core.random import RandomStream

KINDS = ["normal", "rademacher", "uniform"]
DTYPES = [np.float32, np.float64]
SHAPES = [(0,), (1,), (7,), (3, 5), (2, 3, 4)]
OFFSETS = [0, 11, 2**40 + 3]
STREAM = RandomStream(20261123, stream=5)


def _host_draw(kind, shape, dtype, offset):
    return getattr(STREAM, kind)(shape, dtype=dtype, offset=offset)


def _assert_same_bits(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(np.ascontiguousarray(got).view(np.uint8), want.view(np.uint8))


def _strict_placement() -> Placement:
    xp = pytest.importorskip("array_api_strict")
    return placement_of(xp.zeros(1))


def _torch_placement(device: str) -> Placement:
    torch = pytest.importorskip("torch")
    return Placement(namespace_of(torch.zeros(1)), torch.device(device))


def _usable_engines(monkeypatch, *usable: str) -> None:
    """Pretend exactly the engines ``usable`` can run here."""
    status = {
        name: engines.EngineStatus(name, name in usable, "test") for name in engines.ENGINE_NAMES
    }
    monkeypatch.setattr(engines, "_status", status.__getitem__)


# --- which engine draws -------------------------------------------------------


def test_host_data_is_drawn_by_the_reference_engine():
    assert draw_engine(HOST) == "reference"


@pytest.mark.parametrize("usable", [(), ("cupy", "numba-cuda")])
def test_data_without_a_cuda_fill_gets_a_host_draw(monkeypatch, usable):
    _usable_engines(monkeypatch, *usable)
    assert draw_engine(HOST) == "reference"
    assert draw_engine(_strict_placement()) == "reference"
    assert draw_engine(_torch_placement("cpu")) == "reference"  # torch CPU down the device path


@pytest.mark.parametrize(
    ("usable", "engine"),
    [
        (("cupy", "numba-cuda"), "cupy"),
        (("cupy",), "cupy"),
        (("numba-cuda",), "numba-cuda"),
        ((), "reference"),
    ],
)
def test_cuda_data_is_filled_by_the_first_usable_cuda_engine(monkeypatch, usable, engine):
    _usable_engines(monkeypatch, *usable)
    assert draw_engine(_torch_placement("cuda:0")) == engine
    # CuPy's namespace is recognized by its name; nothing of CuPy is needed to decide.
    cupy_like = Placement(types.ModuleType("cupy"), types.SimpleNamespace(id=0))
    assert draw_engine(cupy_like) == engine


# --- the host and put routes: the host draw's bits ------------------------------


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_host_draw_is_the_stream_draw(kind, dtype, shape, offset):
    got = HOST.draw(STREAM, kind, shape, dtype=dtype, offset=offset)
    assert isinstance(got, np.ndarray) and got.flags.c_contiguous
    _assert_same_bits(got, _host_draw(kind, shape, dtype, offset))


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_strict_draw_is_the_stream_draw(kind, dtype, shape, offset):
    place = _strict_placement()
    got = place.draw(STREAM, kind, shape, dtype=dtype, offset=offset)
    assert type(got).__module__.startswith("array_api_strict")
    assert got.dtype == place.dtype(dtype) and got.device == place.device
    _assert_same_bits(np.asarray(got), _host_draw(kind, shape, dtype, offset))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_torch_cpu_draw_is_the_stream_draw(kind, dtype):
    torch = pytest.importorskip("torch")
    got = _torch_placement("cpu").draw(STREAM, kind, (4, 6), dtype=dtype, offset=9)
    assert isinstance(got, torch.Tensor) and got.device.type == "cpu"
    _assert_same_bits(got.numpy(), _host_draw(kind, (4, 6), dtype, 9))


def test_a_bad_kind_is_refused_naming_it():
    with pytest.raises(ValueError, match="kind must be"):
        _strict_placement().draw(STREAM, "gaussian", (3,), dtype=np.float64)


# --- the numba-cuda fill under the CUDA simulator -------------------------------


@pytest.fixture
def simulated_cuda():
    pytest.importorskip("numba_cuda", reason="numba-cuda is not installed")
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA device, and NUMBA_ENABLE_CUDASIM is not 1")
    return cuda


@pytest.mark.cudasim
def test_cuda_data_is_filled_by_numba_cuda_without_cupy(simulated_cuda):
    engine = "cupy" if engines._status("cupy").usable else "numba-cuda"
    assert draw_engine(_torch_placement("cuda:0")) == engine


@pytest.mark.cudasim
@pytest.mark.parametrize("offset", [0, 2**40 + 3])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_numba_cuda_fill_route_gives_the_host_bits(
    simulated_cuda, monkeypatch, kind, dtype, offset
):
    # A stand-in library whose arrays are numba-cuda device arrays, drawn by that engine.
    library = types.SimpleNamespace(
        empty=lambda shape, dtype, device: simulated_cuda.device_array(shape, dtype=dtype),
        float32=np.dtype(np.float32),
        float64=np.dtype(np.float64),
    )
    monkeypatch.setattr(namespace, "draw_engine", lambda place: "numba-cuda")
    place = Placement(library, types.SimpleNamespace(index=0))
    got = place.draw(STREAM, kind, (5, 13), dtype=dtype, offset=offset)
    assert simulated_cuda.devicearray.is_cuda_ndarray(got)
    _assert_same_bits(got.copy_to_host(), _host_draw(kind, (5, 13), dtype, offset))


# --- CuPy arrays and torch CUDA tensors -------------------------------------------


@pytest.fixture(params=["cupy", "numba-cuda"])
def cuda_engine(request, cp, monkeypatch):
    """Each CUDA engine in turn (CuPy's is the one chosen where both are usable)."""
    if request.param == "numba-cuda":
        pytest.importorskip("numba_cuda")
        _usable_engines(monkeypatch, "numba-cuda")
    return request.param


@pytest.mark.gpu
@pytest.mark.parametrize("offset", [0, 2**32 - 7])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_cupy_draw_is_the_stream_draw(cp, cuda_engine, kind, dtype, offset):
    place = placement_of(cp.zeros(1))
    assert draw_engine(place) == cuda_engine
    got = place.draw(STREAM, kind, (33, 65), dtype=dtype, offset=offset)
    assert isinstance(got, cp.ndarray) and got.device == place.device
    _assert_same_bits(cp.asnumpy(got), _host_draw(kind, (33, 65), dtype, offset))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
def test_torch_cuda_draw_is_the_stream_draw(cp, cuda_engine, kind, dtype):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device here")
    place = placement_of(torch.zeros(1, device="cuda"))
    assert draw_engine(place) == cuda_engine
    got = place.draw(STREAM, kind, (17, 9), dtype=dtype, offset=2**33 + 1)
    assert isinstance(got, torch.Tensor) and got.device == place.device
    _assert_same_bits(got.cpu().numpy(), _host_draw(kind, (17, 9), dtype, 2**33 + 1))


@pytest.mark.gpu
def test_a_gaussian_sketch_of_cupy_data_is_the_host_sketch(cp):
    from linalg.sketch import gaussian

    A = np.random.default_rng(0).standard_normal((3000, 4))
    S = gaussian(40, 3000, rng=7)
    got = cp.asnumpy(S @ cp.asarray(A))
    np.testing.assert_allclose(got, S.todense() @ A, rtol=1e-10, atol=1e-12)
