"""DenseIHVP, SlidingWindowIHVP and Woodbury solves on arrays of their own array-API namespace.

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. Every method is
compared with the NumPy path (1e-10 in float64, 1e-4 in float32) and, through
it, with the explicit Fisher.
"""

from __future__ import annotations

import numpy as np
import pytest

from linalg._core.results import LinAlgError
from linalg.curvature import DenseIHVP, SlidingWindowIHVP, woodbury, woodbury_solve

from conftest import RTOL


def close(got: np.ndarray, expected: np.ndarray, dtype) -> bool:
    return np.abs(got - expected).max() <= RTOL[np.dtype(dtype)] * np.abs(expected).max()


@pytest.mark.parametrize("block_size", [None, 10, 12], ids=["whole", "divides", "remainder"])
@pytest.mark.parametrize("scale", ["mean", "sum"])
def test_equals_numpy_path(namespace, rng, dtype, block_size, scale):
    to_array, to_numpy = namespace
    G = rng.standard_normal((6, 50)).astype(dtype)
    V = rng.standard_normal((3, 50)).astype(dtype)
    options = {"damping": 0.1, "scale": scale, "block_size": block_size}
    on_host, on_device = DenseIHVP(G, **options), DenseIHVP(to_array(G), **options)
    assert on_device.engine == "reference"
    for name in ("solve", "matvec"):
        for v in (V, V[0]):
            x = to_array(v)
            got = getattr(on_device, name)(x)
            assert type(got) is type(x) and to_numpy(got).shape == v.shape
            assert close(to_numpy(got), getattr(on_host, name)(v), dtype)
    assert close(to_numpy(on_device.inv_diag()), on_host.inv_diag(), dtype)
    entries = [(0, 0), (3, 7), (11, 2), (49, 48)]
    got = np.array([on_device.inv_entry(i, j) for i, j in entries])
    assert close(got, np.array([on_host.inv_entry(i, j) for i, j in entries]), dtype)
    assert close(np.array(on_device.logdet()), np.array(on_host.logdet()), dtype)
    assert np.array_equal(to_numpy(to_array(G)), G)


def test_against_the_explicit_inverse(namespace, rng):
    to_array, to_numpy = namespace
    G = rng.standard_normal((8, 30))
    F = 0.05 * np.eye(30) + G.T @ G / 8
    v = rng.standard_normal(30)
    ihvp = DenseIHVP(to_array(G), damping=0.05)
    np.testing.assert_allclose(to_numpy(ihvp.solve(to_array(v))), np.linalg.solve(F, v), rtol=1e-10)
    np.testing.assert_allclose(to_numpy(ihvp.matvec(to_array(v))), F @ v, rtol=1e-12)


def test_errors(namespace, rng):
    to_array, _ = namespace
    G = rng.standard_normal((4, 20))
    ihvp = DenseIHVP(to_array(G), damping=1.0)
    with pytest.raises(TypeError, match="v holds numpy arrays on cpu and grads"):
        ihvp.solve(np.ones(20))
    with pytest.raises(ValueError, match="v must have last dimension 20"):
        ihvp.solve(to_array(np.ones(21)))
    with pytest.raises(TypeError, match="as_linear_operator needs gradients in host memory"):
        ihvp.as_linear_operator()
    with pytest.raises(ValueError, match="grads contains NaN"):
        DenseIHVP(to_array(np.full((2, 3), np.nan)), damping=1.0)
    with pytest.raises(ValueError, match="grads must be 2-D"):
        DenseIHVP(to_array(np.ones(3)), damping=1.0)
    host = DenseIHVP(G, damping=1.0)
    with pytest.raises(TypeError, match=r"v holds (array-api|cupy|torch) arrays"):
        host.solve(to_array(np.ones(20)))


def test_too_little_damping_raises_linalg_error(namespace, rng):
    to_array, _ = namespace
    G = rng.standard_normal((200, 50)).astype(np.float32)  # G Gᵀ has rank 50 < 200
    with pytest.raises(LinAlgError, match="increase damping"):
        DenseIHVP(to_array(G), damping=1e-12)


