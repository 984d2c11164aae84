"""Randomized Nyström approximation and preconditioner: against exact eigendecompositions,
input kinds against each other, the preconditioner against its dense formula, PCG against
CG on an RBF kernel system, adaptive doubling and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator
from scipy.spatial.distance import cdist

from linalg._core.random import RandomStream
from linalg._core.results import LinAlgError
from linalg.sketch import (
    NystromApproximation,
    NystromPreconditioner,
    nystrom,
    nystrom_preconditioner,
)
from linalg.solvers import cg


def low_rank_psd(rng: np.random.Generator, n: int, r: int, dtype=np.float64) -> np.ndarray:
    """A PSD matrix of rank exactly ``r`` (with probability one)."""
    G = rng.standard_normal((n, r))
    return (G @ G.T).astype(dtype)


def decaying_psd(rng: np.random.Generator, n: int, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """A PSD matrix with eigenvalues ``ratio**i``, and those eigenvalues."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    w = ratio ** np.arange(n)
    A = (Q * w) @ Q.T
    return (A + A.T) / 2, w


def rbf_kernel(n: int, dim: int = 20, gamma: float = 0.01, seed: int = 0) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, dim))
    return np.exp(-gamma * cdist(X, X, "sqeuclidean"))


def reconstruct(U: np.ndarray, lam: np.ndarray) -> np.ndarray:
    return (U * lam) @ U.T


def dense_inverse_preconditioner(U: np.ndarray, lam: np.ndarray, mu: float) -> np.ndarray:
    """``(lam_r + mu) U (diag(lam) + mu I)⁻¹ Uᵀ + (I − U Uᵀ)``, formed explicitly."""
    U = U.astype(np.float64)
    lam = lam.astype(np.float64)
    n = U.shape[0]
    return (lam[-1] + mu) * (U / (lam + mu)) @ U.T + np.eye(n) - U @ U.T


# --- the approximation ----------------------------------------------------------


