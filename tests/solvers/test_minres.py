"""Tests for linalg.solvers.minres: against numpy.linalg.solve and SciPy's minres,
on symmetric definite and indefinite systems, with shifts and preconditioners."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from linalg import ConvergenceWarning, LinAlgError
from linalg.solvers import jacobi, minres

N = 30


def symmetric(n: int, eigenvalues: np.ndarray, seed: int = 0) -> np.ndarray:
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    A = (Q * eigenvalues) @ Q.T
    return (A + A.T) / 2


@pytest.fixture
def spd() -> np.ndarray:
    return symmetric(N, np.linspace(1.0, 50.0, N))


@pytest.fixture
def indefinite() -> np.ndarray:
    return symmetric(N, np.concatenate([-np.linspace(1, 8, N // 2), np.linspace(0.5, 20, N // 2)]))


@pytest.fixture
def b() -> np.ndarray:
    return np.random.default_rng(1).standard_normal(N)


def true_residual(A, x, b, shift=0.0):
    x = np.asarray(x, dtype=np.float64)
    return np.linalg.norm(b - A @ x + shift * x)


def check_solution(res, A, b, *, shift=0.0, rtol=1e-10):
    """Converged, residual recomputed independently, and residual_norm honest
    (equal up to the rounding of ``b - A x``)."""
    assert res.converged
    r = true_residual(A, res.x, b, shift)
    assert r <= rtol * np.linalg.norm(b) * 1.001
    rounding = 1e-14 * (np.linalg.norm(b) + np.linalg.norm(A) * np.linalg.norm(res.x))
    assert res.residual_norm == pytest.approx(r, rel=1e-3, abs=rounding)


@pytest.mark.parametrize("matrix", ["spd", "indefinite"])
def test_matches_dense_solve(matrix, b, request):
    A = request.getfixturevalue(matrix)
    res = minres(A, b, rtol=1e-10)
    check_solution(res, A, b)
    np.testing.assert_allclose(res.x, np.linalg.solve(A, b), rtol=1e-7, atol=1e-9)
    assert res.history.shape == (res.n_iter + 1,)
    assert res.history[0] == pytest.approx(np.linalg.norm(b))
    assert res.info == {"engine": "reference", "stop_reason": "converged"}


@pytest.mark.parametrize("shift", [0.75, -3.3, 10.0])
def test_shift(shift, indefinite, b):
    res = minres(indefinite, b, shift=shift, rtol=1e-10)
    check_solution(res, indefinite, b, shift=shift)
    expected = np.linalg.solve(indefinite - shift * np.eye(N), b)
    np.testing.assert_allclose(res.x, expected, rtol=1e-7, atol=1e-9)


def badly_scaled_spd() -> np.ndarray:
    d = np.logspace(0, 4, N)
    return symmetric(N, np.linspace(1.0, 3.0, N), seed=3) * np.sqrt(np.outer(d, d))


@pytest.mark.parametrize("form", ["dense", "linear_operator", "jacobi", "callable"])
def test_jacobi_preconditioner(form, b):
    A = badly_scaled_spd()
    inv_diag = 1.0 / np.diag(A)
    M = {
        "dense": np.diag(inv_diag),
        "linear_operator": sla.aslinearoperator(np.diag(inv_diag)),
        "jacobi": jacobi(A),
        "callable": lambda v: inv_diag * v,
    }[form]
    plain = minres(A, b, rtol=1e-10, maxiter=2000)
    res = minres(A, b, rtol=1e-10, M=M)
    check_solution(res, A, b)
    assert res.n_iter < plain.n_iter
    np.testing.assert_allclose(res.x, np.linalg.solve(A, b), rtol=1e-6)


def test_preconditioned_indefinite_residual_is_two_norm(indefinite, b):
    # The preconditioned recurrence tracks ||r||_M; the reported history is the 2-norm.
    M = np.diag(np.linspace(0.01, 1.0, N))
    res = minres(indefinite, b, rtol=1e-9, M=M)
    check_solution(res, indefinite, b, rtol=1e-9)
    assert res.history[-1] <= 1e-9 * np.linalg.norm(b) * 1.01


@pytest.mark.parametrize("matrix", ["spd", "indefinite"])
def test_scipy_oracle(matrix, b, request):
    A = request.getfixturevalue(matrix)
    ours = minres(A, b, rtol=1e-10, shift=0.3)
    theirs, info = sla.minres(A, b, rtol=1e-10, shift=0.3)
    assert info == 0
    np.testing.assert_allclose(ours.x, theirs, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("form", ["csr", "csc", "coo", "linear_operator", "callable"])
def test_input_types(form, indefinite, b):
    A = {
        "csr": sp.csr_matrix(indefinite),
        "csc": sp.csc_array(indefinite),
        "coo": sp.coo_matrix(indefinite),
        "linear_operator": sla.aslinearoperator(indefinite),
        "callable": lambda v: indefinite @ v,
    }[form]
    res = minres(A, b, rtol=1e-10)
    check_solution(res, indefinite, b)
    np.testing.assert_allclose(res.x, minres(indefinite, b, rtol=1e-10).x, rtol=1e-10)


def test_torch_in_torch_out(indefinite, b):
    torch = pytest.importorskip("torch")
    A_t, b_t = torch.from_numpy(indefinite), torch.from_numpy(b)
    for A in (A_t, lambda v: A_t @ v):
        res = minres(A, b_t, rtol=1e-10)
        assert isinstance(res.x, torch.Tensor) and res.x.dtype == torch.float64
        check_solution(res, indefinite, b, rtol=1e-10)


def test_float32_stays_float32(indefinite, b):
    A32, b32 = indefinite.astype(np.float32), b.astype(np.float32)
    res = minres(A32, b32, rtol=1e-4)
    assert res.x.dtype == np.float32
    assert res.converged
    r = np.linalg.norm(b - indefinite @ res.x.astype(np.float64))
    assert r <= 1.5e-4 * np.linalg.norm(b)
    assert res.residual_norm == pytest.approx(np.linalg.norm(b32 - A32 @ res.x), rel=1e-3)


def test_multiple_rhs_equal_column_solves(indefinite):
    B = np.random.default_rng(2).standard_normal((N, 3))
    B[:, 2] = 0.0
    res = minres(indefinite, B, rtol=1e-10)
    assert res.x.shape == (N, 3)
    assert res.converged.tolist() == [True, True, True]
    assert res.n_iter[2] == 0
    assert res.history.shape == (res.n_iter.max() + 1, 3)
    for j in range(3):
        single = minres(indefinite, B[:, j], rtol=1e-10)
        np.testing.assert_allclose(res.x[:, j], single.x, rtol=1e-12, atol=1e-14)
        assert res.n_iter[j] == single.n_iter
        assert res.residual_norm[j] == pytest.approx(single.residual_norm)
        np.testing.assert_array_equal(res.history[res.n_iter[j] :, j], single.history[-1])


def test_x0(indefinite, b):
    exact = np.linalg.solve(indefinite, b)
    assert minres(indefinite, b, x0=exact, rtol=1e-8).n_iter == 0
    start = exact + 1e-3 * np.ones(N)
    res = minres(indefinite, b, x0=start, rtol=1e-10)
    check_solution(res, indefinite, b)
    assert res.history[0] == pytest.approx(true_residual(indefinite, start, b))


def test_callback_gets_iterates(indefinite, b):
    seen = []
    res = minres(indefinite, b, rtol=1e-8, callback=lambda x: seen.append(x.copy()))
    assert len(seen) == res.n_iter
    np.testing.assert_allclose(seen[-1], res.x)


def test_nonconvergence_warns_and_returns_finite(indefinite, b):
    with pytest.warns(ConvergenceWarning, match="minres did not converge"):
        res = minres(indefinite, b, maxiter=3)
    assert not res.converged and res.n_iter == 3
    assert np.isfinite(res.x).all()
    assert res.residual_norm == pytest.approx(true_residual(indefinite, res.x, b))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not minres(indefinite, b, maxiter=3, warn=False).converged


def test_inputs_not_modified(indefinite, b):
    A, b0, x0 = indefinite.copy(), b.copy(), np.ones(N)
    for arr in (A, b0, x0):
        arr.flags.writeable = False
    minres(A, b0, x0=x0, M=np.eye(N))
    np.testing.assert_array_equal(x0, 1.0)
    np.testing.assert_array_equal(b0, b)


def test_not_spd_preconditioner_raises(indefinite, b):
    with pytest.raises(LinAlgError, match="M is not positive definite"):
        minres(indefinite, b, M=-np.eye(N))
    with pytest.raises(LinAlgError, match="M is not positive definite"):
        minres(indefinite, b, M=np.diag(np.r_[-1.0, np.ones(N - 1)]))


def test_singular_system_stops_unconverged(b):
    A = np.diag(np.r_[0.0, np.linspace(1.0, 2.0, N - 1)])
    with pytest.warns(ConvergenceWarning, match="singular"):
        res = minres(A, np.r_[1.0, np.zeros(N - 1)])
    assert not res.converged and res.info["stop_reason"] == "singular"
    assert np.isfinite(res.x).all()
    with pytest.warns(ConvergenceWarning):
        res = minres(A, b, maxiter=200)
    assert not res.converged and np.isfinite(res.x).all()
    assert res.residual_norm >= abs(b[0]) * (1 - 1e-12)


def test_stops_at_attainable_accuracy(indefinite, b):
    with pytest.warns(ConvergenceWarning):
        res = minres(indefinite, b, rtol=1e-17)
    assert res.info["stop_reason"] == "stagnated" and res.n_iter < 5 * N
    assert res.residual_norm <= 1e-13 * np.linalg.norm(b)


def test_nan_from_operator_raises(b):
    with pytest.raises(LinAlgError, match="non-finite"):
        minres(lambda v: np.full_like(v, np.nan), b)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"b": np.ones(N + 1)}, ValueError, "b has"),
        ({"b": np.r_[np.nan, np.ones(N - 1)]}, ValueError, "b contains NaN"),
        ({"rtol": -1.0}, ValueError, "rtol"),
        ({"atol": -1.0}, ValueError, "atol"),
        ({"maxiter": 0}, ValueError, "maxiter"),
        ({"shift": "1"}, TypeError, "shift"),
        ({"shift": np.inf}, ValueError, "shift"),
        ({"x0": np.ones(N + 1)}, ValueError, "x0"),
        ({"M": np.eye(N + 1)}, ValueError, "M"),
        ({"engine": "numba"}, TypeError, "numba"),
    ],
)
def test_bad_input(kwargs, error, match, indefinite, b):
    args = {"b": b} | kwargs
    with pytest.raises(error, match=match):
        minres(indefinite, args.pop("b"), **args)
