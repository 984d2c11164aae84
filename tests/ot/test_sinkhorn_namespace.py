"""sinkhorn on data computed through its own array-API namespace (the device solver).

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu`` (CuPy with the fused
half-steps of the CuPy engine). The recurrences are the host solver's, so every
member takes the same iterations and the potentials agree to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from linalg import ConvergenceWarning
from linalg.ot import marginal_error, sinkhorn, sqeuclidean_cost

from conftest import RTOL


def problem(n: int, m: int, seed: int = 0, dtype=np.float64, batch: int | None = None):
    rng = np.random.default_rng(seed)
    shape = (n,) if batch is None else (batch, n)
    a, b = rng.random(shape) + 0.05, rng.random((*shape[:-1], m)) + 0.05
    a, b = a / a.sum(axis=-1, keepdims=True), b / b.sum(axis=-1, keepdims=True)
    x, y = rng.random((n, 2)), rng.random((m, 2))
    C = ((x[:, None, :] - y[None, :, :]) ** 2).sum(axis=2)
    return a.astype(dtype), b.astype(dtype), C.astype(dtype)


def close(got: np.ndarray, want: np.ndarray, dtype) -> bool:
    finite = np.isfinite(want)
    if not np.array_equal(finite, np.isfinite(got)):
        return False
    scale = np.abs(want[finite]).max()
    return np.abs(got[finite] - want[finite]).max() <= 10 * RTOL[np.dtype(dtype)] * scale


@pytest.mark.parametrize("options", [{}, {"eps_scaling": 3}, {"check_every": 1}], ids=str)
def test_equals_host_solver(namespace, dtype, options):
    to_array, to_numpy = namespace
    a, b, C = problem(50, 40, dtype=dtype)
    a[7] = 0.0
    a /= a.sum()
    want = sinkhorn(a, b, C, 0.05, engine="reference", **options)
    got = sinkhorn(to_array(a), to_array(b), to_array(C), 0.05, **options)
    assert got.converged and got.n_iter == want.n_iter
    assert type(got.f) is type(to_array(a)) and to_numpy(got.f).dtype == dtype
    assert close(to_numpy(got.f), want.f, dtype) and close(to_numpy(got.g), want.g, dtype)
    assert to_numpy(got.f)[7] == -np.inf
    assert close(to_numpy(got.plan), want.plan, dtype)
    assert abs(got.cost - want.cost) <= 10 * RTOL[np.dtype(dtype)] * want.cost
    assert np.array_equal(got.history["iteration"], want.history["iteration"])
    assert abs(got.marginal_error - want.marginal_error) <= 10 * RTOL[np.dtype(dtype)]


@pytest.mark.parametrize("shared_cost", [True, False], ids=["shared-C", "batch-C"])
def test_batch_members_stop_on_their_own(namespace, shared_cost):
    to_array, to_numpy = namespace
    a, b, C = problem(30, 20, seed=1, batch=3)
    a[1] = np.full(30, 1 / 30)  # an easier member converges sooner
    Cs = C if shared_cost else np.stack([C, 2 * C, C**2])
    want = sinkhorn(a, b, Cs, 0.02, engine="reference")
    got = sinkhorn(to_array(a), to_array(b), to_array(Cs), 0.02)
    assert np.array_equal(got.n_iter, want.n_iter) and got.converged.all()
    assert close(to_numpy(got.f), want.f, np.float64) and close(to_numpy(got.g), want.g, np.float64)
    assert np.allclose(got.cost, want.cost, rtol=1e-9)


def test_warm_start_and_normalize(namespace):
    to_array, to_numpy = namespace
    a, b, C = problem(25, 35, seed=2)
    cold = sinkhorn(to_array(a), to_array(b), to_array(C), 0.05)
    warm = sinkhorn(
        to_array(3 * a), to_array(b), to_array(C), 0.05, init=(cold.f, cold.g), normalize=True
    )
    assert warm.converged and warm.n_iter <= 10
    assert np.abs(to_numpy(warm.plan) - to_numpy(cold.plan)).max() <= 1e-8


def test_not_converged_warns_and_errors(namespace):
    to_array, _ = namespace
    a, b, C = problem(20, 20, seed=3)
    with pytest.warns(ConvergenceWarning, match="sinkhorn did not converge"):
        result = sinkhorn(to_array(a), to_array(b), to_array(C), 0.001, maxiter=5)
    assert not result.converged and result.n_iter == 5
    with pytest.raises(ValueError, match="a has negative entries"):
        sinkhorn(to_array(-a), to_array(b), to_array(C), 0.1)
    with pytest.raises(ValueError, match="a and b have different totals"):
        sinkhorn(to_array(2 * a), to_array(b), to_array(C), 0.1)
    with pytest.raises(ValueError, match=r"C must have shape \(\.\.\., 20, 20\)"):
        sinkhorn(to_array(a), to_array(b), to_array(C[:, :5]), 0.1)
    with pytest.raises(TypeError, match="inputs live in different places"):
        sinkhorn(a, to_array(b), to_array(C), 0.1)
    with pytest.raises(TypeError, match="engine 'numba' has no Sinkhorn"):
        sinkhorn(to_array(a), to_array(b), to_array(C), 0.1, engine="numba")


def test_costs_solve_and_errors_end_to_end_on_the_device(namespace, rng, dtype):
    to_array, to_numpy = namespace
    x, y = rng.random((30, 3)).astype(dtype), rng.random((20, 3)).astype(dtype)
    C = sqeuclidean_cost(to_array(x), to_array(y))
    assert type(C) is type(to_array(x))
    want = sqeuclidean_cost(x, y)
    assert np.abs(to_numpy(C) - want).max() <= 10 * RTOL[np.dtype(dtype)] * want.max()
    a, b = np.full(30, 1 / 30, dtype=dtype), np.full(20, 1 / 20, dtype=dtype)
    result = sinkhorn(to_array(a), to_array(b), C, 0.05)
    error = marginal_error(result, to_array(a), to_array(b))
    assert (
        isinstance(error, float)
        and abs(error - result.marginal_error) <= 10 * RTOL[np.dtype(dtype)]
    )
    for norm in (2, np.inf):
        got = marginal_error(result.plan, to_array(a), to_array(b), norm=norm)
        want = marginal_error(to_numpy(result.plan), a, b, norm=norm)
        assert abs(got - want) <= max(1e-12, 100 * np.finfo(dtype).eps)  # sums of ~50 terms
    with pytest.raises(TypeError, match="inputs live in different places"):
        marginal_error(result, a, to_array(b))
