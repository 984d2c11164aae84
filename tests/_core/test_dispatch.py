"""Engine registry, engine choice and configuration."""

import threading

import numpy as np
import pytest

import linalg
from linalg._core.engines import ANY_ARRAY_LIBRARY, ENGINE_NAMES, register, select
from linalg._core.namespace import NUMPY, ArrayKind

from conftest import HAVE_NUMBA

register("tests.double", "reference", "numpy:add")
register("tests.double", "numba", "numpy:multiply")
register("tests.reference_only", "reference", "numpy:add")
register("tests.any_library", "reference", "numpy:add", libraries=ANY_ARRAY_LIBRARY)


def test_engines_report_every_engine_with_a_reason():
    status = linalg.engines()
    assert set(status) == set(ENGINE_NAMES)
    assert status["reference"].usable
    for item in status.values():
        assert item.reason
        assert item.name in str(item)
    assert status["numba"].usable == HAVE_NUMBA


def test_explicit_engine_wins():
    impl = select("tests.double", engine="reference", kind=NUMPY, dtype=np.float64)
    assert impl.engine == "reference"
    assert impl.load() is np.add


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
def test_auto_prefers_numba_on_the_host():
    impl = select("tests.double", engine=None, kind=NUMPY, dtype=np.float64)
    assert impl.engine == "numba"


def test_context_beats_environment_and_auto(monkeypatch):
    monkeypatch.setenv("LINALG_ENGINE", "numba")
    with linalg.config_context(engine="reference"):
        assert select("tests.double", engine=None, kind=NUMPY, dtype="float64").engine == (
            "reference"
        )
        assert linalg.get_config()["engine"] == "reference"
    assert linalg.get_config()["engine"] is None


def test_environment_variable_is_read(monkeypatch):
    monkeypatch.setenv("LINALG_ENGINE", "reference")
    assert select("tests.double", engine=None, kind=NUMPY, dtype="float64").engine == "reference"
    monkeypatch.setenv("LINALG_ENGINE", "fortran")
    with pytest.raises(ValueError, match="LINALG_ENGINE"):
        select("tests.double", engine=None, kind=NUMPY, dtype="float64")


def test_a_preference_falls_back_where_the_engine_has_no_implementation():
    with linalg.config_context(engine="numba"):
        impl = select("tests.reference_only", engine=None, kind=NUMPY, dtype="float64")
    assert impl.engine == "reference"


def test_a_demand_does_not_fall_back():
    with pytest.raises(TypeError, match="engine 'numba' has no implementation"):
        select("tests.reference_only", engine="numba", kind=NUMPY, dtype="float64")


def test_unknown_engine_names_the_argument():
    with pytest.raises(ValueError, match="engine must be"):
        select("tests.double", engine="fortran", kind=NUMPY, dtype="float64")
    with pytest.raises(ValueError, match="engine must be"), linalg.config_context(engine="gpu"):
        pass


def test_device_data_is_refused_with_a_remedy():
    cuda = ArrayKind("cupy", "cuda:0")
    with pytest.raises(TypeError, match="move the data to the host"):
        select("tests.double", engine=None, kind=cuda, dtype="float64")
    with pytest.raises(TypeError, match="cannot take cupy arrays on cuda:0"):
        select("tests.double", engine="reference", kind=cuda, dtype="float64")


def test_off_the_host_auto_falls_back_to_array_api_reference_kernels():
    for kind in (ArrayKind("cupy", "cuda:0"), ArrayKind("torch", "cuda:1"), ArrayKind("array-api")):
        impl = select("tests.any_library", engine=None, kind=kind, dtype="float32")
        assert impl.engine == "reference"
    with pytest.raises(TypeError, match="has no implementation"):
        select(
            "tests.any_library", engine="cupy", kind=ArrayKind("cupy", "cuda:0"), dtype="float32"
        )


def test_unsupported_dtype_is_refused():
    with pytest.raises(TypeError, match="float16"):
        select("tests.double", engine="reference", kind=NUMPY, dtype=np.float16)


def test_config_is_per_thread():
    seen = {}

    def worker():
        seen["engine"] = linalg.get_config()["engine"]

    with linalg.config_context(engine="reference"):
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    assert seen["engine"] is None
