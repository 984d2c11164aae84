"""Sinkhorn–Newton-Sparse: the automatic switch, sparsification, fall-backs, engines."""

from __future__ import annotations

import numpy as np
import pytest

from linalg.ot import grid_cost, sinkhorn, sinkhorn_newton, sinkhorn_newton_sparse

from conftest import CPU_ENGINES


def _random_case(n, seed=0):
    """The SNS paper's random case: uniform costs on [0, 1], uniform marginals."""
    return np.full(n, 1.0 / n), np.random.default_rng(seed).uniform(size=(n, n))


@pytest.mark.parametrize("engine", CPU_ENGINES)
def test_random_case_at_small_reg_converges_with_sparse_hessian(engine):
    a, C = _random_case(150)
    res = sinkhorn_newton_sparse(a, a, C, 1 / 1200, engine=engine)
    assert res.converged and res.marginal_error <= 1e-9
    assert 0 < res.n_newton <= 30 and res.info["switch_iteration"] == res.n_iter
    nnz = res.history["nnz"][1:]
    assert np.all(nnz < 0.25 * C.size) and np.all(nnz >= C.shape[0])
    assert np.all(np.diff(res.history["dual"]) >= 0.0)
    dense = sinkhorn_newton(a, a, C, 1 / 1200, tol=1e-11)
    np.testing.assert_allclose(res.plan, dense.plan, atol=1e-8 * dense.plan.max())


def test_engines_agree(rng):
    a, C = _random_case(60, seed=3)
    ref = sinkhorn_newton_sparse(a, a, C, 1e-3, engine="reference")
    fast = sinkhorn_newton_sparse(a, a, C, 1e-3)
    assert fast.n_newton == ref.n_newton and fast.n_iter == ref.n_iter
    np.testing.assert_array_equal(fast.history["nnz"], ref.history["nnz"])
    np.testing.assert_allclose(fast.plan, ref.plan, rtol=1e-9, atol=1e-15)


def test_auto_switch_stays_with_sinkhorn_when_it_converges_fast():
    x = np.linspace(0.0, 1.0, 12)
    C = grid_cost((12, 12)) / grid_cost((12, 12)).max()
    a = np.exp(-((x[:, None] - 0.3) ** 2 + (x[None, :] - 0.5) ** 2) / 0.05).ravel()
    b = np.exp(-((x[:, None] - 0.7) ** 2 + (x[None, :] - 0.4) ** 2) / 0.08).ravel()
    a, b = a / a.sum(), b / b.sum()
    res = sinkhorn_newton_sparse(a, b, C, 5e-2)
    plain = sinkhorn(a, b, C, 5e-2)
    assert res.n_newton == 0 and res.n_iter == plain.n_iter
    np.testing.assert_allclose(res.plan, plain.plan, rtol=1e-12, atol=1e-18)


@pytest.mark.parametrize("sparsity", [8, 1e-3, 0.0], ids=["top-8", "mass-1e-3", "dense"])
def test_sparsity_options_reach_the_same_plan(sparsity):
    a, C = _random_case(80, seed=1)
    res = sinkhorn_newton_sparse(a, a, C, 2e-3, sparsity=sparsity, warmup=20, tol=1e-10)
    assert res.converged and res.info["switch_iteration"] == 20
    nnz = res.history["nnz"][1:]
    if sparsity == 0.0:
        assert np.all(nnz == C.size)
    elif sparsity == 8:
        assert np.all(nnz >= 8 * 80) and np.all(nnz < 9 * 80)
    ref = sinkhorn_newton(a, a, C, 2e-3, tol=1e-11)
    np.testing.assert_allclose(res.plan, ref.plan, atol=1e-8 * ref.plan.max())


def test_failed_step_falls_back_to_sinkhorn_and_densifies():
    a, C = _random_case(30, seed=2)
    g = np.zeros(30)
    g[4] = -1e3  # column 4 of the plan underflows to zero: no Newton system
    res = sinkhorn_newton_sparse(a, a, C, 1e-2, warmup=0, init=(np.zeros(30), g))
    assert res.converged and res.n_iter == 10
    (failure,) = res.info["fallbacks"]
    assert failure["newton_step"] == 0 and "underflowed" in failure["reason"]
    assert res.info["sparsity"] == "row mass budget 1e-06"
    assert res.info["final_sparsity"] == "row mass budget 1e-08"
    assert np.all(np.diff(res.history["dual"]) >= 0.0)


def test_no_nan_at_tiny_reg_and_float32():
    a, C = _random_case(40, seed=4)
    res = sinkhorn_newton_sparse(a, a, C, 1e-4)
    assert res.converged and np.isfinite(res.plan).all() and np.isfinite(res.f).all()
    a32, C32 = a.astype(np.float32), C.astype(np.float32)
    res32 = sinkhorn_newton_sparse(a32, a32, C32, 1e-2)
    assert res32.converged and res32.f.dtype == np.float32 and np.isfinite(res32.plan).all()


def test_maxiter_bounds_sinkhorn_plus_newton(rng):
    a, C = _random_case(60, seed=5)
    res = sinkhorn_newton_sparse(a, a, C, 1e-3, maxiter=25, warn=False)
    assert not res.converged and res.n_iter + res.n_newton <= 25
