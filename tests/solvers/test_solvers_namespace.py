"""minres, gmres and lsqr on data computed through its own array-API namespace.

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. Every answer is
judged three ways: against the host solver on the same problem (the
recurrences are the host's, so with ``check_every=1`` each column takes the
host's iterations and stops for the host's reason), against an exact dense
solve, and by its residual, recomputed here in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp

from linalg import ConvergenceWarning, LinAlgError
from linalg._core.operators import Operator
from linalg.solvers import gmres, jacobi, lsqr, minres

from conftest import RTOL

N = 100
# The solvers' tolerance, and how close the device and host answers must be, by dtype.
SOLVER_RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}


def symmetric(rng: np.random.Generator, eigenvalues: np.ndarray) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.standard_normal((eigenvalues.size, eigenvalues.size)))
    A = (Q * eigenvalues) @ Q.T
    return (A + A.T) / 2


def indefinite(rng: np.random.Generator) -> np.ndarray:
    """Symmetric, eigenvalues in [-3, -1] and [1, 3]."""
    half = N // 2
    return symmetric(rng, np.concatenate([-np.geomspace(1, 3, half), np.geomspace(1, 3, half)]))


def spd(rng: np.random.Generator) -> np.ndarray:
    """Symmetric, eigenvalues in [1, 5]."""
    return symmetric(rng, np.geomspace(1.0, 5.0, N))


def nonsymmetric(rng: np.random.Generator) -> np.ndarray:
    """Eigenvalues in a disc of radius about 1 around 3."""
    return 3 * np.eye(N) + rng.standard_normal((N, N)) / np.sqrt(N)


def tall(rng: np.random.Generator) -> np.ndarray:
    """``3N × N``, singular values in about [0.4, 1.6] times ``√(3N)``."""
    return rng.standard_normal((3 * N, N))


def badly_scaled(make: Callable, *, columns_only: bool = False) -> Callable:
    """``D A D`` (``A D`` for ``columns_only``) with ``D`` spread over [1, 10]: the
    Jacobi preconditioner undoes most of ``D``."""

    def scaled(rng: np.random.Generator) -> np.ndarray:
        A = make(rng)
        d = np.geomspace(1.0, 10.0, A.shape[1])
        return A * d if columns_only else d[:, None] * A * d

    return scaled


@dataclass
class Case:
    """A solver, a problem it solves, the exact answer and its tolerance options."""

    solve: Callable
    make: Callable[[np.random.Generator], np.ndarray]
    exact: Callable[[np.ndarray, np.ndarray], np.ndarray]
    normal_equations: bool = False  # lsqr: judged by ||Aᵀ r||, and M by what A M is like

    def options(self, dtype: np.dtype) -> dict:
        rtol = SOLVER_RTOL[np.dtype(dtype)]
        return {"atol": rtol, "btol": rtol} if self.normal_equations else {"rtol": rtol}


def _solve(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.linalg.solve(A, B)


def _lstsq(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(A, B, rcond=None)[0]


CASES = {
    "minres": Case(minres, indefinite, _solve),
    "minres-spd": Case(minres, spd, _solve),
    "gmres": Case(gmres, nonsymmetric, _solve),
    "lsqr": Case(lsqr, tall, _lstsq, normal_equations=True),
}
SOLVERS = {"minres": "minres", "gmres": "gmres", "lsqr": "lsqr"}
# Problems that a Jacobi preconditioner helps (minres needs an SPD one: an SPD A).
PRECONDITIONED = {
    "minres": Case(minres, badly_scaled(spd), _solve),
    "gmres": Case(gmres, badly_scaled(nonsymmetric), _solve),
    "lsqr": Case(lsqr, badly_scaled(tall, columns_only=True), _lstsq, normal_equations=True),
}


def as64(X) -> np.ndarray:
    return np.asarray(X, dtype=np.float64)


def check_answer(case: Case, A: np.ndarray, X: np.ndarray, B: np.ndarray, dtype) -> None:
    """The recomputed residual meets the solver's test (up to rounding ``x`` to
    ``dtype``), and the distance to the exact answer is within the bound that
    residual gives: ``||x - x*|| <= ||A⁻¹|| ||r||`` (``||Aᵀr|| / σ_min²`` for least
    squares)."""
    A64 = as64(A)
    X64, B64 = as64(X).reshape(A.shape[1], -1), as64(B).reshape(A.shape[0], -1)
    R = B64 - A64 @ X64
    sigma = np.linalg.svd(A64, compute_uv=False)
    eps, rtol = np.finfo(dtype).eps, SOLVER_RTOL[np.dtype(dtype)]
    slack = rtol + 10 * eps * sigma[0] / sigma[-1]
    if case.normal_equations:  # ||Aᵀ r|| <= atol ||A|| ||r||, with ||A|| <= ||A||_F
        gradient = np.linalg.norm(A64.T @ R, axis=0)
        assert (gradient <= slack * np.linalg.norm(A64) * np.linalg.norm(R, axis=0)).all()
        bound = gradient / sigma[-1] ** 2
    else:
        residual = np.linalg.norm(R, axis=0)
        assert (residual <= slack * np.linalg.norm(B64, axis=0)).all()
        bound = residual / sigma[-1]
    error = np.linalg.norm(X64 - case.exact(A64, B64), axis=0)
    assert (error <= 1.01 * bound + 1e-14 * np.linalg.norm(X64, axis=0)).all()


def assert_close(x, host_x, dtype) -> None:
    """Device and host answers agree to ``RTOL`` of the answer's size."""
    x, host_x = as64(x), as64(host_x)
    assert np.abs(x - host_x).max() <= RTOL[np.dtype(dtype)] * np.abs(host_x).max()