@pytest.mark.parametrize("rank", [5, 8])
def test_exact_low_rank_matrix_is_recovered(rng, rank):
    A = low_rank_psd(rng, 120, 5)
    U, lam = nystrom(A, rank, rng=1)
    assert U.shape == (120, rank) and lam.shape == (rank,)
    error = np.linalg.norm(reconstruct(U, lam) - A, 2)
    assert error <= 1e-10 * np.linalg.norm(A, 2)
    exact = np.linalg.eigvalsh(A)[::-1][:5]
    np.testing.assert_allclose(lam[:5], exact, rtol=1e-10)
    assert np.all(lam[5:] <= 1e-10 * lam[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_error_close_to_best_rank_k(rng, seed):
    A, w = decaying_psd(rng, 300, 0.8)
    k, oversampling = 10, 10
    U, lam = nystrom(A, k + oversampling, rng=seed)
    error = np.linalg.norm(A - reconstruct(U, lam), 2)
    # the best rank-k error is w[k]; with 10 extra columns the sketch should be as good
    assert error <= 2.0 * w[k]
    # and never better than the best approximation of its own rank
    assert error >= w[k + oversampling] * (1 - 1e-8)


def test_factor_is_orthonormal_nonnegative_sorted(rng):
    A, _ = decaying_psd(rng, 150, 0.9)
    result = nystrom(A, 30, rng=3)
    assert isinstance(result, NystromApproximation)
    U, lam = result
    assert result.U is U and result.lam is lam
    np.testing.assert_allclose(U.T @ U, np.eye(30), atol=1e-12)
    assert np.all(lam >= 0)
    assert np.all(np.diff(lam) <= 0)


def test_float32_kept(rng):
    A = low_rank_psd(rng, 100, 4, dtype=np.float32)
    U, lam = nystrom(A, 6, rng=0)
    assert U.dtype == np.float32 and lam.dtype == np.float32
    scale = np.linalg.norm(A.astype(np.float64), 2)
    assert np.linalg.norm(reconstruct(U, lam) - A, 2) <= 1e-4 * scale


def test_integer_input_promoted_to_float64():
    A = np.array([[2, 1, 0], [1, 2, 1], [0, 1, 2]])
    U, lam = nystrom(A, 3, rng=0)
    assert U.dtype == np.float64
    np.testing.assert_allclose(reconstruct(U, lam), A, atol=1e-12)


def test_inputs_not_modified_and_read_only_input_works(rng):
    A, _ = decaying_psd(rng, 80, 0.8)
    A.flags.writeable = False
    copy = A.copy()
    nystrom(A, 10, rng=0)
    nystrom_preconditioner(A, 10, mu=1e-3, rng=0)
    np.testing.assert_array_equal(A, copy)


def test_operator_and_sparse_input_equal_dense_input(rng):
    A, _ = decaying_psd(rng, 90, 0.85)
    A[np.abs(A) < 0.02] = 0.0  # some sparsity, still symmetric (and PSD enough at rank 12)
    A = (A + A.T) / 2
    U, lam = nystrom(A, 12, rng=7)
    expected = reconstruct(U, lam)
    for other in (aslinearoperator(A), sp.csr_array(A), sp.coo_matrix(A)):
        U2, lam2 = nystrom(other, 12, rng=7)
        assert isinstance(U2, np.ndarray)
        np.testing.assert_allclose(lam2, lam, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(reconstruct(U2, lam2), expected, atol=1e-12)


def test_same_seed_same_result_different_seed_different(rng):
    A, _ = decaying_psd(rng, 100, 0.95)
    first = nystrom(A, 15, rng=5)
    again = nystrom(A, 15, rng=RandomStream(5))
    other = nystrom(A, 15, rng=6)
    np.testing.assert_array_equal(first.U, again.U)
    np.testing.assert_array_equal(first.lam, again.lam)
    assert not np.allclose(first.lam, other.lam)
    g1 = nystrom(A, 15, rng=np.random.default_rng(1))
    g2 = nystrom(A, 15, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(g1.lam, g2.lam)


def test_engines_give_the_same_result(rng, engine):
    A, _ = decaying_psd(rng, 60, 0.8)
    reference = nystrom(A, 10, rng=2, engine="reference")
    other = nystrom(A, 10, rng=2, engine=engine)
    np.testing.assert_array_equal(reference.lam, other.lam)


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    A = low_rank_psd(rng, 50, 3)
    U, lam = nystrom(torch.from_numpy(A), 4, rng=0)
    assert isinstance(U, torch.Tensor) and isinstance(lam, torch.Tensor)
    np.testing.assert_allclose(reconstruct(U.numpy(), lam.numpy()), A, atol=1e-10)


def test_zero_matrix_gives_zero_eigenvalues():
    U, lam = nystrom(np.zeros((10, 10)), 3, rng=0)
    assert np.all((lam >= 0) & (lam <= np.finfo(np.float64).tiny))  # zero up to rounding
    np.testing.assert_allclose(U.T @ U, np.eye(3), atol=1e-12)


def test_full_rank_sketch_is_exact(rng):
    A, _ = decaying_psd(rng, 40, 0.7)
    U, lam = nystrom(A, 40, rng=0)
    np.testing.assert_allclose(reconstruct(U, lam), A, atol=1e-12)


# --- the preconditioner --------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_preconditioner_equals_dense_formula(rng, dtype):
    A, _ = decaying_psd(rng, 70, 0.8)
    A = A.astype(dtype)
    mu = 1e-2
    P = nystrom_preconditioner(A, 12, mu=mu, adaptive=False, rng=0)
    assert isinstance(P, NystromPreconditioner)
    assert P.rank == 12 and P.mu == mu and P.n_doublings == 0
    assert P.U.dtype == dtype and P.dtype == dtype
    expected = dense_inverse_preconditioner(P.U, P.lam, mu)
    R = rng.standard_normal((70, 3))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(P.solve(R), expected @ R, atol=tol)
    np.testing.assert_allclose(P.solve(R[:, 0]), expected @ R[:, 0], atol=tol)
    np.testing.assert_allclose(P.matmat(R), expected @ R, atol=tol)
    np.testing.assert_allclose(P.as_linear_operator() @ R, expected @ R, atol=tol)
    # the same approximation as nystrom with the same rng
    _, lam = nystrom(A, 12, rng=0)
    np.testing.assert_allclose(P.lam, lam, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_preconditioner_makes_the_system_well_conditioned(rng):
    A, w = decaying_psd(rng, 100, 0.8)
    mu = 1e-3
    P = nystrom_preconditioner(A, 40, mu=mu, adaptive=False, rng=1)
    Pinv = dense_inverse_preconditioner(P.U, P.lam, mu)
    root = np.linalg.cholesky(Pinv)
    eigenvalues = np.linalg.eigvalsh(root.T @ (A + mu * np.eye(100)) @ root)
    kappa = eigenvalues[-1] / eigenvalues[0]
    assert kappa <= P.condition_estimate * (1 + 1e-8)  # the bound (lam_r + mu + E) / mu
    assert kappa < 1e-2 * (w[0] + mu) / (w[-1] + mu)


def test_pcg_needs_three_times_fewer_iterations_on_rbf_kernel():
    n, mu = 2000, 1e-2
    K = rbf_kernel(n)
    system = K + mu * np.eye(n)
    b = np.random.default_rng(1).standard_normal(n)
    plain = cg(system, b, rtol=1e-8)
    P = nystrom_preconditioner(K, 50, mu=mu, rng=0)
    pcg = cg(system, b, rtol=1e-8, M=P)
    assert plain.converged and pcg.converged
    # measured: 209 iterations for CG, 24 for PCG with rank 400
    assert 3 * pcg.n_iter <= plain.n_iter
    assert np.linalg.norm(system @ pcg.x - b) <= 1e-7 * np.linalg.norm(b)


def test_adaptive_doubling_grows_the_rank(rng):
    A, _ = decaying_psd(rng, 200, 0.9)
    mu = 1e-4
    fixed = nystrom_preconditioner(A, 8, mu=mu, adaptive=False, rng=3)
    assert fixed.rank == 8 and fixed.condition_estimate > 10
    grown = nystrom_preconditioner(A, 8, mu=mu, target_condition=10, rng=3)
    assert grown.n_doublings >= 2
    assert grown.rank == 8 * 2**grown.n_doublings
    assert grown.condition_estimate <= 10
    # the doubled sketch keeps the first columns: the same as a fresh one of the final rank
    U, lam = nystrom(A, grown.rank, rng=3)
    np.testing.assert_allclose(reconstruct(grown.U, grown.lam), reconstruct(U, lam), atol=1e-10)
    capped = nystrom_preconditioner(A, 8, mu=mu, target_condition=10, max_rank=20, rng=3)
    assert capped.rank == 20 and capped.n_doublings == 2


def test_preconditioner_input_kinds_and_types(rng):
    torch = pytest.importorskip("torch")
    A, _ = decaying_psd(rng, 50, 0.8)
    P = nystrom_preconditioner(aslinearoperator(A), 10, mu=1e-2, adaptive=False, rng=0)
    Q = nystrom_preconditioner(A, 10, mu=1e-2, adaptive=False, rng=0)
    r = rng.standard_normal(50)
    np.testing.assert_allclose(P.solve(r), Q.solve(r), atol=1e-12)
    out = Q.solve(torch.from_numpy(r))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), Q.solve(r))


def test_preconditioner_constructor_validates():
    U = np.eye(4)[:, :2]
    with pytest.raises(ValueError, match="lam must have shape"):
        NystromPreconditioner(U, np.ones(3), mu=1.0)
    with pytest.raises(ValueError, match="lam must be >= 0 and sorted"):
        NystromPreconditioner(U, np.array([1.0, 2.0]), mu=1.0)
    with pytest.raises(ValueError, match="mu must be > 0"):
        NystromPreconditioner(U, np.array([2.0, 1.0]), mu=0.0)
    P = NystromPreconditioner(U, np.array([2.0, 1.0]), mu=1.0)
    with pytest.raises(ValueError, match="R must have 4 rows"):
        P.solve(np.ones(3))


# --- bad input -----------------------------------------------------------------


@pytest.mark.parametrize("function", [nystrom, nystrom_preconditioner])
def test_bad_input_names_the_argument(function):
    A = np.eye(5)
    options = {"mu": 1.0} if function is nystrom_preconditioner else {}
    with pytest.raises(ValueError, match="rank must be >= 1"):
        function(A, 0, **options)
    with pytest.raises(ValueError, match="rank must be <= n = 5"):
        function(A, 6, **options)
    with pytest.raises(TypeError, match="rank must be an integer"):
        function(A, 2.0, **options)
    with pytest.raises(ValueError, match="A must be square"):
        function(np.ones((5, 4)), 2, **options)
    bad = A.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="A contains NaN"):
        function(bad, 2, **options)
    with pytest.raises(ValueError, match="A must be symmetric"):
        function(np.triu(np.ones((5, 5))), 2, **options)
    with pytest.raises(TypeError, match="A is complex"):
        function(A.astype(complex), 2, **options)
    with pytest.raises(TypeError, match="A is a callable without a shape"):
        function(lambda v: v, 2, **options)
    with pytest.raises(TypeError, match="rng must be"):
        function(A, 2, rng="seed", **options)


def test_bad_preconditioner_options():
    A = np.eye(5)
    for mu in (0.0, -1.0):
        with pytest.raises(ValueError, match="mu must be > 0"):
            nystrom_preconditioner(A, 2, mu=mu)
    with pytest.raises(ValueError, match="mu must be finite"):
        nystrom_preconditioner(A, 2, mu=np.inf)
    with pytest.raises(TypeError, match="mu must be a real number"):
        nystrom_preconditioner(A, 2, mu=None)
    with pytest.raises(ValueError, match="target_condition must be > 1"):
        nystrom_preconditioner(A, 2, mu=1.0, target_condition=1.0)
    with pytest.raises(ValueError, match="max_rank must be >= rank = 3"):
        nystrom_preconditioner(A, 3, mu=1.0, max_rank=2)
    with pytest.raises(ValueError, match="max_rank must be <= n = 5"):
        nystrom_preconditioner(A, 3, mu=1.0, max_rank=6)
    with pytest.raises(TypeError, match="adaptive must be True or False"):
        nystrom_preconditioner(A, 3, mu=1.0, adaptive=1)


def test_indefinite_matrix_raises_linalg_error():
    A = np.diag(np.r_[np.ones(19), -1.0])
    with pytest.raises(LinAlgError, match="A is not positive semidefinite"):
        nystrom(A, 20, rng=0)
    with pytest.raises(LinAlgError, match="A is not positive semidefinite"):
        nystrom_preconditioner(A, 20, mu=1.0, rng=0)


def test_operator_returning_nan_raises():
    def matvec(v):
        return np.full_like(v, np.nan)

    from scipy.sparse.linalg import LinearOperator

    A = LinearOperator((6, 6), matvec=matvec, dtype=np.float64)
    with pytest.raises(LinAlgError, match="A must be finite"):
        nystrom(A, 2, rng=0)
