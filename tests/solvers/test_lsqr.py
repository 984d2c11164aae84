"""Tests for linalg.solvers.lsqr: against numpy.linalg.lstsq, the damped normal
equations and SciPy's lsqr; right preconditioning; stopping reasons."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from linalg import ConvergenceWarning, LinAlgError
from linalg._core.operators import as_operator
from linalg.solvers import lsqr

M_ROWS, N_COLS = 50, 20
TIGHT = {"atol": 1e-12, "btol": 1e-12}


@pytest.fixture
def A() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((M_ROWS, N_COLS))


@pytest.fixture
def b() -> np.ndarray:
    return np.random.default_rng(1).standard_normal(M_ROWS)


def check_reported(res, A, b, damp=0.0):
    """residual_norm and arnorm agree with an independent recomputation from x."""
    x = np.asarray(res.x, dtype=np.float64)
    r = b - A @ x
    assert res.residual_norm == pytest.approx(np.linalg.norm(r), rel=1e-6)
    gradient = A.T @ r - damp**2 * x
    scale = 1e-13 * np.linalg.norm(A) * (np.linalg.norm(b) + np.linalg.norm(A) * np.linalg.norm(x))
    assert res.info["arnorm"] == pytest.approx(np.linalg.norm(gradient), rel=1e-3, abs=scale)


def test_overdetermined_matches_lstsq(A, b):
    res = lsqr(A, b, **TIGHT)
    assert res.converged and res.info["stop_reason"] == "least squares"
    np.testing.assert_allclose(res.x, np.linalg.lstsq(A, b)[0], rtol=1e-9, atol=1e-11)
    check_reported(res, A, b)
    assert res.info["arnorm"] <= 1e-10 * np.linalg.norm(A) * res.residual_norm
    assert res.history.shape == (res.n_iter + 1,)
    assert res.history[0] == pytest.approx(np.linalg.norm(b))
    assert res.history[-1] == pytest.approx(res.residual_norm, rel=1e-8)
    sv = np.linalg.svd(A, compute_uv=False)
    assert res.info["anorm"] == pytest.approx(np.linalg.norm(A), rel=0.1)
    assert 0.5 * sv[0] / sv[-1] <= res.info["acond"] <= 5 * np.linalg.norm(A) / sv[-1]


def test_underdetermined_gives_minimum_norm(A, b):
    At, bt = A.T, b[:N_COLS]
    res = lsqr(At, bt, **TIGHT)
    assert res.converged and res.info["stop_reason"] == "residual"
    np.testing.assert_allclose(res.x, np.linalg.pinv(At) @ bt, rtol=1e-9, atol=1e-11)
    assert res.residual_norm <= 1e-10 * np.linalg.norm(bt)
    check_reported(res, At, bt)


@pytest.mark.parametrize("damp", [0.1, 2.0])
def test_damped_matches_normal_equations(damp, A, b):
    res = lsqr(A, b, damp=damp, **TIGHT)
    expected = np.linalg.solve(A.T @ A + damp**2 * np.eye(N_COLS), A.T @ b)
    assert res.converged
    np.testing.assert_allclose(res.x, expected, rtol=1e-9, atol=1e-11)
    check_reported(res, A, b, damp)
    objective = np.sqrt(res.residual_norm**2 + damp**2 * np.linalg.norm(res.x) ** 2)
    assert res.history[-1] == pytest.approx(objective, rel=1e-8)


def test_right_preconditioner_from_qr(A, b):
    scaled = A * np.logspace(0, 5, N_COLS)  # cond ~ 1e5
    _, R = np.linalg.qr(scaled)
    plain = lsqr(scaled, b, warn=False, **TIGHT)
    res = lsqr(scaled, b, M=np.linalg.inv(R), **TIGHT)
    assert res.converged and res.n_iter <= 3 < plain.n_iter
    assert res.info["acond"] == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(res.x, np.linalg.lstsq(scaled, b)[0], rtol=1e-8)
    check_reported(res, scaled, b)


@pytest.mark.parametrize("form", ["linear_operator", "dense", "operator", "triangular_solve"])
def test_damped_right_preconditioner(form, A, b):
    # Precondition the damped problem with R from QR([A; damp I]): same objective.
    damp = 0.5
    _, R = np.linalg.qr(np.vstack([A, damp * np.eye(N_COLS)]))
    Rinv = np.linalg.inv(R)
    M = {
        "linear_operator": sla.aslinearoperator(Rinv),
        "dense": Rinv,
        "operator": as_operator(Rinv, "M"),
        "triangular_solve": sla.LinearOperator(
            (N_COLS, N_COLS),
            matvec=lambda v: np.linalg.solve(R, v),
            rmatvec=lambda v: np.linalg.solve(R.T, v),
        ),
    }[form]
    res = lsqr(A, b, damp=damp, M=M, **TIGHT)
    expected = np.linalg.solve(A.T @ A + damp**2 * np.eye(N_COLS), A.T @ b)
    assert res.converged and res.n_iter <= 3
    np.testing.assert_allclose(res.x, expected, rtol=1e-9, atol=1e-11)
    check_reported(res, A, b, damp)


@pytest.mark.parametrize("damp", [0.0, 0.3])
def test_scipy_oracle(damp, A, b):
    ours = lsqr(A, b, damp=damp, **TIGHT)
    theirs = sla.lsqr(A, b, damp=damp, atol=1e-12, btol=1e-12)
    np.testing.assert_allclose(ours.x, theirs[0], rtol=1e-9, atol=1e-11)
    assert ours.residual_norm == pytest.approx(theirs[3], rel=1e-8)
    assert abs(ours.n_iter - theirs[2]) <= 2


@pytest.mark.parametrize("form", ["csr", "csc", "coo", "linear_operator"])
def test_input_types(form, A, b):
    op = {
        "csr": sp.csr_matrix(A),
        "csc": sp.csc_array(A),
        "coo": sp.coo_matrix(A),
        "linear_operator": sla.aslinearoperator(A),
    }[form]
    res = lsqr(op, b, **TIGHT)
    np.testing.assert_allclose(res.x, lsqr(A, b, **TIGHT).x, rtol=1e-10, atol=1e-12)
    check_reported(res, A, b)


def test_callable_operators_are_refused_clearly(A, b):
    with pytest.raises(TypeError, match=r"plain callable gives only A v"):
        lsqr(lambda v: A @ v, b)
    with pytest.raises(TypeError, match=r"plain callable gives only M v"):
        lsqr(A, b, M=lambda v: v)
    no_adjoint = sla.LinearOperator(A.shape, matvec=lambda v: A @ v)
    with pytest.raises(TypeError, match=r"lsqr needs Aᵀ v, but A has no rmatvec"):
        lsqr(no_adjoint, b)
    no_adjoint_m = sla.LinearOperator((N_COLS, N_COLS), matvec=lambda v: v)
    with pytest.raises(TypeError, match=r"lsqr needs Mᵀ v, but M has no rmatvec"):
        lsqr(A, b, M=no_adjoint_m)


def test_torch_in_torch_out(A, b):
    torch = pytest.importorskip("torch")
    res = lsqr(torch.from_numpy(A), torch.from_numpy(b), **TIGHT)
    assert isinstance(res.x, torch.Tensor) and res.x.dtype == torch.float64
    np.testing.assert_allclose(res.x.numpy(), np.linalg.lstsq(A, b)[0], rtol=1e-9, atol=1e-11)


def test_float32_stays_float32(A, b):
    A32, b32 = A.astype(np.float32), b.astype(np.float32)
    res = lsqr(A32, b32, atol=1e-5, btol=1e-5)
    assert res.x.dtype == np.float32 and res.converged
    expected = np.linalg.lstsq(A, b)[0]
    assert np.linalg.norm(res.x - expected) <= 1e-4 * np.linalg.norm(expected)
    assert res.residual_norm == pytest.approx(np.linalg.norm(b32 - A32 @ res.x), rel=1e-4)


def test_multiple_rhs_equal_column_solves(A):
    B = np.random.default_rng(2).standard_normal((M_ROWS, 3))
    B[:, 2] = 0.0
    res = lsqr(A, B, damp=0.1, **TIGHT)
    assert res.x.shape == (N_COLS, 3) and res.converged.tolist() == [True] * 3
    assert res.history.shape == (res.n_iter.max() + 1, 3)
    assert res.info["stop_reason"][2] == "residual" and res.n_iter[2] == 0
    for j in range(3):
        single = lsqr(A, B[:, j], damp=0.1, **TIGHT)
        np.testing.assert_allclose(res.x[:, j], single.x, rtol=1e-12, atol=1e-14)
        assert res.n_iter[j] == single.n_iter
        assert res.info["stop_reason"][j] == single.info["stop_reason"]
        assert res.info["arnorm"][j] == pytest.approx(single.info["arnorm"])


def test_x0_and_callback(A, b):
    expected = np.linalg.lstsq(A, b)[0]
    start = expected + 0.1
    seen = []
    res = lsqr(A, b, x0=start, callback=lambda x: seen.append(x.copy()), **TIGHT)
    assert res.converged and len(seen) == res.n_iter
    np.testing.assert_allclose(res.x, expected, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(seen[-1], res.x)
    np.testing.assert_array_equal(start, expected + 0.1)
    assert lsqr(A, b, x0=expected, atol=1e-8, btol=1e-8).n_iter <= 1


def test_zero_gradient_start(A):
    # b orthogonal to the range of A: x = 0 is the least-squares solution.
    Q, _ = np.linalg.qr(A, mode="complete")
    res = lsqr(A, Q[:, -1])
    assert res.converged and res.n_iter <= 1 and res.info["stop_reason"] == "least squares"
    assert np.linalg.norm(res.x) <= 1e-12
    exact = lsqr(np.ones((3, 2)), np.array([1.0, -1.0, 0.0]))  # Aᵀ b = 0 exactly
    assert exact.n_iter == 0 and exact.info["stop_reason"] == "least squares"
    np.testing.assert_array_equal(exact.x, 0.0)


def test_maxiter_warns(A, b):
    with pytest.warns(ConvergenceWarning, match="lsqr did not converge after 2"):
        res = lsqr(A, b, maxiter=2)
    assert not res.converged and res.info["stop_reason"] == "maxiter"
    assert np.isfinite(res.x).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not lsqr(A, b, maxiter=2, warn=False).converged


def test_conlim_stop_is_not_converged(A, b):
    ill = A * np.logspace(0, 8, N_COLS)
    with pytest.warns(ConvergenceWarning, match="conlim"):
        res = lsqr(ill, b, conlim=1e3, **TIGHT)
    assert not res.converged and res.info["stop_reason"] == "conlim"
    assert res.info["acond"] >= 1e3
    assert np.isfinite(res.x).all()
    assert lsqr(ill, b, conlim=np.inf, maxiter=5, warn=False).info["stop_reason"] == "maxiter"


def test_nan_from_operator_raises(A, b):
    op = sla.LinearOperator(
        A.shape, matvec=lambda v: np.full(M_ROWS, np.nan), rmatvec=lambda v: A.T @ v
    )
    with pytest.raises(LinAlgError, match="non-finite"):
        lsqr(op, b)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"b": np.ones(M_ROWS + 1)}, ValueError, "b has"),
        ({"b": np.r_[np.nan, np.ones(M_ROWS - 1)]}, ValueError, "b contains NaN"),
        ({"damp": -0.1}, ValueError, "damp"),
        ({"atol": -1.0}, ValueError, "atol"),
        ({"btol": -1.0}, ValueError, "btol"),
        ({"conlim": 0.5}, ValueError, "conlim"),
        ({"maxiter": 0}, ValueError, "maxiter"),
        ({"x0": np.ones(M_ROWS)}, ValueError, "x0"),
        ({"M": np.eye(M_ROWS)}, ValueError, "M"),
        ({"warn": "yes"}, TypeError, "warn"),
    ],
)
def test_bad_input(kwargs, error, match, A, b):
    args = {"b": b} | kwargs
    with pytest.raises(error, match=match):
        lsqr(A, args.pop("b"), **args)
