"""Tests for linalg.sketch.sketched_lstsq: against numpy.linalg.lstsq on problems
with condition number 1e8, sparse and LinearOperator input, the SVD fallback for
rank-deficient A, dtypes, reproducibility and the bad-input contract."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from linalg import ConvergenceWarning
from linalg.sketch._kinds import SKETCH_KINDS, make_sketch
from linalg.sketch._lstsq import sketched_lstsq
from linalg.solvers import lsqr

M_ROWS, N_COLS, KAPPA = 2000, 50, 1e8
RESIDUAL_FACTOR = 1 + 1e-8
# How far above the optimal residual float32 may land (relative), keyed by dtype.
RESIDUAL_RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-8}


def problem(m=M_ROWS, n=N_COLS, kappa=KAPPA, *, noise=1.0, rank=None, seed=0):
    """``A = U diag(s) Vᵀ`` with log-spaced ``s`` in [1/kappa, 1] (the last ``n - rank``
    set to zero), ``b = A x + r`` with ``r ⊥ range(A)`` of norm ``noise``; returns
    A, b and the minimum-norm least-squares solution x."""
    gen = np.random.default_rng(seed)
    U, _ = np.linalg.qr(gen.standard_normal((m, n)))
    V, _ = np.linalg.qr(gen.standard_normal((n, n)))
    s = np.geomspace(1.0, 1.0 / kappa, n)
    x = gen.standard_normal(n)
    if rank is not None:
        s[rank:] = 0.0
        x = V[:, :rank] @ (V[:, :rank].T @ x)
    A = (U * s) @ V.T
    r = gen.standard_normal(m)
    r -= U @ (U.T @ r)
    return A, A @ x + noise * r / np.linalg.norm(r), x


def best_residual(A, b):
    A = A.toarray() if sp.issparse(A) else np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.linalg.norm(A @ np.linalg.lstsq(A, b)[0] - b, axis=0)


def forward_bound(A, b, x, kappa):
    """The perturbation bound a backward-stable solver meets:
    ``||δx|| / ||x|| <~ eps (κ + κ² ||r|| / (||A|| ||x||))``."""
    eps = np.finfo(np.float64).eps
    r = np.linalg.norm(b - A @ x)
    return eps * (kappa + kappa**2 * r / (np.linalg.norm(A, 2) * np.linalg.norm(x)))


@pytest.mark.parametrize(
    ("sketch", "noise"),
    [(kind, 1.0) for kind in sorted(SKETCH_KINDS)] + [("countsketch", 1e-6)],
)
def test_residual_and_solution_match_lstsq(sketch, noise):
    A, b, x_true = problem(noise=noise)
    res = sketched_lstsq(A, b, sketch=sketch, rng=1)
    best = best_residual(A, b)
    assert res.converged and res.info["preconditioner"] == "qr"
    assert res.residual_norm <= RESIDUAL_FACTOR * best
    assert res.residual_norm == pytest.approx(np.linalg.norm(A @ res.x - b), rel=1e-12)
    x_lstsq = np.linalg.lstsq(A, b)[0]
    bound = forward_bound(A, b, x_true, KAPPA)
    assert np.linalg.norm(x_lstsq - x_true) <= bound * np.linalg.norm(x_true)  # a fair bound
    assert np.linalg.norm(res.x - x_true) <= bound * np.linalg.norm(x_true)
    assert res.history.shape == (res.n_iter + 1,)


def test_default_sketch_is_countsketch_and_info_is_complete():
    A, b, _ = problem()
    res = sketched_lstsq(A, b, oversampling=3.5, rng=2)
    info = res.info
    assert info["sketch_size"] == math.ceil(3.5 * N_COLS)
    assert info["rank"] == N_COLS and info["preconditioner"] == "qr"
    assert info["stop_reason"] in ("least squares", "residual")
    for key in ("time_sketch", "time_factorization", "time_iterations"):
        assert isinstance(info[key], float) and info[key] >= 0.0
    S = make_sketch("countsketch", info["sketch_size"], M_ROWS, rng=2)
    same = sketched_lstsq(A, b, sketch=S, oversampling=3.5)
    np.testing.assert_array_equal(same.x, res.x)


def test_far_fewer_iterations_than_unpreconditioned_lsqr():
    A, b, _ = problem()
    res = sketched_lstsq(A, b, rng=3)
    plain = lsqr(A, b, atol=1e-12, btol=1e-12, conlim=np.inf, maxiter=20 * N_COLS, warn=False)
    assert res.n_iter <= 40
    assert plain.n_iter >= 8 * res.n_iter
    assert plain.residual_norm >= res.residual_norm * (1 - 1e-12)


def test_consistent_system_is_solved_exactly():
    A, b, x_true = problem(kappa=1e4, noise=0.0)
    res = sketched_lstsq(A, b, rng=4)
    assert res.converged
    assert res.residual_norm <= 1e-12 * np.linalg.norm(b)
    np.testing.assert_allclose(res.x, x_true, rtol=1e-8)


def test_several_right_hand_sides():
    A, b, _ = problem(kappa=1e4)
    B = np.column_stack([b, np.random.default_rng(5).standard_normal((M_ROWS, 2))])
    res = sketched_lstsq(A, B, rng=5)
    assert res.x.shape == (N_COLS, 3)
    assert res.converged.shape == res.n_iter.shape == res.residual_norm.shape == (3,)
    assert res.converged.all()
    assert np.all(res.residual_norm <= RESIDUAL_FACTOR * best_residual(A, B))
    single = sketched_lstsq(A, B[:, 1], rng=5)
    assert np.linalg.norm(res.x[:, 1] - single.x) <= 1e-8 * np.linalg.norm(single.x)


def test_sparse_input():
    gen = np.random.default_rng(6)
    m, n = 5000, 40
    G = sp.random_array((m, n), density=0.05, rng=gen, format="csr")
    G = G + sp.eye_array(m, n)  # full column rank
    A = (G @ sp.diags_array(np.geomspace(1.0, 1e-6, n))).tocsr()
    b = gen.standard_normal(m)
    res = sketched_lstsq(A, b, rng=6)
    assert res.converged
    assert res.residual_norm <= RESIDUAL_FACTOR * best_residual(A, b)
    x_lstsq = np.linalg.lstsq(A.toarray(), b)[0]
    np.testing.assert_allclose(res.x, x_lstsq, rtol=1e-6)


def test_linear_operator_input_matches_dense():
    A, b, _ = problem(kappa=1e6)
    dense = sketched_lstsq(A, b, sketch="gaussian", rng=7)
    op = sketched_lstsq(sla.aslinearoperator(A), b, sketch="gaussian", rng=7)
    assert op.converged
    assert op.residual_norm <= RESIDUAL_FACTOR * best_residual(A, b)
    # The two paths multiply in different orders (a dense rmatmat is (Vᵀ A)ᵀ, SciPy's
    # operator computes Aᵀ V), so the iterates differ by rounding; two converged solutions
    # of a κ = 1e6 problem agree to about κ times the backward error (~1e-11 here), as
    # each agrees with numpy.linalg.lstsq (measured: 2e-6 and 8e-7).
    x_lstsq = np.linalg.lstsq(A, b, rcond=None)[0]
    for x in (op.x, dense.x):
        assert np.linalg.norm(x - x_lstsq) <= 1e-5 * np.linalg.norm(x_lstsq)


def test_rank_deficient_gives_minimum_norm_solution():
    rank = 35
    A, b, x_min = problem(rank=rank)
    res = sketched_lstsq(A, b, rng=8)
    assert res.converged
    assert res.info["preconditioner"] == "svd" and res.info["rank"] == rank
    assert res.residual_norm <= RESIDUAL_FACTOR * best_residual(A, b)
    kappa = KAPPA ** ((rank - 1) / (N_COLS - 1))  # of the nonzero singular values
    bound = forward_bound(A, b, x_min, kappa) * np.linalg.norm(x_min)
    x_lstsq = np.linalg.lstsq(A, b)[0]  # the minimum-norm solution
    assert np.linalg.norm(x_lstsq - x_min) <= bound
    assert np.linalg.norm(res.x - x_min) <= bound
    # A least-squares solution with a null-space component would be far away.
    assert np.linalg.norm(res.x) <= np.linalg.norm(x_min) * (1 + 1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    A, b, _ = problem(kappa=1e3)
    A, b = A.astype(dtype), b.astype(dtype)
    res = sketched_lstsq(A, b, rng=9)
    assert res.converged and res.x.dtype == dtype
    best = best_residual(A, b)
    assert res.residual_norm <= (1 + RESIDUAL_RTOL[np.dtype(dtype)]) * best


def test_integer_input_promotes_to_float64():
    gen = np.random.default_rng(10)
    A = gen.integers(-5, 6, size=(300, 10))
    b = gen.integers(-5, 6, size=300)
    res = sketched_lstsq(A, b, rng=10)
    assert res.x.dtype == np.float64
    np.testing.assert_allclose(res.x, np.linalg.lstsq(A.astype(float), b, rcond=None)[0])


def test_reproducible_with_the_same_rng():
    A, b, _ = problem()
    one = sketched_lstsq(A, b, rng=11)
    two = sketched_lstsq(A, b, rng=np.int64(11))
    other = sketched_lstsq(A, b, rng=12)
    np.testing.assert_array_equal(one.x, two.x)
    assert not np.array_equal(one.x, other.x)
    gen_a, gen_b = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(
        sketched_lstsq(A, b, rng=gen_a).x, sketched_lstsq(A, b, rng=gen_b).x
    )


def test_inputs_not_modified_and_read_only_accepted():
    A, b, _ = problem()
    A_copy, b_copy = A.copy(), b.copy()
    A.flags.writeable = False
    b.flags.writeable = False
    A_strided = np.asfortranarray(A)
    sketched_lstsq(A, b, rng=13)
    sketched_lstsq(A_strided, b, rng=13)
    np.testing.assert_array_equal(A, A_copy)
    np.testing.assert_array_equal(b, b_copy)


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    A, b, _ = problem(kappa=1e4)
    res = sketched_lstsq(torch.from_numpy(A), torch.from_numpy(b), rng=14)
    assert isinstance(res.x, torch.Tensor) and res.x.dtype == torch.float64
    np.testing.assert_allclose(res.x.numpy(), sketched_lstsq(A, b, rng=14).x)


def test_non_convergence_warns_and_reports():
    A, b, _ = problem()
    with pytest.warns(ConvergenceWarning, match="sketched_lstsq did not converge"):
        res = sketched_lstsq(A, b, maxiter=2, rng=15)
    assert res.converged is False and res.n_iter == 2
    quiet = sketched_lstsq(A, b, maxiter=2, rng=15, warn=False)
    assert quiet.converged is False
    assert np.isfinite(quiet.x).all()


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"A": np.ones((3, 5)), "b": np.ones(3)}, ValueError, "A must have at least"),
        ({"b": np.ones(M_ROWS - 1)}, ValueError, "b must have 2000 rows"),
        ({"b": np.ones((M_ROWS, 2, 2))}, ValueError, "b must be"),
        ({"oversampling": 0.5}, ValueError, "oversampling must be >= 1"),
        ({"oversampling": "4"}, TypeError, "oversampling"),
        ({"rtol": -1e-3}, ValueError, "rtol"),
        ({"maxiter": 0}, ValueError, "maxiter"),
        ({"warn": 1}, TypeError, "warn"),
        ({"sketch": "nonsense"}, ValueError, "sketch must be"),
        ({"rng": "seed"}, TypeError, "rng"),
        ({"nan_A": True}, ValueError, "A contains NaN"),
        ({"nan_b": True}, ValueError, "b contains NaN"),
        ({"A": lambda v: v}, TypeError, "A must be a matrix"),
        ({"A": np.ones((M_ROWS, 3), dtype=complex)}, TypeError, "A is complex"),
    ],
)
def test_bad_input(change, error, match):
    A, b, _ = problem()
    kwargs = {"A": A, "b": b, "rng": 0}
    if change.pop("nan_A", False):
        kwargs["A"] = A.copy()
        kwargs["A"][3, 4] = np.nan
    if change.pop("nan_b", False):
        kwargs["b"] = b.copy()
        kwargs["b"][7] = np.nan
    kwargs.update(change)
    with pytest.raises(error, match=match):
        sketched_lstsq(kwargs.pop("A"), kwargs.pop("b"), **kwargs)


def test_sketch_operator_of_wrong_shape_is_refused():
    A, b, _ = problem()
    with pytest.raises(ValueError, match="sketch must have shape"):
        sketched_lstsq(A, b, sketch=make_sketch("countsketch", 10, M_ROWS, rng=0))
