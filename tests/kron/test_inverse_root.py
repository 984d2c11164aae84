"""matrix_inverse_root against dense float64 computations with known spectra."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linalg._core.results import ConvergenceWarning, LinAlgError
from linalg.kron._roots import matrix_inverse_root

from conftest import spd_matrix

METHODS = ["eigh", "newton"]


def laplacian(n: int, shift: float) -> np.ndarray:
    """tridiag(-1, 2, -1) + shift I, eigenvalues 2 - 2 cos(k pi / (n + 1)) + shift."""
    return (
        np.diag(np.full(n, 2.0 + shift)) - np.diag(np.ones(n - 1), 1) - np.diag(np.ones(n - 1), -1)
    )


def root_residual(X: np.ndarray, A: np.ndarray, p: int, eps: float = 0.0) -> float:
    n = A.shape[-1]
    X = np.asarray(X, dtype=np.float64)
    B = np.asarray(A, dtype=np.float64) + eps * np.eye(n)
    return float(np.abs(np.linalg.matrix_power(X, p) @ B - np.eye(n)).max())


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("p", [2, 4, 8])
@pytest.mark.parametrize("n", [10, 100, 1000])
def test_laplacian_roots(n, p, method):
    A = laplacian(n, 0.0)
    lam = 2 - 2 * np.cos(np.arange(1, n + 1) * np.pi / (n + 1))
    np.testing.assert_allclose(np.linalg.eigvalsh(A), lam, atol=1e-12)
    X = matrix_inverse_root(A, p, eps=1e-3, method=method)
    assert X.dtype == np.float64 and X.shape == (n, n)
    assert root_residual(X, A, p, eps=1e-3) <= 1e-6
    np.testing.assert_allclose(X, X.T, atol=1e-12 * np.abs(X).max())


@pytest.mark.parametrize("method", METHODS)
def test_shifted_laplacian_matches_eigenvalues(method):
    n, p, shift = 50, 4, 0.5
    X = matrix_inverse_root(laplacian(n, shift), p, method=method)
    lam = 2 - 2 * np.cos(np.arange(1, n + 1) * np.pi / (n + 1)) + shift
    np.testing.assert_allclose(np.linalg.eigvalsh(X), np.sort(lam ** (-1 / p)), rtol=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_p1_is_inverse(rng, method):
    A = spd_matrix(rng, 20, cond=1e3)
    X = matrix_inverse_root(A, 1, method=method)
    np.testing.assert_allclose(X, np.linalg.inv(A), rtol=1e-8, atol=1e-10)


def test_methods_agree(rng, dtype):
    A = spd_matrix(rng, 40, cond=1e2).astype(dtype)
    tol = {np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-9}[dtype]
    for p in (2, 3, 4):
        X_e = matrix_inverse_root(A, p, method="eigh")
        X_n = matrix_inverse_root(A, p, method="newton")
        assert X_e.dtype == X_n.dtype == dtype
        np.testing.assert_allclose(X_n, X_e, rtol=0, atol=tol * np.abs(X_e).max())


@pytest.mark.parametrize("method", ["auto", *METHODS])
def test_batch(rng, method):
    conds = (1.0, 10.0, 1e3, 50.0, 2.0, 7.0)
    scales = (1e-3, 1.0, 1e3, 10.0, 0.1, 1e2)  # Newton scales each matrix on its own
    A = np.stack([s * spd_matrix(rng, 8, cond=c) for c, s in zip(conds, scales, strict=True)])
    A = A.reshape(2, 3, 8, 8)
    X = matrix_inverse_root(A, 2, eps=0.1, method=method)
    assert X.shape == A.shape
    for idx in np.ndindex(2, 3):
        assert root_residual(X[idx], A[idx], 2, eps=0.1) <= 1e-9


@pytest.mark.parametrize("method", ["auto", *METHODS])
def test_rank_deficient_float32_with_eps_is_finite(rng, method):
    G = rng.standard_normal((30, 3)).astype(np.float32)
    A = G @ G.T  # rank 3, float32 rounding noise in the null space
    for eps in (1e-12, 1e-6, 1e-2):
        with warnings.catch_warnings():
            # Newton may diverge on the float32 noise; its documented fallback is eigh.
            warnings.simplefilter("ignore", ConvergenceWarning)
            X = matrix_inverse_root(A, 4, eps=eps, method=method)
        assert X.dtype == np.float32 and np.isfinite(X).all()
    assert root_residual(X, A, 4, eps=1e-2) <= 1e-3


def test_float32_eigh_accuracy(rng):
    A = spd_matrix(rng, 30, cond=1e3).astype(np.float32)
    X = matrix_inverse_root(A, 2, method="eigh")
    assert X.dtype == np.float32
    assert root_residual(X, A, 2) <= 1e-3


@pytest.mark.parametrize("method", ["auto", *METHODS])
def test_not_positive_definite_suggests_eps(method):
    A = np.diag([3.0, 1.0, -0.5])
    with pytest.raises(LinAlgError, match=r"use eps > 0\.5\d*") as info:
        matrix_inverse_root(A, 2, eps=0.1, method=method)
    suggested = float(info.value.args[0].split("use eps > ")[1].split()[0])
    X = matrix_inverse_root(A, 2, eps=suggested)
    assert np.isfinite(X).all()
    with pytest.raises(LinAlgError, match="eps >"):
        matrix_inverse_root(np.zeros((4, 4)), 2, method=method)


def test_newton_not_converged_falls_back_to_eigh(rng):
    A = spd_matrix(rng, 15, cond=1e4)
    with pytest.warns(ConvergenceWarning, match="maxiter = 1.*eigh"):
        X = matrix_inverse_root(A, 4, method="newton", maxiter=1)
    np.testing.assert_array_equal(X, matrix_inverse_root(A, 4, method="eigh"))


def test_newton_unreachable_tol_falls_back(rng):
    A = spd_matrix(rng, 15, cond=10.0)
    with pytest.warns(ConvergenceWarning, match="eigh"):
        X = matrix_inverse_root(A, 2, method="newton", tol=0.0)
    assert root_residual(X, A, 2) <= 1e-12


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    A = spd_matrix(rng, 6, cond=10.0)
    for method in METHODS:
        X = matrix_inverse_root(torch.from_numpy(A.astype(np.float32)), 2, method=method)
        assert isinstance(X, torch.Tensor) and X.dtype == torch.float32
        assert root_residual(X.numpy(), A, 2) <= 1e-4


def test_integer_input_promoted():
    X = matrix_inverse_root(np.array([[4, 0], [0, 9]]), 2)
    assert X.dtype == np.float64
    np.testing.assert_allclose(X, np.diag([0.5, 1 / 3]))


def test_inputs_not_modified_read_only_non_contiguous(rng):
    big = spd_matrix(rng, 12, cond=10.0)
    A = big[::2, ::2]
    A.flags.writeable = False
    before = A.copy()
    for method in METHODS:
        X = matrix_inverse_root(A, 2, eps=0.5, method=method)
        assert root_residual(X, A, 2, eps=0.5) <= 1e-10
    np.testing.assert_array_equal(A, before)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"A": np.ones((3, 4))}, ValueError, "A must be a square"),
        ({"A": np.ones(3)}, ValueError, "A must be a square"),
        ({"A": np.array([[1.0, 2.0], [0.0, 1.0]])}, ValueError, "A must be symmetric"),
        ({"A": np.array([[1.0, np.nan], [np.nan, 1.0]])}, ValueError, "A contains NaN"),
        ({"A": np.diag([np.inf, 1.0])}, ValueError, "A contains Inf"),
        ({"A": np.eye(2, dtype=complex)}, TypeError, "A is complex"),
        ({"p": 0}, ValueError, "p must be >= 1"),
        ({"p": 1.5}, TypeError, "p must be an integer"),
        ({"p": True}, TypeError, "p must be an integer"),
        ({"eps": -1e-3}, ValueError, "eps must be >= 0"),
        ({"eps": np.nan}, ValueError, "eps must be finite"),
        ({"method": "cholesky"}, ValueError, "method must be one of"),
        ({"maxiter": 0}, ValueError, "maxiter must be >= 1"),
        ({"tol": -1.0}, ValueError, "tol must be >= 0"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {"A": np.eye(2), "p": 2} | kwargs
    A = args.pop("A")
    with pytest.raises(error, match=match):
        matrix_inverse_root(A, **args)


def test_overflow_raises_instead_of_inf():
    A = np.diag([1.0, 1e-40]).astype(np.float32)
    with pytest.raises(LinAlgError, match="overflows float32"):
        matrix_inverse_root(A, 1)
    assert np.isfinite(matrix_inverse_root(A, 1, eps=1e-3)).all()


@given(
    n=st.integers(1, 12),
    p=st.integers(1, 8),
    log_cond=st.floats(0.0, 4.0),
    eps=st.sampled_from([0.0, 1e-3, 1.0]),
    method=st.sampled_from(METHODS),
    seed=st.integers(0, 2**32 - 1),
)
def test_root_property(n, p, log_cond, eps, method, seed):
    A = spd_matrix(np.random.default_rng(seed), n, cond=10.0**log_cond)
    X = matrix_inverse_root(A, p, eps=eps, method=method)
    assert np.linalg.eigvalsh(X).min() > 0
    assert root_residual(X, A, p, eps=eps) <= 1e-8
