"""ihvp_lissa on vectors computed through their own array-API namespace.

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. ``hvp`` is then a
closure on the device. Answers are compared with the NumPy path (the same
recursion: the same steps, 1e-10 in float64 and 1e-4 in float32) and with an
exact dense solve in float64.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from linalg import ConvergenceWarning, LinAlgError
from linalg.curvature import ihvp_lissa

from conftest import RTOL


def symmetric(rng: np.random.Generator, eigenvalues: np.ndarray) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
    return (Q * eigenvalues) @ Q.T


def close(got: np.ndarray, want: np.ndarray, dtype) -> bool:
    return np.abs(got - want).max() <= RTOL[np.dtype(dtype)] * np.abs(want).max()


def device_hvp(to_array, H: np.ndarray, calls: list | None = None):
    H_device = to_array(H)

    def hvp(u):
        if calls is not None:
            calls.append(type(u))
        return H_device @ u

    return hvp


def test_equals_numpy_path(namespace, rng, dtype):
    to_array, to_numpy = namespace
    H = symmetric(rng, np.linspace(-0.5, 3.0, 30)).astype(dtype)
    V = rng.standard_normal((30, 3)).astype(dtype)
    V[:, 1] = 0.0  # converged at step 0
    V[:, 2] = np.linalg.eigh(H.astype(np.float64))[1][:, -1]  # stops earlier than column 0
    V_device = to_array(V)
    calls = []
    options = {"damping": 1.0, "scale": 4.5, "depth": 4000, "rtol": 10 * RTOL[np.dtype(dtype)]}
    got = ihvp_lissa(device_hvp(to_array, H, calls), V_device, **options)
    want = ihvp_lissa(lambda u: H @ u, V, **options)
    X = to_numpy(got.x)
    assert type(got.x) is type(V_device) and X.dtype == dtype
    assert set(calls) == {type(V_device)} and len(calls) == got.n_iter.sum()
    assert got.converged.all() and np.array_equal(got.n_iter, want.n_iter)
    assert got.n_iter[1] == 0 and (X[:, 1] == 0.0).all() and got.n_iter[2] < got.n_iter[0]
    assert close(X, want.x, dtype)
    assert got.history.shape == want.history.shape == (want.n_iter.max() + 1, 3)
    assert np.abs(got.history - want.history).max() <= 1e3 * RTOL[np.dtype(dtype)]
    assert got.info == want.info
    np.testing.assert_array_equal(to_numpy(V_device), V)  # the input is unchanged


def test_exact_solve_and_callback(namespace, rng):
    to_array, to_numpy = namespace
    H = symmetric(rng, np.linspace(0.5, 4.0, 25))
    v = rng.standard_normal(25)
    steps = []
    options = {"damping": 0.5, "scale": 5.0, "depth": 5000, "rtol": 1e-14}
    got = ihvp_lissa(device_hvp(to_array, H), to_array(v), **options, callback=steps.append)
    x = to_numpy(got.x)
    exact = np.linalg.solve(H + 0.5 * np.eye(25), v)
    assert got.converged is True and x.shape == (25,) and got.residual_norm <= 1e-14
    assert np.linalg.norm(x - exact) <= 1e-11 * np.linalg.norm(exact)
    assert len(steps) == got.n_iter and all(type(s) is type(got.x) for s in steps)
    np.testing.assert_array_equal(to_numpy(steps[-1]), x)


def test_check_every(namespace, rng):
    to_array, to_numpy = namespace
    H = symmetric(rng, np.linspace(0.5, 2.0, 20))
    V = rng.standard_normal((20, 2))
    options = {"damping": 0.0, "scale": 2.5, "depth": 1000, "rtol": 1e-10}
    got = ihvp_lissa(device_hvp(to_array, H), to_array(V), **options, check_every=7)
    want = ihvp_lissa(lambda u: H @ u, V, **options)
    assert got.converged.all() and (got.n_iter % 7 == 0).all()
    assert ((got.n_iter >= want.n_iter) & (got.n_iter < want.n_iter + 7)).all()
    np.testing.assert_allclose(to_numpy(got.x), np.linalg.solve(H, V), rtol=1e-8, atol=1e-10)


def test_repeats_of_a_deterministic_hvp_agree(namespace, rng):
    to_array, to_numpy = namespace
    H = symmetric(rng, np.linspace(1.0, 4.0, 8))
    v = to_array(rng.standard_normal(8))
    calls = []
    options = {"damping": 0.0, "scale": 4.5, "depth": 300, "rtol": 1e-10}
    one = ihvp_lissa(device_hvp(to_array, H), v, **options)
    three = ihvp_lissa(device_hvp(to_array, H, calls), v, **options, repeats=3)
    assert three.n_iter == one.n_iter and len(calls) == 3 * three.n_iter
    np.testing.assert_allclose(to_numpy(three.x), to_numpy(one.x), rtol=1e-14)


def test_not_converged_warns(namespace, rng):
    to_array, _ = namespace
    H = symmetric(rng, np.linspace(0.01, 1.0, 20))
    with pytest.warns(ConvergenceWarning, match="ihvp_lissa did not converge in depth=50"):
        got = ihvp_lissa(
            device_hvp(to_array, H), to_array(np.ones(20)), damping=0.0, scale=1.0, depth=50
        )
    assert got.converged is False and got.n_iter == 50 and got.residual_norm > 1e-6


@pytest.mark.parametrize(("check_every", "when"), [(1, "at"), (4, "at or before")])
def test_divergence_and_nan_are_breakdowns(namespace, rng, check_every, when):
    to_array, _ = namespace
    H = symmetric(rng, np.linspace(0.5, 4.0, 20))
    v = to_array(np.ones(20))
    options = {"damping": 0.0, "depth": 1000, "check_every": check_every}
    with pytest.raises(LinAlgError, match=f"diverged {when} step .*scale = 1 is too small") as e:
        ihvp_lissa(device_hvp(to_array, H), v, scale=1.0, **options)
    # |1 - 4/1| = 3 per step: ||x|| passes 1e8 ||v|| within about 25 steps
    assert int(re.search(r"step (\d+)", str(e.value)).group(1)) <= 25 + check_every
    H_device = to_array(H)
    with pytest.raises(LinAlgError, match=f"hvp returned NaN or Inf {when} step {check_every}"):
        ihvp_lissa(lambda u: H_device @ u * float("nan"), v, scale=5.0, **options)


def test_bad_input_names_the_argument(namespace, rng):
    to_array, _ = namespace
    H = symmetric(rng, np.linspace(0.5, 2.0, 6))
    hvp, v = device_hvp(to_array, H), to_array(np.ones(6))
    options = {"damping": 0.0, "scale": 2.5, "depth": 10, "warn": False}
    with pytest.raises(ValueError, match="v contains NaN"):
        ihvp_lissa(hvp, to_array(np.array([1.0, np.nan, 0, 0, 0, 0])), **options)
    with pytest.raises(ValueError, match="v must be 1-D or 2-D"):
        ihvp_lissa(hvp, to_array(np.ones((6, 1, 1))), **options)
    with pytest.raises(TypeError, match=r"hvp returned numpy arrays .*move v to the host"):
        ihvp_lissa(lambda u: H @ np.ones(6), v, **options)
    with pytest.raises(ValueError, match=r"hvp returned .* of shape \(3,\)"):
        ihvp_lissa(lambda u: u[:3], v, **options)
    with pytest.raises(ValueError, match="check_every must be >= 1"):
        ihvp_lissa(hvp, v, **options, check_every=0)
