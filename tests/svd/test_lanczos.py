"""randomized_svd(method="lanczos"): one-sided block Lanczos (``linalg/svd/_lanczos.py``)
against numpy.linalg.svd and scipy.sparse.linalg.svds, on easy and hard spectra."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from linalg import ConvergenceWarning
from linalg.svd import randomized_svd

EPS = {np.float64: np.finfo(np.float64).eps, np.float32: np.finfo(np.float32).eps}


def planted(m, n, sigma, seed=0):
    rng = np.random.default_rng(seed)
    Q1, _ = np.linalg.qr(rng.standard_normal((m, sigma.size)))
    Q2, _ = np.linalg.qr(rng.standard_normal((n, sigma.size)))
    return (Q1 * sigma) @ Q2.T


def check_triplets(A, result, k, dtype=np.float64):
    """``s`` against numpy.linalg.svd, orthonormal ``U`` and ``V``, and the true
    residuals ``||A v - σ u||`` and ``||Aᵀ u - σ v||`` at the Lanczos tolerance."""
    dense = A.toarray() if sp.issparse(A) else np.asarray(A, dtype=np.float64)
    U, s, Vt = (np.asarray(x) for x in result)
    assert U.dtype == dtype and s.dtype == dtype and Vt.dtype == dtype
    assert U.shape == (A.shape[0], k) and s.shape == (k,) and Vt.shape == (k, A.shape[1])
    exact = np.linalg.svd(dense, compute_uv=False)[:k]
    eps, scale = EPS[dtype], exact[0]
    U, s, Vt = U.astype(np.float64), s.astype(np.float64), Vt.astype(np.float64)
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=100 * np.sqrt(k) * eps)
    np.testing.assert_allclose(Vt @ Vt.T, np.eye(k), atol=100 * np.sqrt(k) * eps)
    assert np.all(np.diff(s) <= 0)
    residual = max(
        np.linalg.norm(dense @ Vt.T - U * s, axis=0).max(),
        np.linalg.norm(dense.T @ U - Vt.T * s, axis=0).max(),
    )
    assert residual <= 10 * np.sqrt(eps) * scale
    return s, exact, residual


@pytest.mark.parametrize("shape", [(500, 300), (300, 500)], ids=["tall", "wide"])
def test_float64_machine_precision(shape):
    m, n = shape
    sigma = 0.85 ** np.arange(min(m, n))
    A = planted(m, n, sigma, seed=1)
    result = randomized_svd(A, 12, method="lanczos", rng=0)
    assert result.converged and result.info["stop"] == "Lanczos converged"
    assert result.info["method"] == "lanczos" and result.info["rank"] == 12
    s, exact, _ = check_triplets(A, result, 12)
    np.testing.assert_allclose(s, exact, rtol=1e-13)
    # The extra passes: the start block and the final Rayleigh–Ritz and residual check.
    q = result.info["n_iter"]
    assert result.n_passes == 2 * q + 4 + (m < n)


def test_float32_stays_float32():
    sigma = 0.8 ** np.arange(200)
    A = planted(400, 200, sigma, seed=2).astype(np.float32)
    result = randomized_svd(A, 6, method="lanczos", rng=0)
    assert result.converged
    s, exact, _ = check_triplets(A, result, 6, dtype=np.float32)
    np.testing.assert_allclose(s, exact, rtol=2e-5)


def test_sparse_against_svds_and_inputs_unchanged():
    rng = np.random.default_rng(3)
    S = sp.random_array((2000, 600), density=0.01, rng=rng, format="csr")
    S.data = rng.standard_normal(S.nnz)
    # planted rank 10 on disjoint blocks, σ from 20 down to 11 (the noise is about 2.5)
    S = S.tolil()
    for i in range(10):
        S[i * 100 : i * 100 + 50, i * 30 : i * 30 + 20] = (20.0 - i) / np.sqrt(50 * 20)
    S = S.tocsr()
    before = S.copy()
    result = randomized_svd(S, 10, method="lanczos", rng=0)
    assert result.converged
    s, exact, _ = check_triplets(S, result, 10)
    np.testing.assert_allclose(s, exact, rtol=1e-12)
    for solver in ("propack", "arpack"):
        theirs = np.sort(spla.svds(S, k=10, solver=solver, return_singular_vectors=False))[::-1]
        np.testing.assert_allclose(s, theirs, rtol=1e-10)
    assert (before != S).nnz == 0 and np.array_equal(S.data, before.data)


def test_linear_operator_and_read_only_input():
    sigma = 1.0 / (1.0 + np.arange(250))
    A = planted(400, 250, sigma, seed=4)
    A.setflags(write=False)
    op = spla.LinearOperator(A.shape, matvec=lambda x: A @ x, rmatvec=lambda y: A.T @ y)
    ours = randomized_svd(op, 5, method="lanczos", rng=0)
    ref = randomized_svd(A, 5, method="lanczos", rng=0)
    np.testing.assert_allclose(ours.s, ref.s, rtol=1e-13)
    check_triplets(A, ours, 5)


@pytest.mark.parametrize(
    "name",
    ["clustered", "slow", "rank_deficient", "k_large", "repeated"],
)
def test_hard_spectra(name):
    m, n, k = 400, 240, 8
    if name == "clustered":  # a tight cluster across the k-th value
        sigma = np.r_[10.0, 9.0, 8.0, 1.0 + 1e-9 * np.arange(30)[::-1], 0.5 * 0.9 ** np.arange(207)]
    elif name == "slow":  # slowly decaying: gaps of 1% between neighbours
        sigma = 1.0 / (1.0 + np.arange(n)) ** 0.5
    elif name == "rank_deficient":  # rank 5 < k: the Krylov space runs out
        sigma = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    elif name == "k_large":  # k close to min(m, n) / 3, the largest the Krylov path takes
        k, sigma = 70, 0.97 ** np.arange(n)
    else:  # repeated values
        sigma = np.r_[np.full(6, 2.0), np.full(6, 1.0), 0.1 * 0.8 ** np.arange(228)]
    A = planted(m, n, sigma, seed=5)
    oversample = 0 if name == "k_large" else 10
    result = randomized_svd(A, k, method="lanczos", oversample=oversample, rng=1)
    assert result.converged and result.info["method"] == "lanczos"
    s, exact, residual = check_triplets(A, result, k)
    # A residual r moves a singular value by at most r (by r²/gap when isolated).
    np.testing.assert_allclose(s, exact, atol=max(residual, 1e-13 * exact[0]))
    if name in ("slow", "k_large"):
        np.testing.assert_allclose(s, exact, rtol=1e-12)
    if name == "rank_deficient":
        np.testing.assert_allclose(s[:5], sigma, rtol=1e-13)
        assert np.abs(s[5:]).max() <= 1e-13


def test_zero_matrix():
    result = randomized_svd(np.zeros((200, 90)), 4, method="lanczos", rng=0)
    np.testing.assert_array_equal(result.s, 0.0)
    assert np.all(np.isfinite(result.U)) and np.all(np.isfinite(result.Vt))
    np.testing.assert_allclose(result.U.T @ result.U, np.eye(4), atol=1e-14)


def test_iteration_cap_warns_and_reports():
    sigma = 1.0 / (1.0 + np.arange(300)) ** 0.3  # too slow for 2 iterations
    A = planted(500, 300, sigma, seed=6)
    with pytest.warns(ConvergenceWarning, match="Lanczos not converged"):
        result = randomized_svd(A, 10, method="lanczos", n_iter=2, rng=0)
    assert not result.converged and result.info["stop"] == "Lanczos not converged"
    assert result.info["n_iter"] == 2 and result.s.shape == (10,)
    # The Krylov dimension at the cap is at least k + oversample.
    assert 3 * result.info["block_size"] >= 20
    # Still a valid (if rough) factorization: orthonormal U, Ritz values below the true ones.
    np.testing.assert_allclose(result.U.T @ result.U, np.eye(10), atol=1e-12)
    assert np.all(result.s <= sigma[:10] * (1 + 1e-12))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = randomized_svd(A, 10, method="lanczos", n_iter=2, rng=0, warn=False)
    assert not quiet.converged


def test_same_seed_same_result():
    A = planted(300, 200, 0.9 ** np.arange(200), seed=7)
    first = randomized_svd(A, 5, method="lanczos", rng=11)
    second = randomized_svd(A, 5, method="lanczos", rng=11)
    np.testing.assert_array_equal(first.U, second.U)
    np.testing.assert_array_equal(first.s, second.s)


def test_tol_keeps_the_rank_choosing_path():
    A = planted(600, 400, 0.9 ** np.arange(400), seed=8)
    result = randomized_svd(A, 100, tol=1e-3, method="lanczos", rng=4)
    assert result.converged and result.info["stop"] == "tol met" and result.s.size < 100


@pytest.mark.parametrize(
    ("shape", "sigma"),
    [
        ((150, 400), 0.9 ** np.arange(150)),  # wide: the short side is the left one
        ((400, 150), np.r_[np.full(5, 3.0), 0.5 * 0.8 ** np.arange(145)]),  # rerun, wider block
    ],
    ids=["wide", "repeated"],
)
def test_namespace_path_equals_numpy_path(namespace, shape, sigma):
    """Through an array-API namespace (array_api_strict, torch on the CPU; CuPy and
    torch CUDA under -m gpu) the tall blocks stay in the caller's library: the
    result equals the NumPy path's."""
    to_array, to_numpy = namespace
    A = planted(*shape, sigma, seed=9)
    x = to_array(A)
    result = randomized_svd(x, 6, method="lanczos", rng=2)
    expected = randomized_svd(A, 6, method="lanczos", rng=2)
    assert type(result.U) is type(x) and type(result.Vt) is type(x)
    U, s, Vt = (to_numpy(v) for v in result)
    assert result.converged and result.info == expected.info
    assert result.n_passes == expected.n_passes
    np.testing.assert_allclose(s, expected.s, rtol=1e-12)
    np.testing.assert_allclose(s, np.linalg.svd(A, compute_uv=False)[:6], rtol=1e-12)
    if result.info["block_size"] == 4:  # distinct values: the vectors are determined
        np.testing.assert_allclose(U, expected.U, atol=1e-9)
        np.testing.assert_allclose(Vt, expected.Vt, atol=1e-9)
    np.testing.assert_allclose(U.T @ U, np.eye(6), atol=1e-12)
    assert np.array_equal(to_numpy(x), A)
