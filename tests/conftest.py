"""Fixtures shared by every family's tests: engines, dtypes, tolerances, problems."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
CPU_ENGINES = [
    "reference",
    pytest.param(
        "numba", marks=pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
    ),
]

# Relative tolerances keyed by dtype, for answers compared with an exact solve.
RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


@pytest.fixture(params=CPU_ENGINES)
def engine(request) -> str:
    """Every CPU engine usable here."""
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request) -> np.dtype:
    return np.dtype(request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)


def poisson2d(n: int, dtype=np.float64) -> sp.csr_array:
    """The 5-point Laplacian on an n x n grid (Dirichlet), SPD, as CSR."""
    T = sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(n, n), dtype=dtype)
    eye = sp.eye_array(n, dtype=dtype)
    return (sp.kron(T, eye) + sp.kron(eye, T)).tocsr()


def spd_matrix(rng: np.random.Generator, n: int, cond: float = 100.0) -> np.ndarray:
    """A dense SPD matrix with eigenvalues spread geometrically over [1, cond]."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.geomspace(1.0, cond, n)) @ Q.T


@pytest.fixture(scope="module")
def dask_client():
    """A 2-process dask LocalCluster on loopback (one thread each), once per test module."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def largest_task_output(dask_client):
    """``measure(run)``: bytes of the largest result of any task that ``run()`` ran on
    the cluster (every chunk of data a task received was such a result)."""
    distributed = pytest.importorskip("distributed")

    def measure(run) -> int:
        with distributed.get_task_stream(dask_client) as stream:
            run()
        return max(entry.get("nbytes", 0) for entry in stream.data)

    return measure


@pytest.fixture(scope="module")
def cp():
    """CuPy, when it is installed and a CUDA device is usable (``gpu`` tests)."""
    cupy = pytest.importorskip("cupy")
    import linalg

    status = linalg.engines()["cupy"]
    if not status.usable:
        pytest.skip(status.reason)
    return cupy


def _strict_namespace():
    return pytest.importorskip("array_api_strict")


def _torch_cuda_namespace():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device here")
    return torch


def _torch_cpu_through_the_namespace(monkeypatch):
    """torch CPU tensors sent down the device paths, as torch CUDA tensors are: the
    routines compute through torch's namespace, so torch's semantics (promotion,
    indexing, linalg) are tested without a GPU."""
    torch = pytest.importorskip("torch")
    from linalg._core.namespace import ArrayKind

    host = ArrayKind.on_host.fget
    monkeypatch.setattr(
        ArrayKind, "on_host", property(lambda kind: kind.library != "torch" and host(kind))
    )
    return torch.as_tensor, lambda x: x.detach().numpy()


NAMESPACES = [
    "array_api_strict",
    "torch_cpu",
    pytest.param("cupy", marks=pytest.mark.gpu),
    pytest.param("torch_cuda", marks=pytest.mark.gpu),
]


@pytest.fixture(params=NAMESPACES)
def namespace(request):
    """``(to_array, to_numpy)`` for a library that routines compute on through its
    array-API namespace: array_api_strict (a strict CPU stand-in for a device
    library) and torch CPU tensors routed down the device paths (torch's own
    semantics), in the default run; CuPy and torch CUDA tensors (``gpu``)."""
    if request.param == "array_api_strict":
        xp = _strict_namespace()
        return xp.asarray, np.asarray
    if request.param == "torch_cpu":
        return _torch_cpu_through_the_namespace(request.getfixturevalue("monkeypatch"))
    if request.param == "cupy":
        cupy = request.getfixturevalue("cp")
        return cupy.asarray, cupy.asnumpy
    torch = _torch_cuda_namespace()
    return (
        lambda x: torch.as_tensor(x, device="cuda"),
        lambda x: x.detach().cpu().numpy(),
    )