def right_hand_sides(rng: np.random.Generator, rows: int, dtype) -> np.ndarray:
    B = rng.standard_normal((rows, 3))
    B[:, 1] *= 1e-3  # the columns stop at different iterations
    return B.astype(dtype)


@pytest.mark.parametrize("name", list(CASES))
def test_equals_host_solver(name, namespace, rng, dtype):
    to_array, to_numpy = namespace
    case = CASES[name]
    A = case.make(rng).astype(dtype)
    B = right_hand_sides(rng, A.shape[0], dtype)
    options = case.options(dtype)
    result = case.solve(to_array(A), to_array(B), **options)
    host = case.solve(A, B, **options, engine="reference")
    X = to_numpy(result.x)
    assert type(result.x) is type(to_array(B)) and X.dtype == dtype and X.shape == host.x.shape
    assert result.converged.all() and np.array_equal(result.n_iter, host.n_iter)
    assert result.info.keys() == host.info.keys()
    assert result.info["stop_reason"] == host.info["stop_reason"]
    assert_close(X, host.x, dtype)
    check_answer(case, A, X, B, dtype)
    assert result.history.shape == host.history.shape
    scale = RTOL[np.dtype(dtype)] * host.history[0]  # estimates carry rounding of that size
    assert (np.abs(result.history - host.history) <= scale).all()
    recomputed = np.linalg.norm(as64(B) - as64(A) @ as64(X), axis=0)
    rounding = 10 * np.finfo(dtype).eps * np.linalg.norm(as64(A)) * np.abs(as64(X)).sum(axis=0)
    assert (np.abs(result.residual_norm - recomputed) <= rounding).all()


def scaling(A: np.ndarray, *, normal_equations: bool) -> np.ndarray:
    """What a Jacobi preconditioner inverts: ``A``, or for least squares (where
    ``A M`` should have columns of one norm) the diagonal of column norms."""
    return np.diag(np.linalg.norm(A, axis=0)) if normal_equations else A


def preconditioner(kind: str, A: np.ndarray, to_array, *, normal_equations: bool):
    """``M`` as a dense device array, the device Jacobi operator, or a callable on
    device vectors."""
    matrix = scaling(A, normal_equations=normal_equations)
    if kind == "jacobi":
        return jacobi(to_array(matrix))
    D = to_array(np.diag(1.0 / np.diag(matrix)).astype(A.dtype))
    return D if kind == "dense" else (lambda v: D @ v)


