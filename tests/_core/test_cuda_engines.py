"""GPU engines on a machine without one: clear errors, and "auto" never picks them.

The probes are steered with fakes (CuPy missing, CuPy without a device,
numba-cuda without a device), so these tests mean the same on any machine.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

import numpy as np
import pytest

import linalg
from linalg._core import engines
from linalg._core.cuda_sources import load_module
from linalg._core.engines import register, require_usable, select
from linalg._core.namespace import NUMPY, ArrayKind

CUPY_DATA = ArrayKind("cupy", "cuda:0")
TORCH_CUDA = ArrayKind("torch", "cuda:0")

register("tests.host_only", "reference", "numpy:add")
register("tests.gpu_op", "reference", "numpy:add")
register("tests.gpu_op", "cupy", "numpy:subtract", libraries=("cupy", "torch"))
register("tests.gpu_op", "numba-cuda", "numpy:multiply", libraries=("cupy", "torch"))


class _NoDevice(RuntimeError):
    pass


def _fake_cupy() -> types.ModuleType:
    """A CuPy whose runtime fails as it does on a machine without a driver."""

    def get_device_count():
        raise _NoDevice("cudaErrorNoDevice: no CUDA-capable device is detected")

    cupy = types.ModuleType("cupy")
    cupy.__version__ = "0.0-fake"
    cupy.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=get_device_count)
    )
    return cupy


def _fake_numba_cuda() -> types.ModuleType:
    cuda = types.ModuleType("numba.cuda")
    cuda.is_available = lambda: False
    return cuda


@pytest.fixture
def probe(monkeypatch):
    """Set which optional libraries the probes find; the status cache is cleared around."""
    real_find_spec = importlib.util.find_spec

    def steer(*, cupy: types.ModuleType | None, numba_cuda: types.ModuleType | None) -> None:
        found = {"cupy": cupy, "numba_cuda": numba_cuda}

        def find_spec(name, *args, **kwargs):
            if name in found:
                module = found[name]
                return None if module is None else importlib.machinery.ModuleSpec(name, None)
            return real_find_spec(name, *args, **kwargs)

        monkeypatch.setattr(engines.importlib.util, "find_spec", find_spec)
        if cupy is not None:
            monkeypatch.setitem(sys.modules, "cupy", cupy)
        if numba_cuda is not None:
            numba = types.ModuleType("numba")
            numba.__spec__ = importlib.machinery.ModuleSpec("numba", None)
            numba.__version__ = "0.0-fake"
            numba.cuda = numba_cuda
            monkeypatch.setitem(sys.modules, "numba", numba)
            monkeypatch.setitem(sys.modules, "numba.cuda", numba_cuda)
        engines._status.cache_clear()

    yield steer
    engines._status.cache_clear()


def test_cupy_not_installed_is_reported_with_the_install_command(probe):
    probe(cupy=None, numba_cuda=None)
    status = linalg.engines()["cupy"]
    assert not status.usable
    assert "CuPy is not installed" in status.reason
    assert "pip install 'linalg-backend[cuda12]'" in status.reason
    with pytest.raises(RuntimeError, match=r"engine 'cupy' is not usable here: CuPy is not"):
        require_usable("cupy")


def test_cupy_without_a_device_is_reported_not_raised(probe):
    probe(cupy=_fake_cupy(), numba_cuda=None)
    status = linalg.engines()["cupy"]
    assert not status.usable
    assert status.reason.startswith("no CUDA device or driver: cudaErrorNoDevice")


def test_numba_cuda_missing_or_without_a_device(probe):
    probe(cupy=None, numba_cuda=None)
    assert "numba-cuda is not installed" in linalg.engines()["numba-cuda"].reason
    probe(cupy=None, numba_cuda=_fake_numba_cuda())
    status = linalg.engines()["numba-cuda"]
    assert not status.usable
    assert status.reason == "no CUDA device or driver"


@pytest.mark.parametrize("engine", ["cupy", "numba-cuda"])
@pytest.mark.parametrize("kind", [CUPY_DATA, TORCH_CUDA], ids=str)
def test_a_demanded_gpu_engine_says_why_it_cannot_run(probe, engine, kind):
    probe(cupy=_fake_cupy(), numba_cuda=_fake_numba_cuda())
    with pytest.raises(RuntimeError, match=rf"engine '{engine}' is not usable here: no CUDA"):
        select("tests.gpu_op", engine=engine, kind=kind, dtype=np.float32)


@pytest.mark.parametrize("engine", ["cupy", "numba-cuda"])
def test_a_preferred_gpu_engine_says_why_it_cannot_run(probe, engine):
    probe(cupy=None, numba_cuda=None)
    with (
        linalg.config_context(engine=engine),
        pytest.raises(RuntimeError, match=rf"engine '{engine}' is not usable here"),
    ):
        select("tests.gpu_op", engine=None, kind=CUPY_DATA, dtype=np.float64)


@pytest.mark.parametrize("kind", [CUPY_DATA, TORCH_CUDA], ids=str)
def test_auto_never_picks_a_gpu_engine_without_a_device(probe, kind):
    probe(cupy=_fake_cupy(), numba_cuda=_fake_numba_cuda())
    with pytest.raises(TypeError) as info:
        select("tests.gpu_op", engine=None, kind=kind, dtype=np.float64)
    message = str(info.value)
    assert "move the data to the host" in message
    assert "engine 'cupy' is not usable here: no CUDA device or driver" in message
    assert "engine 'numba-cuda' is not usable here: no CUDA device or driver" in message


def test_auto_on_the_host_is_untouched_by_gpu_engines(probe):
    probe(cupy=_fake_cupy(), numba_cuda=_fake_numba_cuda())
    assert select("tests.gpu_op", engine=None, kind=NUMPY, dtype=np.float64).engine == ("reference")


@pytest.mark.parametrize("cupy", [None, "fake"])
def test_a_gpu_engine_refuses_host_data_and_says_why_it_could_not_run(probe, cupy):
    probe(cupy=_fake_cupy() if cupy else None, numba_cuda=None)
    reason = "no CUDA device or driver" if cupy else "CuPy is not installed"
    with pytest.raises(TypeError) as info:
        select("tests.gpu_op", engine="cupy", kind=NUMPY, dtype=np.float64)
    assert "engine 'cupy' cannot take numpy arrays on cpu" in str(info.value)
    assert f"engine 'cupy' is not usable here: {reason}" in str(info.value)
    with pytest.raises(TypeError, match=f"has no implementation of tests.host_only.*{reason}"):
        select("tests.host_only", engine="cupy", kind=NUMPY, dtype=np.float64)


@pytest.mark.parametrize("cupy", [None, "fake"])
def test_loading_a_kernel_module_without_cupy_or_a_device_says_why(probe, cupy):
    probe(cupy=_fake_cupy() if cupy else None, numba_cuda=None)
    reason = "no CUDA device or driver" if cupy else "CuPy is not installed"
    with pytest.raises(RuntimeError, match=f"engine 'cupy' is not usable here: {reason}"):
        load_module("sketch")


def test_a_real_cupy_without_a_device():
    """Where CuPy is installed but no GPU is: its own error becomes the reason."""
    if importlib.util.find_spec("cupy") is None:
        pytest.skip("CuPy is not installed")
    engines._status.cache_clear()
    try:
        status = linalg.engines()["cupy"]
        if status.usable:
            pytest.skip("a CUDA device is present")
        assert status.reason.startswith("no CUDA device")
        with pytest.raises(RuntimeError, match="engine 'cupy' is not usable here: no CUDA"):
            load_module("random")
    finally:
        engines._status.cache_clear()
