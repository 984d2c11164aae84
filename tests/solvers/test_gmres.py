"""Tests for linalg.solvers.gmres: restarted GMRES against numpy.linalg.solve and
SciPy's gmres, with restarts, right preconditioners and breakdowns."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from linalg import ConvergenceWarning, LinAlgError
from linalg.solvers import gmres

N = 40


@pytest.fixture
def A() -> np.ndarray:
    """Nonsymmetric, well conditioned."""
    rng = np.random.default_rng(0)
    return 3.0 * np.eye(N) + rng.standard_normal((N, N)) / np.sqrt(N)


@pytest.fixture
def b() -> np.ndarray:
    return np.random.default_rng(1).standard_normal(N)


def check_solution(res, A, b, *, rtol=1e-10):
    """Converged, residual recomputed independently, and residual_norm honest."""
    assert res.converged
    x = np.asarray(res.x, dtype=np.float64)
    r = np.linalg.norm(b - A @ x)
    assert r <= rtol * np.linalg.norm(b) * 1.001
    rounding = 1e-14 * (np.linalg.norm(b) + np.linalg.norm(A) * np.linalg.norm(x))
    assert res.residual_norm == pytest.approx(r, rel=1e-3, abs=rounding)


def test_matches_dense_solve(A, b):
    res = gmres(A, b, rtol=1e-10)
    check_solution(res, A, b)
    np.testing.assert_allclose(res.x, np.linalg.solve(A, b), rtol=1e-8, atol=1e-10)
    assert res.history.shape == (res.n_iter + 1,)
    assert res.history[0] == pytest.approx(np.linalg.norm(b))
    assert np.all(np.diff(res.history) <= 1e-12)  # GMRES residuals never increase
    expected = {"engine": "reference", "restart": 20, "n_cycles": 1, "stop_reason": "converged"}
    assert res.info == expected


@pytest.mark.parametrize("restart", [1, 3, 7])
def test_restart_smaller_than_iteration_count(restart, A, b):
    res = gmres(A, b, rtol=1e-10, restart=restart)
    check_solution(res, A, b)
    assert res.info["n_cycles"] >= 2
    assert res.info["n_cycles"] == -(-res.n_iter // restart)
    np.testing.assert_allclose(res.x, np.linalg.solve(A, b), rtol=1e-8, atol=1e-10)


def test_full_gmres_converges_within_n_steps(b):
    # A normal matrix with 6 distinct eigenvalues: GMRES is exact after 6 steps.
    rng = np.random.default_rng(5)
    Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    A = (Q * np.repeat([1.0, 2.0, 3.0, -4.0, 5.0, 6.5], [7, 7, 7, 7, 6, 6])) @ Q.T
    res = gmres(A, b, rtol=1e-12, restart=N)
    check_solution(res, A, b, rtol=1e-12)
    assert res.n_iter <= 6


def test_happy_breakdown():
    # Upper triangular A: b in span(e1, e2, e3), an invariant subspace, so the
    # Arnoldi process stops after 3 steps.
    rng = np.random.default_rng(4)
    A = np.triu(rng.standard_normal((N, N))) + np.diag(np.arange(1.0, N + 1))
    b = np.zeros(N)
    b[:3] = 1.0
    res = gmres(A, b, rtol=1e-14, restart=N)
    check_solution(res, A, b, rtol=1e-14)
    assert res.n_iter == 3 and res.info["n_cycles"] == 1
    identity = gmres(np.eye(N), b, rtol=1e-14)
    assert identity.n_iter == 1 and identity.residual_norm <= 1e-15


def test_right_preconditioner_monitors_true_residual(A, b):
    # A badly scaled M: a left preconditioner would monitor ||M r||, much smaller.
    scale = np.logspace(0, 3, N)
    As = A * scale  # column scaling
    M = np.diag(1.0 / scale)
    plain = gmres(As, b, rtol=1e-9, restart=N, maxiter=2000, warn=False)
    res = gmres(As, b, rtol=1e-9, M=M, restart=N)
    check_solution(res, As, b, rtol=1e-9)
    assert res.n_iter < plain.n_iter
    assert res.history[0] == pytest.approx(np.linalg.norm(b))
    assert res.history[-1] <= 1e-9 * np.linalg.norm(b)


@pytest.mark.parametrize("form", ["dense", "linear_operator", "callable", "ilu"])
def test_preconditioner_forms(form, A, b):
    approx = np.linalg.inv(A + 0.01 * np.random.default_rng(2).standard_normal((N, N)))
    M = {
        "dense": approx,
        "linear_operator": sla.aslinearoperator(approx),
        "callable": lambda v: approx @ v,
        "ilu": sla.LinearOperator((N, N), matvec=sla.spilu(sp.csc_matrix(A)).solve),
    }[form]
    res = gmres(A, b, rtol=1e-10, M=M)
    check_solution(res, A, b)
    assert res.n_iter <= 10


def test_scipy_oracle(A, b):
    for restart in (5, 20):
        ours = gmres(A, b, rtol=1e-10, restart=restart)
        theirs, info = sla.gmres(A, b, rtol=1e-10, restart=restart, maxiter=50)
        assert info == 0
        np.testing.assert_allclose(ours.x, theirs, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("form", ["csr", "csc", "coo", "linear_operator", "callable"])
def test_input_types(form, A, b):
    op = {
        "csr": sp.csr_matrix(A),
        "csc": sp.csc_array(A),
        "coo": sp.coo_matrix(A),
        "linear_operator": sla.aslinearoperator(A),
        "callable": lambda v: A @ v,
    }[form]
    res = gmres(op, b, rtol=1e-10, restart=5)
    check_solution(res, A, b)
    np.testing.assert_allclose(res.x, gmres(A, b, rtol=1e-10, restart=5).x, rtol=1e-10)


def test_torch_in_torch_out(A, b):
    torch = pytest.importorskip("torch")
    A_t, b_t = torch.from_numpy(A), torch.from_numpy(b)
    for op in (A_t, lambda v: A_t @ v):
        res = gmres(op, b_t, rtol=1e-10)
        assert isinstance(res.x, torch.Tensor) and res.x.dtype == torch.float64
        check_solution(res, A, b)


def test_float32_stays_float32(A, b):
    A32, b32 = A.astype(np.float32), b.astype(np.float32)
    res = gmres(A32, b32, rtol=1e-4, restart=4)
    assert res.x.dtype == np.float32 and res.converged
    assert np.linalg.norm(b - A @ res.x.astype(np.float64)) <= 1.5e-4 * np.linalg.norm(b)
    assert res.residual_norm == pytest.approx(np.linalg.norm(b32 - A32 @ res.x), rel=1e-3)


def test_multiple_rhs_equal_column_solves(A):
    B = np.random.default_rng(3).standard_normal((N, 3))
    B[:, 1] = 0.0
    res = gmres(A, B, rtol=1e-10, restart=4)
    assert res.x.shape == (N, 3) and res.converged.tolist() == [True] * 3
    assert res.history.shape == (res.n_iter.max() + 1, 3)
    assert res.info["stop_reason"] == ["converged"] * 3
    for j in range(3):
        single = gmres(A, B[:, j], rtol=1e-10, restart=4)
        np.testing.assert_allclose(res.x[:, j], single.x, rtol=1e-12, atol=1e-14)
        assert res.n_iter[j] == single.n_iter
        assert res.info["n_cycles"][j] == single.info["n_cycles"]


def test_x0_and_callback(A, b):
    exact = np.linalg.solve(A, b)
    assert gmres(A, b, x0=exact, rtol=1e-8).n_iter == 0
    seen = []
    start = exact + 0.01
    res = gmres(A, b, x0=start, rtol=1e-10, restart=3, callback=seen.append)
    check_solution(res, A, b)
    assert len(seen) == res.info["n_cycles"]
    np.testing.assert_array_equal(start, exact + 0.01)


def test_maxiter_counts_inner_iterations(A, b):
    with pytest.warns(ConvergenceWarning, match="gmres did not converge after 5"):
        res = gmres(A, b, restart=3, maxiter=5)
    assert not res.converged and res.n_iter == 5 and res.info["n_cycles"] == 2
    assert res.info["stop_reason"] == "maxiter"
    assert np.isfinite(res.x).all()
    assert res.residual_norm == pytest.approx(np.linalg.norm(b - A @ res.x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not gmres(A, b, maxiter=2, warn=False).converged


def test_singular_stalls_without_nan(b):
    with pytest.warns(ConvergenceWarning):
        res = gmres(np.zeros((N, N)), b)
    assert res.info["stop_reason"] == "stagnated"
    np.testing.assert_array_equal(res.x, 0.0)


def test_stops_at_attainable_accuracy(A, b):
    with pytest.warns(ConvergenceWarning):
        res = gmres(A, b, rtol=1e-18, restart=5)
    assert res.info["stop_reason"] == "stagnated" and res.n_iter < 10 * N
    assert res.residual_norm <= 1e-13 * np.linalg.norm(b)


def test_nan_from_operator_raises(b):
    with pytest.raises(LinAlgError, match="non-finite"):
        gmres(lambda v: np.full_like(v, np.nan), b)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"b": np.ones(N + 1)}, ValueError, "b has"),
        ({"b": np.r_[np.inf, np.ones(N - 1)]}, ValueError, "b contains Inf"),
        ({"rtol": -1e-3}, ValueError, "rtol"),
        ({"restart": 0}, ValueError, "restart"),
        ({"restart": 2.5}, TypeError, "restart"),
        ({"maxiter": -1}, ValueError, "maxiter"),
        ({"callback": 3}, TypeError, "callback"),
        ({"M": np.eye(N - 1)}, ValueError, "M"),
    ],
)
def test_bad_input(kwargs, error, match, A, b):
    args = {"b": b} | kwargs
    with pytest.raises(error, match=match):
        gmres(A, args.pop("b"), **args)


def test_non_square_rejected(b):
    with pytest.raises(ValueError, match="square"):
        gmres(np.ones((N, N - 1)), b)
