"""Sinkhorn–Newton: agreement with Sinkhorn, monotone dual, exact OT as reg → 0,
and the closed-form entropic OT between Gaussians."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from linalg.ot import sinkhorn, sinkhorn_newton, sinkhorn_newton_sparse, sqeuclidean_cost

from conftest import CPU_ENGINES


def _problem(rng, n=30, m=24):
    a, b = rng.uniform(0.5, 1.5, n), rng.uniform(0.5, 1.5, m)
    return a / a.sum(), b / b.sum(), rng.uniform(size=(n, m))


def _dual(res, a, b):
    """The dual D(f, g) recomputed from the result with logsumexp."""
    L = (res.f[:, None] + res.g[None, :] - res.C) / res.reg
    top = L.max()
    return res.f @ a + res.g @ b - res.reg * np.exp(top) * np.exp(L - top).sum()


def test_three_solvers_give_the_same_plan(rng):
    a, b, C = _problem(rng)
    results = [
        solver(a, b, C, 0.02, tol=1e-12, maxiter=100_000)
        for solver in (sinkhorn, sinkhorn_newton, sinkhorn_newton_sparse)
    ]
    assert all(r.converged for r in results)
    for other in results[1:]:
        assert np.abs(other.plan - results[0].plan).max() <= 1e-8 * np.abs(results[0].plan).max()
        assert other.cost == pytest.approx(results[0].cost, rel=1e-9)
        # the potentials agree up to the null direction (c, -c)
        shift = np.mean(other.f - results[0].f)
        np.testing.assert_allclose(other.f - shift, results[0].f, atol=1e-7 * 0.02)
        np.testing.assert_allclose(other.g + shift, results[0].g, atol=1e-7 * 0.02)


@pytest.mark.parametrize("engine", CPU_ENGINES)
def test_dual_increases_monotonically_and_converges_quadratically(rng, engine):
    a, b, C = _problem(rng)
    res = sinkhorn_newton(a, b, C, 5e-3, engine=engine)
    dual, errors = res.history["dual"], res.history["marginal_error"]
    assert res.converged and res.n_newton == dual.size - 1
    assert np.all(np.diff(dual) >= 0.0)
    assert dual[-1] == pytest.approx(_dual(res, a, b), abs=1e-13)
    # the last steps are quadratic: the error at least squares (up to a constant)
    assert errors[-1] <= 1e-9 and errors[-1] <= 10 * errors[-2] ** 1.5
    assert np.all(res.history["step"][1:] > 0) and res.info["fallbacks"] == []


def test_newton_matches_sinkhorn_at_small_regularization(rng):
    a, b, C = _problem(rng, 20, 20)
    newton = sinkhorn_newton(a, b, C, 2e-3, tol=1e-11)
    slow = sinkhorn(a, b, C, 2e-3, tol=1e-11, maxiter=200_000)
    assert newton.converged and slow.converged and newton.n_newton < 60
    np.testing.assert_allclose(newton.plan, slow.plan, atol=1e-9)


def _exact_ot(a, b, C):
    n, m = C.shape
    rows = np.kron(np.eye(n), np.ones(m))
    cols = np.kron(np.ones(n), np.eye(m))
    lp = linprog(C.ravel(), A_eq=np.vstack([rows, cols]), b_eq=np.concatenate([a, b]))
    assert lp.status == 0
    return lp.fun


def test_cost_converges_to_exact_ot_as_reg_goes_to_zero(rng):
    a, b, C = _problem(rng, 8, 7)
    exact = _exact_ot(a, b, C)
    gaps = []
    for reg in (1e-1, 1e-2, 1e-3, 1e-4):
        res = sinkhorn_newton_sparse(a, b, C, reg, tol=1e-11)
        assert res.converged
        gap = res.cost - exact
        # entropic bound: 0 <= <P_eps, C> - OT <= reg * (H(a) + H(b)) <= reg log(n m)
        assert -1e-9 <= gap <= reg * np.log(C.size)
        gaps.append(gap)
    assert gaps[-1] <= 1e-4 * gaps[0] + 1e-9


@pytest.mark.parametrize("reg", [0.5, 2.0])
def test_entropic_ot_between_gaussians_matches_the_closed_form(reg):
    # Janati et al. (2020) / Mallasto et al. (2021): for N(m1, s1²), N(m2, s2²), cost |x - y|²
    # and reg·KL(π | α⊗β) (the same minimizer as reg·H(π)), the plan is Gaussian with
    # covariance (sqrt(4 s1² s2² + reg²/4) - reg/2) / 2 (σ² = reg/2 in their notation).
    # Fine grids over ±7 standard deviations make the discretization error ~1e-9.
    m1, s1, m2, s2 = 0.0, 1.0, 1.0, 2.0
    x, y = np.linspace(m1 - 7 * s1, m1 + 7 * s1, 301), np.linspace(m2 - 7 * s2, m2 + 7 * s2, 301)
    a, b = np.exp(-((x - m1) ** 2) / (2 * s1**2)), np.exp(-((y - m2) ** 2) / (2 * s2**2))
    a, b = a / a.sum(), b / b.sum()
    res = sinkhorn_newton(a, b, sqeuclidean_cost(x, y), reg, tol=1e-11)
    covariance = (np.sqrt(4 * s1**2 * s2**2 + reg**2 / 4) - reg / 2) / 2
    assert res.converged
    assert np.einsum("ij,i,j->", res.plan, x - m1, y - m2) == pytest.approx(covariance, rel=1e-6)
    expected_cost = (m1 - m2) ** 2 + s1**2 + s2**2 - 2 * covariance
    assert res.cost == pytest.approx(expected_cost, rel=1e-6)


def test_float32_newton(rng):
    a, b, C = (x.astype(np.float32) for x in _problem(rng))
    res = sinkhorn_newton(a, b, C, 1e-2)
    assert res.converged and res.f.dtype == np.float32 and np.isfinite(res.plan).all()
    assert res.marginal_error <= 1e-5


def test_zero_mass_entries_and_inputs_not_modified(rng):
    a, b, C = _problem(rng, 10, 9)
    a[2] = 0.0
    b[[1, 7]] = 0.0
    a, b = a / a.sum(), b / b.sum()
    copies = [x.copy() for x in (a, b, C)]
    res = sinkhorn_newton(a, b, C, 0.01, tol=1e-11)
    for x, y in zip((a, b, C), copies, strict=True):
        np.testing.assert_array_equal(x, y)
    assert res.converged and res.f[2] == -np.inf and np.isneginf(res.g[[1, 7]]).all()
    ref = sinkhorn(a, b, C, 0.01, tol=1e-11, maxiter=100_000)
    np.testing.assert_allclose(res.plan, ref.plan, atol=1e-10)
