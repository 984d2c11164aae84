"""Which data the CuPy engine's kernels reach through the DLPack bridge (no GPU needed)."""

from __future__ import annotations

import pytest

import linalg
from linalg._core.dlpack import cupy_bridge
from linalg._core.namespace import ArrayKind


@pytest.mark.parametrize(
    "kind",
    [ArrayKind("numpy"), ArrayKind("torch"), ArrayKind("array-api"), ArrayKind("jax", "cuda")],
    ids=["numpy", "torch-cpu", "array-api", "jax-cuda"],
)
def test_only_cupy_and_torch_cuda_data_cross(kind):
    assert cupy_bridge(kind, "auto") is None


def test_cupy_data_needs_no_conversion():
    bridge = cupy_bridge(ArrayKind("cupy", "cuda:0"), None)
    assert bridge.kind == ArrayKind("cupy", "cuda:0")
    marker = object()
    assert bridge.to_cupy(marker) is marker and bridge.back(marker) is marker


@pytest.mark.parametrize("engine", ["reference", "numba"])
def test_a_demand_for_another_engine_gets_no_bridge(engine):
    assert cupy_bridge(ArrayKind("cupy", "cuda:0"), engine) is None
    assert cupy_bridge(ArrayKind("torch", "cuda:0"), engine) is None


def test_torch_cuda_without_cupy_computes_in_torch():
    if linalg.engines()["cupy"].usable:
        pytest.skip("CuPy is usable here: the bridge is tested by the gpu tests")
    assert cupy_bridge(ArrayKind("torch", "cuda:0"), "auto") is None