def test_sliding_window_equals_numpy_path(namespace, rng, dtype):
    to_array, to_numpy = namespace
    on_device = SlidingWindowIHVP(40, 5, damping=0.1, dtype=dtype)
    on_host = SlidingWindowIHVP(40, 5, damping=0.1, dtype=dtype)
    V = rng.standard_normal((3, 40))
    for step in range(12):  # fills the window, then slides it (deletes and appends)
        g = rng.standard_normal(40)
        on_device.push(to_array(g))
        on_host.push(g)
        if step in (2, 4, 11):
            got = on_device.solve(to_array(V))
            assert type(got) is type(to_array(V)) and to_numpy(got).dtype == dtype
            assert close(to_numpy(got), on_host.solve(V), dtype)
    assert close(to_numpy(on_device.solve(to_array(V[0]))), on_host.solve(V[0]), dtype)
    assert close(to_numpy(on_device.inv_diag()), on_host.inv_diag(), dtype)
    assert on_device.n_refactorizations == on_host.n_refactorizations


def test_sliding_window_keeps_one_place(namespace, rng):
    to_array, _ = namespace
    ihvp = SlidingWindowIHVP(6, 3, damping=1.0, dtype=np.float64)
    ihvp.push(to_array(rng.standard_normal(6)))
    with pytest.raises(TypeError, match="g holds numpy arrays"):
        ihvp.push(rng.standard_normal(6))
    with pytest.raises(TypeError, match="v holds numpy arrays"):
        ihvp.solve(np.ones(6))
    with pytest.raises(ValueError, match="g contains Inf"), np.errstate(over="ignore"):
        SlidingWindowIHVP(2, 2, damping=1.0).push(to_array(np.array([1e39, 0.0])))
    with pytest.raises(TypeError, match="multiplies NumPy arrays only"):
        ihvp.as_linear_operator() @ np.ones(6)


@pytest.mark.parametrize(
    "middle", [None, "spd", "indefinite"], ids=["C=I", "C-spd", "C-indefinite"]
)
@pytest.mark.parametrize("diagonal", ["scalar", "vector"])
def test_woodbury_equals_numpy_path(namespace, rng, dtype, middle, diagonal):
    to_array, to_numpy = namespace
    U = rng.standard_normal((30, 4)).astype(dtype)
    diag = 0.5 if diagonal == "scalar" else (rng.random(30) + 0.5).astype(dtype)
    C = {
        None: None,
        "spd": np.diag([1.0, 2.0, 3.0, 4.0]),
        "indefinite": np.diag([1.0, -0.1, 2.0, 0.5]),
    }[middle]
    device = {"diag": diag if diagonal == "scalar" else to_array(diag)}
    host = {"diag": diag}
    if C is not None:
        device["C"], host["C"] = to_array(C.astype(dtype)), C.astype(dtype)
    V = rng.standard_normal((30, 3)).astype(dtype)
    solver = woodbury(to_array(U), **device)
    got = solver.solve(to_array(V))
    want = woodbury(U, **host).solve(V)
    assert type(got) is type(to_array(V)) and to_numpy(got).dtype == dtype
    assert close(to_numpy(got), want, dtype)
    assert close(
        to_numpy(woodbury_solve(to_array(U), to_array(V[:, 0]), **device)), want[:, 0], dtype
    )
    A = np.diag(np.broadcast_to(np.asarray(diag, np.float64), (30,))) + U.astype(np.float64) @ (
        np.eye(4) if C is None else C
    ) @ U.T.astype(np.float64)
    residual = A @ to_numpy(got).astype(np.float64) - V
    assert np.abs(residual).max() <= 1e3 * RTOL[np.dtype(dtype)] * np.abs(V).max()


def test_woodbury_errors_on_device(namespace, rng):
    to_array, _ = namespace
    U = to_array(rng.standard_normal((10, 2)))
    with pytest.raises(ValueError, match=r"diag must be positive; diag\[3\]"):
        woodbury(U, diag=to_array(np.array([1.0, 1, 1, -1, 1, 1, 1, 1, 1, 1])))
    solver = woodbury(U, diag=1.0)
    with pytest.raises(TypeError, match="v holds numpy arrays"):
        solver.solve(np.ones(10))
    with pytest.raises(TypeError, match="multiplies NumPy arrays only"):
        solver.as_linear_operator() @ np.ones(10)
    with pytest.raises(TypeError, match="inputs live in different places"):
        woodbury(U, diag=1.0, C=np.eye(2))