@pytest.mark.parametrize("M_kind", ["dense", "jacobi", "callable"])
@pytest.mark.parametrize("name", list(SOLVERS))
def test_vector_with_x0_and_preconditioner(name, M_kind, namespace, rng):
    to_array, to_numpy = namespace
    case = PRECONDITIONED[name]
    A = case.make(rng)
    b = rng.standard_normal(A.shape[0])
    x0 = 0.1 * rng.standard_normal(A.shape[1])
    M = preconditioner(M_kind, A, to_array, normal_equations=case.normal_equations)
    options = case.options(np.float64)
    if name == "lsqr" and M_kind == "callable":
        with pytest.raises(TypeError, match="plain callable gives only M v"):
            lsqr(to_array(A), to_array(b), M=M)
        return
    result = case.solve(to_array(A), to_array(b), x0=to_array(x0), M=M, **options)
    host_M = preconditioner(M_kind, A, np.asarray, normal_equations=case.normal_equations)
    host = case.solve(A, b, x0=x0, M=host_M, **options)
    unpreconditioned = case.solve(A, b, x0=x0, **options)
    x = to_numpy(result.x)
    assert x.shape == (A.shape[1],) and result.converged
    assert result.n_iter == host.n_iter < unpreconditioned.n_iter
    assert isinstance(result.residual_norm, float) and result.history.ndim == 1
    assert_close(x, host.x, np.float64)
    check_answer(case, A, x[:, None], b[:, None], np.float64)


class DeviceMatrix(Operator):
    """A linalg Operator over a device matrix: products on device blocks."""

    def __init__(self, A) -> None:
        super().__init__(tuple(A.shape), np.float64)
        self.A = A

    def _matmat(self, V):
        return self.A @ V

    def _rmatmat(self, V):
        return self.A.T @ V


@pytest.mark.parametrize("name", list(SOLVERS))
def test_callable_and_operator_A(name, namespace, rng):
    to_array, to_numpy = namespace
    case = CASES[SOLVERS[name]]
    A = case.make(rng)
    device_A, seen = to_array(A), []

    def matvec(v):
        seen.append(type(v))
        return device_A @ v

    b = rng.standard_normal(A.shape[0])
    options = case.options(np.float64)
    host = case.solve(A, b, **options)
    if name == "lsqr":
        with pytest.raises(TypeError, match="plain callable gives only A v"):
            lsqr(matvec, to_array(b))
    else:
        result = case.solve(matvec, to_array(b), **options)
        assert result.converged and set(seen) == {type(device_A)}
        assert result.n_iter == host.n_iter
        assert_close(to_numpy(result.x), host.x, np.float64)
    result = case.solve(DeviceMatrix(device_A), to_array(b), **options)
    assert result.converged and result.n_iter == host.n_iter
    assert_close(to_numpy(result.x), host.x, np.float64)
    result = case.solve(DuckOperator(device_A), to_array(b), **options)
    assert result.converged and result.n_iter == host.n_iter
    assert_close(to_numpy(result.x), host.x, np.float64)


class DuckOperator:
    """Not a linalg Operator: any object with shape, dtype, matmat and rmatmat."""

    def __init__(self, A) -> None:
        self.A, self.shape, self.dtype = A, tuple(A.shape), np.float64

    def matmat(self, V):
        return self.A @ V

    def rmatmat(self, V):
        return self.A.T @ V


@pytest.mark.parametrize("name", list(SOLVERS))
def test_check_every(name, namespace, rng):
    """minres tests its estimates only every ``check_every`` iterations, on the
    device and the host alike; gmres and lsqr test on the device at every
    iteration, so ``check_every`` changes nothing of their answers."""
    to_array, to_numpy = namespace
    case = CASES[SOLVERS[name]]
    A = case.make(rng)
    B = right_hand_sides(rng, A.shape[0], np.float64)
    options = case.options(np.float64)
    every = case.solve(to_array(A), to_array(B), **options)
    sparse = case.solve(to_array(A), to_array(B), **options, check_every=7)
    if name == "minres":
        host = minres(A, B, **options, check_every=7)
        assert np.array_equal(sparse.n_iter, host.n_iter) and (sparse.n_iter % 7 == 0).all()
        assert (sparse.n_iter >= every.n_iter).all() and (sparse.n_iter - every.n_iter < 7).all()
        assert_close(to_numpy(sparse.x), host.x, np.float64)
    else:
        assert np.array_equal(sparse.n_iter, every.n_iter)
        assert np.array_equal(to_numpy(sparse.x), to_numpy(every.x))
        assert np.array_equal(sparse.history, every.history)


def test_minres_shift_equals_host(namespace, rng):
    to_array, to_numpy = namespace
    A = indefinite(rng) + 4.0 * np.eye(N)  # eigenvalues in [1, 3] and [5, 7]
    b = rng.standard_normal(N)
    result = minres(to_array(A), to_array(b), shift=4.0, rtol=1e-10)
    host = minres(A, b, shift=4.0, rtol=1e-10)
    assert result.converged and result.n_iter == host.n_iter
    x = to_numpy(result.x)
    np.testing.assert_allclose(x, np.linalg.solve(A - 4.0 * np.eye(N), b), rtol=1e-8)
    assert_close(x, host.x, np.float64)


