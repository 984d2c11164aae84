"""sinkhorn_newton and sinkhorn_newton_sparse on data computed through its own namespace.

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. With
``check_every=1`` the device CG tests convergence after every iteration, as
the host CG does, so the device solvers take the host solvers' steps and the
results agree to rounding (float64 1e-10, float32 1e-4). POT and an exact LP
are the outside oracles; the marginal errors are recomputed from the plan.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from linalg import ConvergenceWarning
from linalg._core.namespace import namespace_of
from linalg.ot import sinkhorn_newton, sinkhorn_newton_sparse
from linalg.ot._sns import DeviceRowSparsifier, RowSparsifier

from conftest import RTOL

ot = pytest.importorskip("ot")

SOLVERS = {
    "newton": (sinkhorn_newton, {}),
    "sns-auto": (sinkhorn_newton_sparse, {}),
    "sns-top-8": (sinkhorn_newton_sparse, {"sparsity": 8, "warmup": 20}),
    "sns-mass-1e-3": (sinkhorn_newton_sparse, {"sparsity": 1e-3, "warmup": 20}),
}


def problem(n: int, m: int, seed: int = 0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.5, 1.5, n), rng.uniform(0.5, 1.5, m)
    return (a / a.sum()).astype(dtype), (b / b.sum()).astype(dtype), rng.uniform(size=(n, m))


def assert_close(got: np.ndarray, want: np.ndarray, dtype, scale: float | None = None) -> None:
    """Equal up to ``RTOL[dtype]`` of the largest finite magnitude, ``-inf`` where ``want`` is."""
    finite = np.isfinite(want)
    np.testing.assert_array_equal(np.isfinite(got), finite)
    np.testing.assert_array_equal(got[~finite], want[~finite])
    scale = np.abs(want[finite]).max() if scale is None else scale
    np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=RTOL[dtype] * scale)


def recomputed_error(P: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    P = P.astype(np.float64)
    return float(np.abs(P.sum(axis=1) - a).sum() + np.abs(P.sum(axis=0) - b).sum())


@pytest.mark.parametrize("name", SOLVERS)
def test_equals_host_solver(namespace, dtype, name):
    to_array, to_numpy = namespace
    solver, options = SOLVERS[name]
    a, b, C = problem(60, 50, seed=1, dtype=dtype)
    C = C.astype(dtype)
    a[7], b[[3, 11]] = 0.0, 0.0  # zero mass: potentials -inf, solved on the support
    a, b = a / a.sum(), b / b.sum()
    reg = 2e-3 if dtype == np.float64 else 5e-3
    inputs = [to_array(x) for x in (a, b, C)]
    copies = [x.copy() for x in (a, b, C)]
    want = solver(a, b, C, reg, check_every=1, engine="reference", **options)
    got = solver(*inputs, reg, check_every=1, **options)
    assert want.converged and want.n_newton > 0 and got.converged
    assert (got.n_newton, got.n_iter) == (want.n_newton, want.n_iter)
    for key in ("nnz", "cg_iterations"):
        np.testing.assert_array_equal(got.history[key], want.history[key])
    assert got.info["engine"] in ("reference", "cupy") and got.info["fallbacks"] == []
    for field in ("f", "g", "plan"):
        value = getattr(got, field)
        assert type(value) is type(inputs[0]) and to_numpy(value).dtype == dtype
        assert_close(to_numpy(value), getattr(want, field), dtype)
    assert to_numpy(got.f)[7] == -np.inf and np.isneginf(to_numpy(got.g)[[3, 11]]).all()
    assert abs(got.cost - want.cost) <= RTOL[dtype] * want.cost
    assert abs(got.marginal_error - recomputed_error(to_numpy(got.plan), a, b)) <= RTOL[dtype]
    # the last dual only: the steps before it agree to rounding times the conditioning
    assert abs(got.history["dual"][-1] - want.history["dual"][-1]) <= RTOL[dtype] * want.cost
    if dtype == np.float64:  # float32 duals are equal to rounding near the optimum
        assert np.all(np.diff(got.history["dual"]) >= 0.0)
    for x, before in zip(inputs, copies, strict=True):
        np.testing.assert_array_equal(to_numpy(x), before)


@pytest.mark.parametrize("name", SOLVERS)
def test_matches_pot_at_the_default_settings(namespace, name):
    # check_every=10: the device CG tests every 10 iterations, so its directions differ
    # from the host's; the answer is the same entropic plan.
    to_array, to_numpy = namespace
    solver, options = SOLVERS[name]
    a, b, C = problem(30, 24, seed=2)
    got = solver(to_array(a), to_array(b), to_array(C), 0.05, tol=1e-12, **options)
    expected = ot.sinkhorn(a, b, C, 0.05, method="sinkhorn_log", stopThr=1e-15, numItermax=10**5)
    P = to_numpy(got.plan)
    assert got.converged and recomputed_error(P, a, b) <= 1e-12
    np.testing.assert_allclose(P, expected, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(got.cost, np.sum(expected * C), rtol=1e-10)


def test_cost_tends_to_the_exact_ot_cost(namespace):
    to_array, _ = namespace
    a, b, C = problem(8, 7, seed=3)
    n, m = C.shape
    lp = linprog(
        C.ravel(),
        A_eq=np.vstack([np.kron(np.eye(n), np.ones(m)), np.kron(np.ones(n), np.eye(m))]),
        b_eq=np.concatenate([a, b]),
    )
    assert lp.status == 0 and np.isclose(lp.fun, ot.emd2(a, b, C), rtol=1e-12, atol=1e-15)
    gaps = []
    for reg in (1e-2, 1e-3):
        res = sinkhorn_newton_sparse(to_array(a), to_array(b), to_array(C), reg, tol=1e-11)
        # entropic bound: 0 <= <P_eps, C> - OT <= reg log(n m)
        assert res.converged and -1e-9 <= res.cost - lp.fun <= reg * np.log(C.size)
        gaps.append(res.cost - lp.fun)
    assert res.n_newton > 0 and gaps[1] <= 0.5 * gaps[0]


def test_failed_step_falls_back_to_sinkhorn_and_densifies(namespace):
    to_array, to_numpy = namespace
    a = np.full(30, 1 / 30)
    C = np.random.default_rng(2).uniform(size=(30, 30))
    g = np.zeros(30)
    g[4] = -1e3  # column 4 of the plan underflows to zero: no Newton system
    want = sinkhorn_newton_sparse(a, a, C, 1e-2, warmup=0, init=(np.zeros(30), g))
    got = sinkhorn_newton_sparse(
        to_array(a), to_array(a), to_array(C), 1e-2, warmup=0, init=(to_array(a * 0), to_array(g))
    )
    assert got.converged and got.n_iter == want.n_iter == 10
    assert got.info["fallbacks"] == want.info["fallbacks"]
    assert "underflowed" in got.info["fallbacks"][0]["reason"]
    assert got.info["final_sparsity"] == "row mass budget 1e-08"
    assert_close(to_numpy(got.plan), want.plan, np.dtype(np.float64))


@pytest.mark.parametrize("solver", [sinkhorn_newton, sinkhorn_newton_sparse])
def test_not_converged_warns(namespace, solver):
    to_array, to_numpy = namespace
    a, b, C = problem(20, 20, seed=4)
    with pytest.warns(ConvergenceWarning, match=f"{solver.__name__} did not converge"):
        res = solver(to_array(a), to_array(b), to_array(C), 1e-3, maxiter=3)
    assert not res.converged and res.n_iter + res.n_newton <= 3
    assert res.marginal_error == pytest.approx(recomputed_error(to_numpy(res.plan), a, b))
    assert res.marginal_error > 1e-9


@pytest.mark.parametrize("solver", [sinkhorn_newton, sinkhorn_newton_sparse])
def test_bad_input_names_the_argument(namespace, solver):
    to_array, _ = namespace
    a, b, C = problem(6, 5, seed=5)
    A, B, K = to_array(a), to_array(b), to_array(C)
    with pytest.raises(ValueError, match="a has negative entries"):
        solver(to_array(-a), B, K, 0.1)
    with pytest.raises(ValueError, match="a and b have different totals"):
        solver(to_array(2 * a), B, K, 0.1)
    with pytest.raises(ValueError, match=r"C must have shape \(\.\.\., 6, 5\)"):
        solver(A, B, to_array(C[:, :4]), 0.1)
    with pytest.raises(ValueError, match="a must be 1-D"):  # no batches, as on the host
        solver(to_array(np.stack([a, a])), to_array(np.stack([b, b])), K, 0.1)
    with pytest.raises(ValueError, match="cg_maxiter"):
        solver(A, B, K, 0.1, cg_maxiter=0)
    with pytest.raises(TypeError, match="inputs live in different places"):
        solver(a, B, K, 0.1)
    with pytest.raises(TypeError, match="engine 'numba' has no Sinkhorn"):
        solver(A, B, K, 0.1, engine="numba")


def test_bad_sparsity_and_warmup_name_the_argument(namespace):
    to_array, _ = namespace
    A, B, K = (to_array(x) for x in problem(6, 5, seed=6))
    with pytest.raises(ValueError, match="sparsity as a mass budget"):
        sinkhorn_newton_sparse(A, B, K, 0.1, sparsity=1.5)
    with pytest.raises(ValueError, match="warmup must be 'auto' or an int"):
        sinkhorn_newton_sparse(A, B, K, 0.1, warmup="never")


@pytest.mark.parametrize("sparsity", [1, 3, 7, 50, 1e-2], ids=str)
def test_device_thresholds_equal_the_host_thresholds(namespace, sparsity):
    to_array, to_numpy = namespace
    rng = np.random.default_rng(7)
    P = np.exp(rng.standard_normal((9, 7)) * 3)
    P[2] = 0.0  # a row of zeros: every threshold 0, every entry kept
    P[4, :4] = P[4, 5]  # ties at the threshold are kept
    r = P.sum(axis=1)
    host = RowSparsifier(None, sparsity)
    device = DeviceRowSparsifier(namespace_of(to_array(P)), sparsity)
    want = host.thresholds(P, r)
    got = to_numpy(device.thresholds(to_array(P), to_array(r)))
    np.testing.assert_array_equal(got, want)
    masked, kept = device(to_array(P), to_array(r))
    keep = want[:, None] <= P
    np.testing.assert_array_equal(to_numpy(masked), np.where(keep, P, 0.0))
    assert kept == int(keep.sum()) == device.kept(to_array(P))
