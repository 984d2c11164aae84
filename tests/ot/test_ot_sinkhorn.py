"""Log-domain Sinkhorn: against POT, batches, ε-scaling, warm starts, dtypes, engines."""

from __future__ import annotations

import numpy as np
import pytest

from linalg import ConvergenceWarning
from linalg.ot import marginal_error, sinkhorn

from conftest import CPU_ENGINES

ot = pytest.importorskip("ot")


def _problem(rng, n=30, m=20):
    a, b = rng.uniform(0.5, 1.5, n), rng.uniform(0.5, 1.5, m)
    return a / a.sum(), b / b.sum(), rng.uniform(size=(n, m))


def test_matches_pot_log_sinkhorn(rng):
    a, b, C = _problem(rng)
    res = sinkhorn(a, b, C, 0.05, tol=1e-13, maxiter=50_000)
    expected = ot.sinkhorn(a, b, C, 0.05, method="sinkhorn_log", stopThr=1e-15, numItermax=50_000)
    assert res.converged and res.marginal_error <= 1e-13
    np.testing.assert_allclose(res.plan, expected, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(res.cost, np.sum(expected * C), rtol=1e-10)
    assert res.n_newton == 0 and res.n_iter % 10 == 0


def test_reported_error_is_recomputed_from_the_plan(rng):
    a, b, C = _problem(rng)
    res = sinkhorn(a, b, C, 0.1, tol=1e-6)
    assert res.marginal_error == pytest.approx(marginal_error(res, a, b), rel=1e-6, abs=1e-15)
    assert marginal_error(res.plan, a, b) <= 1e-6
    history = res.history["marginal_error"]
    assert history.shape == res.history["iteration"].shape and history[-1] <= 1e-6


@pytest.mark.parametrize("shared_cost", [True, False], ids=["one-C", "batch-of-C"])
def test_batched_equals_looped(rng, shared_cost):
    n, m, batch = 12, 9, 4
    a = rng.uniform(0.1, 1.0, (batch, n))
    b = rng.uniform(0.1, 1.0, (batch, m))
    a[1, [0, 4]], b[2, 3] = 0.0, 0.0  # zero-mass bins: -inf potentials in the batch
    a /= a.sum(axis=1, keepdims=True)
    b /= b.sum(axis=1, keepdims=True)
    C = rng.uniform(size=(n, m)) if shared_cost else rng.uniform(size=(batch, n, m))
    res = sinkhorn(a, b, C, 0.03, tol=1e-11)
    assert res.f.shape == (batch, n) and res.plan.shape == (batch, n, m)
    assert res.converged.all() and res.n_iter.shape == (batch,)
    for k in range(batch):
        one = sinkhorn(a[k], b[k], C if shared_cost else C[k], 0.03, tol=1e-11)
        assert one.n_iter == res.n_iter[k]
        # a single problem drops its zero-mass bins: sums in another order, rounding apart
        np.testing.assert_allclose(res.plan[k], one.plan, rtol=1e-10, atol=1e-16)
        assert res.cost[k] == pytest.approx(one.cost, rel=1e-12)


def test_eps_scaling_and_warm_start_reach_the_same_plan(rng):
    a, b, C = _problem(rng)
    plain = sinkhorn(a, b, C, 0.01, tol=1e-11, maxiter=100_000)
    scaled = sinkhorn(a, b, C, 0.01, tol=1e-11, eps_scaling=4, maxiter=100_000)
    listed = sinkhorn(a, b, C, 0.01, tol=1e-11, eps_scaling=[0.5, 0.1], maxiter=100_000)
    assert scaled.info["stages"][-1] == 0.01 and len(scaled.info["stages"]) == 4
    assert listed.info["stages"] == [0.5, 0.1, 0.01]
    for other in (scaled, listed):
        np.testing.assert_allclose(other.plan, plain.plan, rtol=1e-8, atol=1e-13)
    warm = sinkhorn(a, b, C, 0.01, tol=1e-11, init=(plain.f, plain.g))
    assert warm.n_iter <= 10
    np.testing.assert_allclose(warm.plan, plain.plan, rtol=1e-8, atol=1e-13)


def test_no_nan_at_small_regularization_float64(rng):
    a, b, C = _problem(rng, 40, 40)
    res = sinkhorn(a, b, C, 1e-4, maxiter=200, warn=False)
    assert np.isfinite(res.f).all() and np.isfinite(res.g).all()
    assert np.isfinite(res.plan).all() and np.isfinite(res.marginal_error)
    assert res.marginal_error < marginal_error(np.outer(a, b) * 0.5, a, b)


def test_float32_stays_float32_and_has_no_nan(rng):
    a, b, C = (x.astype(np.float32) for x in _problem(rng, 40, 30))
    res = sinkhorn(a, b, C, 1e-2, maxiter=20_000)
    assert res.f.dtype == np.float32 and res.plan.dtype == np.float32
    assert res.converged and res.marginal_error <= 1e-5
    a64, b64, C64 = (x.astype(np.float64) for x in (a, b, C))
    exact = sinkhorn(a64, b64, C64, 1e-2, tol=1e-12, normalize=True, maxiter=50_000)
    # a marginal error of 1e-5 leaves the plan within a few times that in L1
    assert np.abs(res.plan - exact.plan).sum() <= 1e-4


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # POT's log(0)
def test_zero_mass_entries(rng):
    a, b, C = _problem(rng, 10, 8)
    a[3], b[[0, 5]] = 0.0, 0.0
    a, b = a / a.sum(), b / b.sum()
    res = sinkhorn(a, b, C, 0.05, tol=1e-11)
    assert res.converged and res.f[3] == -np.inf and np.isneginf(res.g[[0, 5]]).all()
    assert np.all(res.plan[3] == 0) and np.all(res.plan[:, [0, 5]] == 0)
    expected = ot.sinkhorn(a, b, C, 0.05, method="sinkhorn_log", stopThr=1e-14, numItermax=10**5)
    np.testing.assert_allclose(res.plan, expected, rtol=1e-8, atol=1e-15)


@pytest.mark.parametrize("engine", CPU_ENGINES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_engines_agree_with_the_reference(rng, engine, dtype):
    a, b, C = (x.astype(dtype) for x in _problem(rng, 25, 18))
    tol = 1e-5 if dtype == np.float32 else 1e-10
    res = sinkhorn(a, b, C, 0.02, tol=tol, engine=engine)
    ref = sinkhorn(a, b, C, 0.02, tol=tol, engine="reference")
    assert res.info["engine"] == engine and res.n_iter == ref.n_iter
    rtol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(res.plan, ref.plan, rtol=rtol, atol=rtol / C.size)


def test_non_convergence_warns_and_reports(rng):
    a, b, C = _problem(rng)
    with pytest.warns(ConvergenceWarning, match="sinkhorn did not converge"):
        res = sinkhorn(a, b, C, 1e-3, maxiter=15)
    assert not res.converged and res.n_iter == 15 and res.marginal_error > 1e-9
    quiet = sinkhorn(a, b, C, 1e-3, maxiter=15, warn=False)
    assert quiet.marginal_error == res.marginal_error


def test_inputs_are_not_modified_and_normalize(rng):
    a, b, C = _problem(rng)
    a2, b2 = 3.0 * a, 5.0 * b
    copies = [x.copy() for x in (a2, b2, C)]
    res = sinkhorn(a2, b2, C, 0.1, normalize=True, eps_scaling=2)
    for x, y in zip((a2, b2, C), copies, strict=True):
        np.testing.assert_array_equal(x, y)
    assert marginal_error(res, a, b) <= 1e-9


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    a, b, C = _problem(rng)
    res = sinkhorn(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(C), 0.1)
    assert isinstance(res.f, torch.Tensor) and isinstance(res.plan, torch.Tensor)
    np.testing.assert_allclose(res.plan.numpy(), sinkhorn(a, b, C, 0.1).plan, rtol=1e-14)