def test_gmres_restarts_equal_host(namespace, rng):
    to_array, to_numpy = namespace
    A = nonsymmetric(rng)
    B = right_hand_sides(rng, N, np.float64)
    result = gmres(to_array(A), to_array(B), restart=5, rtol=1e-10)
    host = gmres(A, B, restart=5, rtol=1e-10)
    assert result.converged.all() and (result.info["n_cycles"] > 1).all()
    assert np.array_equal(result.n_iter, host.n_iter)
    assert np.array_equal(result.info["n_cycles"], host.info["n_cycles"])
    assert_close(to_numpy(result.x), host.x, np.float64)
    check_answer(CASES["gmres"], A, to_numpy(result.x), B, np.float64)


def test_lsqr_damped_equals_host_and_ridge(namespace, rng):
    to_array, to_numpy = namespace
    A = PRECONDITIONED["lsqr"].make(rng)
    B = right_hand_sides(rng, A.shape[0], np.float64)
    D = scaling(A, normal_equations=True)
    options = {"damp": 0.05, "atol": 1e-12, "btol": 1e-12}
    result = lsqr(to_array(A), to_array(B), M=jacobi(to_array(D)), **options)
    host = lsqr(A, B, M=jacobi(D), **options)
    assert result.converged.all() and np.array_equal(result.n_iter, host.n_iter)
    ridge = np.linalg.solve(A.T @ A + 0.05**2 * np.eye(N), A.T @ B)
    np.testing.assert_allclose(to_numpy(result.x), ridge, rtol=1e-8, atol=1e-10)
    for key in ("anorm", "acond"):
        np.testing.assert_allclose(result.info[key], host.info[key], rtol=1e-10)
    X = to_numpy(result.x)
    R = B - A @ X
    arnorm = np.linalg.norm(A.T @ R - 0.05**2 * X, axis=0)
    rounding = 100 * np.finfo(np.float64).eps * np.linalg.norm(A, 2) * np.linalg.norm(R, axis=0)
    assert (np.abs(result.info["arnorm"] - arnorm) <= rounding).all()
    assert (np.abs(result.info["arnorm"] - host.info["arnorm"]) <= rounding).all()


@pytest.mark.parametrize("name", list(SOLVERS))
def test_not_converged_warns(name, namespace, rng):
    to_array, _ = namespace
    case = CASES[SOLVERS[name]]
    A = case.make(rng)
    B = right_hand_sides(rng, A.shape[0], np.float64)
    with pytest.warns(ConvergenceWarning, match=f"{name} did not converge"):
        result = case.solve(to_array(A), to_array(B), maxiter=3, **case.options(np.float64))
    host = case.solve(A, B, maxiter=3, **case.options(np.float64), warn=False)
    assert not result.converged.any() and type(result.x) is type(to_array(B))
    assert np.array_equal(result.n_iter, host.n_iter) and (result.n_iter == 3).all()
    assert result.info["stop_reason"] == host.info["stop_reason"]


@pytest.mark.parametrize("name", list(SOLVERS))
def test_bad_input(name, namespace, rng):
    to_array, _ = namespace
    solve = CASES[SOLVERS[name]].solve
    A = CASES[SOLVERS[name]].make(rng)
    m, n = A.shape
    b = to_array(np.ones(m))
    with pytest.raises(TypeError, match="inputs live in different places"):
        solve(A, b)
    with pytest.raises(ValueError, match="b contains NaN"):
        solve(to_array(A), to_array(np.full(m, np.nan)))
    with pytest.raises(ValueError, match=rf"b has {m + 1} rows but A has shape"):
        solve(to_array(A), to_array(np.ones(m + 1)))
    with pytest.raises(ValueError, match=r"x0 must have shape"):
        solve(to_array(A), b, x0=to_array(np.ones(n + 1)))
    with pytest.raises(ValueError, match=r"M must have shape"):
        solve(to_array(A), b, M=to_array(np.eye(n + 1)))
    with pytest.raises(ValueError, match="check_every must be >= 1"):
        solve(to_array(A), b, check_every=0)
    with pytest.raises(TypeError, match=f"engine 'numba' has no {name}"):
        solve(to_array(A), b, engine="numba")
    with pytest.raises(TypeError, match="A is a SciPy sparse matrix"):
        solve(sp.csr_array(A), b)
    with pytest.raises(TypeError, match="convert X to the array type of the diagonal"):
        solve(to_array(A), b, M=jacobi(np.eye(n)))
    if name != "lsqr":
        with pytest.raises(TypeError, match="M returned numpy arrays"):
            solve(to_array(A), b, M=lambda v: np.ones(n))


