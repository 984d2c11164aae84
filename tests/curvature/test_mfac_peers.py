"""The peers in asv_bench/benchmarks/curvature.py (M-FAC static and dynamic, the
refactorizing window, the floors) against dense float64 inverses, so that the
baselines the benchmarks compare with compute the same F⁻¹ v as linalg."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from conftest import RTOL

BENCHMARK = Path(__file__).resolve().parents[2] / "asv_bench" / "benchmarks" / "curvature.py"


def load_benchmark_module():
    spec = importlib.util.spec_from_file_location("curvature_benchmark_peers", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_benchmark_module()

# (dim, window, damping)
PROBLEMS = [(50, 8, 0.1), (120, 16, 1e-2), (300, 32, 0.5)]
WINDOW_IMPLS = sorted(bench.WINDOW_PEERS)


def exact_ihvp(G: np.ndarray, damping: float, v: np.ndarray) -> np.ndarray:
    """``(λ I + Gᵀ G / n)⁻¹ v`` from the explicit dense matrix, in float64."""
    G = G.astype(np.float64)
    F = damping * np.eye(G.shape[1]) + G.T @ G / G.shape[0]
    return np.linalg.solve(F, v.astype(np.float64))


def assert_close(actual: np.ndarray, expected: np.ndarray, dtype: np.dtype) -> None:
    assert actual.dtype == dtype
    error = np.linalg.norm(actual - expected) / np.linalg.norm(expected)
    assert error <= RTOL[dtype], error


@pytest.mark.parametrize(("dim", "m", "damping"), PROBLEMS)
def test_static_matches_dense_inverse(dim, m, damping, dtype, rng):
    G = rng.standard_normal((m, dim)).astype(dtype)
    G.setflags(write=False)
    before = G.copy()
    v = rng.standard_normal(dim).astype(dtype)
    ihvp = bench.MFACStatic(G, damping=damping)
    assert_close(ihvp.solve(v), exact_ihvp(G, damping, v), dtype)
    np.testing.assert_array_equal(G, before)


@pytest.mark.parametrize("impl", WINDOW_IMPLS)
@pytest.mark.parametrize(("dim", "window", "damping"), PROBLEMS)
def test_window_matches_dense_inverse(impl, dim, window, damping, dtype, rng):
    """While filling, once full, and after evictions (more than two laps of the ring)."""
    stream = rng.standard_normal((2 * window + 3, dim)).astype(dtype)
    v = rng.standard_normal(dim).astype(dtype)
    ihvp = bench.WINDOW_PEERS[impl](dim, window, damping=damping, dtype=dtype)
    checkpoints = {1, window // 2, window, window + 1, 2 * window + 3}
    for count, g in enumerate(stream, start=1):
        ihvp.push(g)
        if count in checkpoints:
            held = stream[max(0, count - window) : count]
            assert_close(ihvp.solve(v), exact_ihvp(held, damping, v), dtype)


@pytest.mark.parametrize("impl", WINDOW_IMPLS)
@pytest.mark.parametrize("prefill", [5, 16])
def test_prefilled_window_then_pushes(impl, prefill, dtype, rng):
    """``grads=`` fills the window at once (as the benchmarks do); pushes then evict
    the oldest of those first."""
    dim, window, damping = 80, 16, 0.05
    stream = rng.standard_normal((prefill + window + 4, dim)).astype(dtype)
    v = rng.standard_normal(dim).astype(dtype)
    ihvp = bench.WINDOW_PEERS[impl](
        dim, window, damping=damping, dtype=dtype, grads=stream[:prefill]
    )
    assert_close(ihvp.solve(v), exact_ihvp(stream[:prefill], damping, v), dtype)
    for count in range(prefill + 1, len(stream) + 1):
        ihvp.push(stream[count - 1])
        held = stream[max(0, count - window) : count]
        assert_close(ihvp.solve(v), exact_ihvp(held, damping, v), dtype)


def test_mfac_window_coefficients_give_the_static_vectors(rng):
    """The dynamic algorithm's coefficients B and pivots q are the static algorithm's
    ``vᵢ = Fᵢ₋₁⁻¹ gᵢ = Σⱼ Bᵢⱼ gⱼ`` and ``qᵢ = m + gᵢᵀ vᵢ``: the same recurrence."""
    G = rng.standard_normal((24, 200))
    static = bench.MFACStatic(G, damping=0.2)
    window = bench.MFACWindow(200, 24, damping=0.2, dtype=np.float64, grads=G)
    np.testing.assert_allclose(window.B @ G, static.V, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(window.q, static.q, rtol=1e-12)


def test_floors_do_the_work_they_stand_for(rng):
    G = rng.standard_normal((12, 90)).astype(np.float32)
    g, v = rng.standard_normal((2, 90)).astype(np.float32)
    gram = G.astype(np.float64) @ G.T.astype(np.float64)
    upper = bench.gram_syrk(G)
    assert upper.dtype == np.float32
    np.testing.assert_allclose(np.triu(upper), np.triu(gram), rtol=1e-5, atol=1e-4)
    expected = G.T.astype(np.float64) @ (G.astype(np.float64) @ v)
    np.testing.assert_allclose(bench.two_passes(G, v), expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(bench.three_passes(G, g, v), expected, rtol=1e-5, atol=1e-4)
