"""cg: exact answers, independent residuals, SciPy as an oracle, every input form."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from hypothesis import given
from hypothesis import strategies as st

import linalg
from linalg.solvers import cg, jacobi

from conftest import poisson2d, spd_matrix


def _relative_residual(A, x, b):
    A = A.toarray() if sp.issparse(A) else np.asarray(A)
    r = b.astype(np.float64) - A.astype(np.float64) @ x.astype(np.float64)
    return np.linalg.norm(r, axis=0) / np.linalg.norm(b, axis=0)


def test_matches_the_exact_solution(engine, dtype, rng):
    A = spd_matrix(rng, 40).astype(dtype)
    b = rng.standard_normal(40).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    res = cg(A, b, rtol=tol, engine=engine)
    assert res.converged
    assert res.x.dtype == dtype
    assert res.info["engine"] == engine
    exact = np.linalg.solve(A.astype(np.float64), b.astype(np.float64))
    # forward error <= cond(A) * relative residual, cond(A) = 100
    np.testing.assert_allclose(res.x, exact, rtol=200 * tol, atol=200 * tol)
    assert _relative_residual(A, res.x, b) <= 2 * tol
    # the reported residual is the true one, up to the drift of the recursion
    true = np.linalg.norm(b.astype(np.float64) - A.astype(np.float64) @ res.x)
    assert res.residual_norm == pytest.approx(
        true, rel=0.05, abs=10 * tol * float(np.linalg.norm(b))
    )


def test_many_right_hand_sides_equal_single_solves(engine, rng):
    A = poisson2d(12)
    B = rng.standard_normal((A.shape[0], 5))
    B[:, 2] *= 1e-3  # a column that starts closer to convergence
    res = cg(A, B, rtol=1e-10, engine=engine)
    assert res.converged.shape == (5,) and res.converged.all()
    assert res.history.shape == (res.n_iter.max() + 1, 5)
    for j in range(5):
        single = cg(A, B[:, j], rtol=1e-10, engine=engine)
        np.testing.assert_allclose(res.x[:, j], single.x, rtol=1e-9, atol=1e-12)
        assert res.n_iter[j] == single.n_iter
    assert (_relative_residual(A, res.x, B) <= 2e-10).all()


def test_engines_agree(rng):
    pytest.importorskip("numba")
    A = poisson2d(20)
    B = rng.standard_normal((A.shape[0], 3))
    ref = cg(A, B, rtol=1e-9, engine="reference")
    fast = cg(A, B, rtol=1e-9, engine="numba")
    np.testing.assert_array_equal(ref.n_iter, fast.n_iter)
    np.testing.assert_allclose(ref.x, fast.x, rtol=1e-10, atol=1e-12)


def test_scipy_is_an_oracle(engine, rng):
    A = poisson2d(16)
    b = rng.standard_normal(A.shape[0])
    ours = cg(A, b, rtol=1e-8, engine=engine)
    count = []
    theirs, info = spla.cg(A, b, rtol=1e-8, callback=lambda x: count.append(1))
    assert info == 0
    assert abs(ours.n_iter - len(count)) <= 1
    np.testing.assert_allclose(ours.x, theirs, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "form",
    ["dense", "csr", "csc", "coo", "linear_operator", "callable"],
)
def test_every_input_form(form, engine, rng):
    dense = poisson2d(8).toarray()
    A = {
        "dense": dense,
        "csr": sp.csr_array(dense),
        "csc": sp.csc_matrix(dense),
        "coo": sp.coo_array(dense),
        "linear_operator": spla.aslinearoperator(dense),
        "callable": lambda v: dense @ v,
    }[form]
    b = rng.standard_normal(64)
    res = cg(A, b, rtol=1e-10, engine=engine)
    np.testing.assert_allclose(res.x, np.linalg.solve(dense, b), rtol=1e-8)


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    A = torch.tensor(poisson2d(6).toarray())
    b = torch.ones(36, dtype=torch.float64)
    res = cg(A, b, rtol=1e-10)
    assert isinstance(res.x, torch.Tensor) and res.x.dtype == torch.float64
    np.testing.assert_allclose((A @ res.x).numpy(), b.numpy(), atol=1e-8)

    seen = []

    def hvp(v):  # a torch closure: must receive torch tensors
        seen.append(type(v))
        return A.float() @ v

    res32 = cg(hvp, b.float(), rtol=1e-5)
    assert isinstance(res32.x, torch.Tensor) and res32.x.dtype == torch.float32
    assert set(seen) == {torch.Tensor}
    B = torch.ones((36, 2), dtype=torch.float64)
    assert cg(A, B, rtol=1e-8).x.shape == (36, 2)


def test_preconditioners_reduce_iterations(engine):
    A = poisson2d(24)
    D = sp.diags_array(np.linspace(1.0, 100.0, A.shape[0]))
    A = (D @ A @ D).tocsr()  # badly scaled: Jacobi helps a lot
    b = np.ones(A.shape[0])
    plain = cg(A, b, rtol=1e-8, engine=engine, maxiter=5000)
    pre = cg(A, b, rtol=1e-8, M=jacobi(A), engine=engine)
    assert pre.converged and plain.converged
    assert pre.n_iter < plain.n_iter / 2
    assert _relative_residual(A, pre.x, b) <= 2e-8


def test_x0_callback_and_check_every(engine, rng):
    A = poisson2d(10)
    b = rng.standard_normal(100)
    exact = spla.spsolve(A.tocsc(), b)
    res = cg(A, b, x0=exact, rtol=1e-8, engine=engine)
    assert res.n_iter == 0 and res.converged
    seen = []
    res = cg(A, b, rtol=1e-8, callback=lambda x: seen.append(x.copy()), engine=engine)
    assert len(seen) == res.n_iter
    np.testing.assert_array_equal(seen[-1], res.x)
    coarse = cg(A, b, rtol=1e-8, check_every=7, engine=engine)
    # tested only every 7th iteration: stops at the first multiple of 7 past convergence
    assert coarse.converged
    assert coarse.n_iter % 7 == 0
    assert res.n_iter <= coarse.n_iter < res.n_iter + 7


def test_zero_right_hand_side(engine):
    res = cg(np.eye(3), np.zeros((3, 2)), engine=engine)
    assert res.converged.all() and (res.n_iter == 0).all()
    np.testing.assert_array_equal(res.x, 0.0)


def test_not_converged_warns_and_returns_finite(engine):
    A = poisson2d(16)
    b = np.ones(A.shape[0])
    with pytest.warns(linalg.ConvergenceWarning, match="cg did not converge"):
        res = cg(A, b, maxiter=3, engine=engine)
    assert res.converged is False and res.n_iter == 3
    assert np.isfinite(res.x).all() and np.isfinite(res.residual_norm)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cg(A, b, maxiter=3, warn=False, engine=engine).converged is False


def test_indefinite_matrix_is_a_breakdown(engine):
    A = np.diag([1.0, -1.0, 2.0])
    with pytest.raises(linalg.LinAlgError, match="not positive definite"):
        cg(A, np.ones(3), engine=engine)


def test_nan_from_an_operator_is_a_breakdown(engine):
    def broken(v):
        out = v.copy()
        out[0] = np.nan
        return out

    with pytest.raises(linalg.LinAlgError, match="NaN or Inf"):
        cg(broken, np.ones(4), engine=engine)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rtol": -1.0}, ValueError, "rtol must be >= 0"),
        ({"maxiter": 0}, ValueError, "maxiter must be >= 1"),
        ({"check_every": 0}, ValueError, "check_every must be >= 1"),
        ({"callback": 3}, TypeError, "callback must be callable"),
        ({"x0": np.ones(4)}, ValueError, "x0 must have shape"),
        ({"M": np.eye(4)}, ValueError, "M must have shape"),
        ({"engine": "fortran"}, ValueError, "engine must be"),
        ({"warn": "yes"}, TypeError, "warn must be True or False"),
    ],
)
def test_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        cg(np.eye(3), np.ones(3), **kwargs)


def test_shape_mismatch_names_both():
    with pytest.raises(ValueError, match="b has 4 rows but A has shape"):
        cg(np.eye(3), np.ones(4))
    with pytest.raises(ValueError, match="A must be square"):
        cg(np.ones((3, 2)), np.ones(3))


@given(
    n=st.integers(1, 30),
    k=st.integers(1, 4),
    log_cond=st.floats(0.0, 4.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_every_column_meets_its_tolerance(n, k, log_cond, seed):
    rng = np.random.default_rng(seed)
    A = spd_matrix(rng, n, cond=10.0**log_cond)
    B = rng.standard_normal((n, k))
    res = cg(A, B, rtol=1e-9, maxiter=20 * n + 20)
    true = np.linalg.norm(B - A @ res.x, axis=0)
    assert res.converged.all()
    assert (true <= 1e-8 * np.linalg.norm(B, axis=0)).all()
    np.testing.assert_allclose(res.residual_norm, true, rtol=0.5, atol=1e-9)