@pytest.mark.parametrize("name", list(SOLVERS))
def test_inputs_unchanged(name, namespace, rng):
    to_array, to_numpy = namespace
    case = PRECONDITIONED[name]
    A = case.make(rng)
    B = right_hand_sides(rng, A.shape[0], np.float64)
    X0 = rng.standard_normal((A.shape[1], 3))
    M = np.diag(1.0 / np.diag(scaling(A, normal_equations=case.normal_equations)))
    inputs = [to_array(Y) for Y in (A, B, X0, M)]
    before = [to_numpy(Y).copy() for Y in inputs]
    case.solve(*inputs[:2], x0=inputs[2], M=inputs[3], **case.options(np.float64))
    for Y, saved in zip(inputs, before, strict=True):
        assert np.array_equal(to_numpy(Y), saved)


def test_minres_indefinite_M_and_nan_operator(namespace, rng):
    to_array, _ = namespace
    A = spd(rng)
    b = to_array(rng.standard_normal(N))
    with pytest.raises(LinAlgError, match="M is not positive definite"):
        minres(to_array(A), b, M=to_array(-np.eye(N)))
    nan = to_array(np.full(N, np.nan))
    with pytest.raises(LinAlgError, match="non-finite at or before iteration 1"):
        minres(lambda v: nan, b)
    with pytest.raises(LinAlgError, match="gmres: the residual became non-finite"):
        gmres(lambda v: nan, b)
    with pytest.raises(LinAlgError, match="lsqr: the residual became non-finite"):
        lsqr(DeviceMatrix(to_array(np.full((N, N), np.nan))), b)


def test_jacobi_on_device(namespace, rng):
    to_array, to_numpy = namespace
    A = badly_scaled(spd)(rng)
    M = jacobi(to_array(A))
    V = rng.standard_normal((N, 3))
    assert type(M.diagonal) is type(to_array(V))
    np.testing.assert_allclose(to_numpy(M.matmat(to_array(V))), V / np.diag(A)[:, None], rtol=1e-15)
    np.testing.assert_allclose(to_numpy(M.matvec(to_array(V[:, 0]))), V[:, 0] / np.diag(A))
    np.testing.assert_allclose(jacobi(A).matmat(V), V / np.diag(A)[:, None], rtol=1e-15)
    with pytest.raises(TypeError, match="convert X to the array type of the diagonal"):
        M.matvec(V[:, 0])
    with pytest.raises(TypeError, match="use matvec/matmat on the device"):
        M.as_linear_operator()
    singular = A.copy()
    singular[3, 3] = 0.0
    with pytest.raises(ValueError, match=r"zero on its diagonal \(row 3\)"):
        jacobi(to_array(singular))
    with pytest.raises(ValueError, match="A must be square"):
        jacobi(to_array(A[:, :-1]))


@pytest.mark.parametrize("name", list(SOLVERS))
def test_zero_column_and_callback(name, namespace, rng):
    """A column solved from the start stays frozen at zero while the others run;
    the callback sees every iterate as a device array shaped like ``b``."""
    to_array, to_numpy = namespace
    case = CASES[SOLVERS[name]]
    A = case.make(rng)
    B = right_hand_sides(rng, A.shape[0], np.float64)
    B[:, 1] = 0.0
    seen = []
    result = case.solve(
        to_array(A), to_array(B), callback=lambda X: seen.append(X), **case.options(np.float64)
    )
    host = case.solve(A, B, **case.options(np.float64))
    assert np.array_equal(result.n_iter, host.n_iter) and result.n_iter[1] == 0
    assert result.info["stop_reason"] == host.info["stop_reason"]
    X = to_numpy(result.x)
    assert result.converged.all() and np.array_equal(X[:, 1], np.zeros(A.shape[1]))
    assert_close(X, host.x, np.float64)
    assert seen and all(type(X) is type(result.x) and X.shape == result.x.shape for X in seen)
    np.testing.assert_array_equal(to_numpy(seen[-1]), X)
