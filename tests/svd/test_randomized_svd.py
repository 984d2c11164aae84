"""randomized_svd against numpy.linalg.svd on planted spectra, scikit-learn and SciPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from linalg import ConvergenceWarning
from linalg.sketch import countsketch
from linalg.svd import SVDResult, randomized_svd

METHODS = ["subspace", "block_krylov", "lanczos", "auto"]
SPECTRA = {
    "geometric": lambda n: 0.9 ** np.arange(n),
    "polynomial": lambda n: 1.0 / (1.0 + np.arange(n)) ** 1.5,
    "flat": lambda n: np.r_[np.ones(10), 0.3 * np.ones(n - 10)],
}


def planted(m, n, sigma, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    Q1, _ = np.linalg.qr(rng.standard_normal((m, sigma.size)))
    Q2, _ = np.linalg.qr(rng.standard_normal((n, sigma.size)))
    return ((Q1 * sigma) @ Q2.T).astype(dtype), Q1, Q2


def spectral_error(A, result):
    U, s, Vt = (np.asarray(x) for x in result)
    return np.linalg.norm(A - (U * s) @ Vt, 2)


def hmt_factor(k, p, q, min_dim):
    """Halko–Martinsson–Tropp (2011, Cor. 10.10): E||A - QQᵀA|| / σ_{k+1}."""
    return (1 + 4 * math.sqrt(k + p) / (p - 1) * math.sqrt(min_dim)) ** (1 / (2 * q + 1))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("spectrum", list(SPECTRA))
def test_planted_spectra_within_hmt_bound(method, spectrum):
    m, n, k, p = 300, 200, 10, 10
    sigma = SPECTRA[spectrum](n)
    A, _, _ = planted(m, n, sigma)
    result = randomized_svd(A, k, oversample=p, method=method, rng=1)
    q = result.info["n_iter"]
    # Ritz values never exceed the true ones (interlacing) ...
    assert np.all(result.s <= sigma[:k] * (1 + 1e-12))
    # ... and the rank-k error is within the expected-error bound, with slack 3
    # for the deviation (HMT Thm 10.8: larger deviations have tiny probability).
    bound = 3 * hmt_factor(k, p, q, n) * sigma[k]
    assert spectral_error(A, result) <= bound
    # Lanczos (tall A: Ω is its first block) adds the final Rayleigh–Ritz pass
    # and the residual check, and reruns with wider blocks on repeated values ("flat").
    if method == "lanczos":
        assert q >= 1 and result.n_passes >= 2 * q + 4
    else:
        assert q >= 1 and result.n_passes == 2 * q + 2


@pytest.mark.parametrize("method", ["block_krylov", "lanczos"])
def test_krylov_methods_resolve_a_slow_spectrum(method):
    """Polynomial decay: the Krylov space gets the values to many digits."""
    sigma = SPECTRA["polynomial"](200)
    A, Q1, _ = planted(300, 200, sigma)
    result = randomized_svd(A, 10, method=method, n_iter=6, rng=2, warn=False)
    np.testing.assert_allclose(result.s, sigma[:10], rtol=1e-6)
    # Subspaces: |<u_i, q_i>| = 1 to the same accuracy.
    overlap = np.abs(np.sum(result.U * Q1[:, :10], axis=0))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-5)


def test_lanczos_converges_to_machine_precision():
    sigma = SPECTRA["geometric"](200)
    A, _, Q2 = planted(300, 200, sigma)
    result = randomized_svd(A, 8, method="lanczos", rng=3)
    assert result.converged and result.info["stop"] == "Lanczos converged"
    np.testing.assert_allclose(result.s, sigma[:8], rtol=1e-12)
    overlap = np.abs(np.sum(result.Vt.T * Q2[:, :8], axis=0))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-10)


def test_auto_takes_subspace_iteration_on_fast_decay():
    sigma = 0.5 ** np.arange(200)
    A, _, _ = planted(300, 200, sigma)
    assert randomized_svd(A, 5, rng=0).info["method"] == "subspace"
    slow = planted(300, 200, SPECTRA["polynomial"](200))[0]
    assert randomized_svd(slow, 5, rng=0).info["method"] == "block_krylov"


@pytest.mark.parametrize("spectrum", ["geometric", "polynomial"])
def test_error_estimate_bounds_the_true_error(spectrum):
    """Over 20 seeds the estimate is an upper bound in at least 95% of them."""
    sigma = SPECTRA[spectrum](150)
    A, _, _ = planted(250, 150, sigma)
    held = []
    for seed in range(20):
        result = randomized_svd(A, 8, oversample=4, method="subspace", n_iter=1, rng=seed)
        held.append(result.error_estimate >= spectral_error(A, result))
    assert np.mean(held) >= 0.95


@pytest.mark.parametrize("method", ["subspace", "block_krylov", "auto"])
def test_tol_picks_the_smallest_rank_meeting_it(method):
    sigma = SPECTRA["geometric"](400)
    A, _, _ = planted(600, 400, sigma)
    tol = 1e-3
    result = randomized_svd(A, 100, tol=tol, method=method, rng=4)
    assert result.converged and result.info["stop"] == "tol met"
    r = result.s.size
    assert result.error_estimate <= tol * sigma[0]
    assert spectral_error(A, result) <= result.error_estimate
    # The exact rank-r error is sigma[r]: the chosen rank cannot be far below what tol needs.
    assert sigma[r] <= tol * sigma[0]
    assert r < 100


def test_tol_not_met_warns_and_reports():
    sigma = SPECTRA["flat"](200)
    A, _, _ = planted(300, 200, sigma)
    with pytest.warns(ConvergenceWarning, match="tol not met"):
        result = randomized_svd(A, 5, tol=1e-6, method="block_krylov", n_iter=2, rng=0)
    assert not result.converged and result.s.size == 5
    quiet = randomized_svd(A, 5, tol=1e-6, method="block_krylov", n_iter=2, rng=0, warn=False)
    assert not quiet.converged


def test_lanczos_iteration_cap_warns():
    sigma = SPECTRA["polynomial"](200)
    A, _, _ = planted(300, 200, sigma)
    with pytest.warns(ConvergenceWarning, match="Lanczos not converged"):
        result = randomized_svd(A, 10, method="lanczos", n_iter=1, rng=0)
    assert not result.converged


def test_sparse_and_operator_give_the_dense_result():
    rng = np.random.default_rng(5)
    S = sp.random_array((400, 250), density=0.05, rng=rng, format="csr")
    S = S + sp.csr_array(np.outer(rng.standard_normal(400), rng.standard_normal(250)))
    dense = S.toarray()
    ref = randomized_svd(dense, 6, rng=7)
    for A in (S, sp.csc_matrix(S), spla.aslinearoperator(S)):
        out = randomized_svd(A, 6, rng=7)
        np.testing.assert_allclose(out.s, ref.s, rtol=1e-12)
        np.testing.assert_allclose(np.abs(out.U.T @ ref.U), np.eye(6), atol=1e-9)
        assert out.n_passes == ref.n_passes


def test_oracles_sklearn_and_scipy():
    from sklearn.utils.extmath import randomized_svd as sk_randomized_svd

    sigma = SPECTRA["geometric"](200)
    A, _, _ = planted(300, 200, sigma)
    U, s, Vt = randomized_svd(A, 10, rng=0)
    sk_U, sk_s, sk_Vt = sk_randomized_svd(A, 10, n_iter=10, random_state=0)
    np.testing.assert_allclose(s, sk_s, rtol=1e-10)
    # Same sign convention as scikit-learn's svd_flip (u-based).
    np.testing.assert_allclose(U, sk_U, atol=1e-8)
    np.testing.assert_allclose(Vt, sk_Vt, atol=1e-8)
    rng = np.random.default_rng(1)
    S = sp.random_array((500, 300), density=0.02, rng=rng, format="csr")
    ours = randomized_svd(S, 8, method="lanczos", rng=0)
    theirs = spla.svds(S, k=8, solver="propack", return_singular_vectors=False)
    np.testing.assert_allclose(ours.s, np.sort(theirs)[::-1], rtol=1e-10)


def test_sparse_sketch_for_the_first_pass():
    sigma = SPECTRA["geometric"](200)
    A, _, _ = planted(300, 200, sigma)
    for sketch in ("countsketch", "sparse_sign", countsketch(15, 200, rng=3)):
        result = randomized_svd(A, 5, sketch=sketch, method="lanczos", rng=0)
        np.testing.assert_allclose(result.s, sigma[:5], rtol=1e-12)


def test_exactly_low_rank_and_zero_matrices():
    sigma = np.array([3.0, 2.0, 1.0])
    A, _, _ = planted(120, 90, sigma)
    for method in METHODS:
        result = randomized_svd(A, 3, method=method, rng=0)
        np.testing.assert_allclose(result.s, sigma, rtol=1e-12)
        assert np.all(np.isfinite(result.U)) and np.all(np.isfinite(result.Vt))
    result = randomized_svd(A, 5, method="block_krylov", rng=0)
    np.testing.assert_allclose(result.s[3:], 0.0, atol=1e-12)
    np.testing.assert_allclose(result.U.T @ result.U, np.eye(5), atol=1e-12)
    zero = randomized_svd(np.zeros((50, 40)), 3, rng=0)
    assert np.all(zero.s == 0) and np.all(np.isfinite(zero.U))


def test_small_matrix_takes_the_exact_svd():
    A = np.random.default_rng(0).standard_normal((30, 20))
    result = randomized_svd(A, 15, method="block_krylov", rng=0)
    assert result.info["method"] == "dense"
    np.testing.assert_allclose(result.s, np.linalg.svd(A, compute_uv=False)[:15], rtol=1e-12)


def test_wide_matrix_and_result_unpacking():
    sigma = SPECTRA["geometric"](150)
    A, _, _ = planted(150, 400, sigma)
    result = randomized_svd(A, 6, rng=0)
    assert isinstance(result, SVDResult) and "k=6" in repr(result)
    U, s, Vt = result
    assert U.shape == (150, 6) and Vt.shape == (6, 400)
    np.testing.assert_allclose(s, sigma[:6], rtol=1e-10)
    np.testing.assert_allclose(Vt @ Vt.T, np.eye(6), atol=1e-12)


@pytest.mark.parametrize("normalizer", ["lu", "none", "qr"])
def test_subspace_normalizers(normalizer):
    sigma = SPECTRA["geometric"](200)
    A, _, _ = planted(300, 200, sigma)
    result = randomized_svd(A, 5, method="subspace", normalizer=normalizer, n_iter=6, rng=0)
    # Relative error about (σ₁₆ / σ₅)^(2(2q + 1)) = 0.9^(10 · 26) ≈ 1e-12.
    np.testing.assert_allclose(result.s, sigma[:5], rtol=1e-10)
    np.testing.assert_allclose(result.U.T @ result.U, np.eye(5), atol=1e-12)


def test_float32_stays_float32(engine):
    sigma = SPECTRA["geometric"](200)
    A, _, _ = planted(300, 200, sigma, dtype=np.float32)
    result = randomized_svd(A, 5, rng=0, engine=engine)
    assert result.U.dtype == result.s.dtype == result.Vt.dtype == np.float32
    np.testing.assert_allclose(result.s, sigma[:5], rtol=1e-4)


def test_reproducible_and_engine_independent(engine):
    A, _, _ = planted(200, 150, SPECTRA["polynomial"](150))
    a = randomized_svd(A, 4, rng=11, engine=engine)
    b = randomized_svd(A, 4, rng=11, engine="reference")
    np.testing.assert_array_equal(a.U, b.U)
    np.testing.assert_array_equal(a.s, b.s)
    rows = np.argmax(np.abs(a.U), axis=0)
    assert np.all(a.U[rows, np.arange(4)] > 0)


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    A, _, _ = planted(120, 80, SPECTRA["geometric"](80))
    U, s, Vt = randomized_svd(torch.from_numpy(A), 4, rng=0)
    assert all(isinstance(x, torch.Tensor) for x in (U, s, Vt))
    np.testing.assert_allclose(s.numpy(), randomized_svd(A, 4, rng=0).s)


def test_input_not_modified():
    A, _, _ = planted(120, 80, SPECTRA["geometric"](80))
    A.flags.writeable = False
    before = A.copy()
    randomized_svd(A, 4, rng=0)
    randomized_svd(np.asfortranarray(A)[:, ::2], 4, rng=0)
    np.testing.assert_array_equal(A, before)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": 0}, ValueError, "k must be >= 1"),
        ({"k": 61}, ValueError, r"k must be <= min\(m, n\) = 60"),
        ({"k": True}, TypeError, "k must be an integer"),
        ({"method": "power"}, ValueError, "method must be one of"),
        ({"normalizer": "svd"}, ValueError, "normalizer must be one of"),
        ({"method": "lanczos", "normalizer": "lu"}, ValueError, "for method='subspace' only"),
        ({"tol": 0.0}, ValueError, "tol must be > 0"),
        ({"tol": 1.5}, ValueError, "tol must be <= 1"),
        ({"n_iter": -1}, ValueError, "n_iter must be >= 0"),
        ({"oversample": -2}, ValueError, "oversample must be >= 0"),
        ({"sketch": "fourier"}, ValueError, "sketch must be"),
        ({"sketch": countsketch(5, 60)}, ValueError, r"sketch must have shape \(13, 60\)"),
        ({"engine": "gpu"}, ValueError, "engine must be"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    A = np.random.default_rng(0).standard_normal((80, 60))
    options = {"k": 3, **kwargs}
    with pytest.raises(error, match=match):
        randomized_svd(A, **options)


def test_bad_matrices():
    A = np.random.default_rng(0).standard_normal((30, 20))
    A[3, 4] = np.nan
    with pytest.raises(ValueError, match="A"):
        randomized_svd(A, 2)
    with pytest.raises(TypeError, match="A"):
        randomized_svd(np.ones((30, 20), dtype=complex), 2)
    no_adjoint = spla.LinearOperator((300, 200), matvec=lambda v: np.ones(300) * v.sum())
    with pytest.raises(TypeError, match="adjoint"):
        randomized_svd(no_adjoint, 2)
