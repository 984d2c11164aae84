"""Row-sampling sketches: products, unbiasedness, pivotal sampling properties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

from linalg.sketch._sampling import row_sampling

METHODS = ["iid", "pivotal"]


def _probs(n, seed=0):
    w = np.random.default_rng(seed).random(n) ** 3
    return w / w.sum()


@pytest.mark.parametrize("method", METHODS)
def test_products_match_dense(method, rng):
    n = 200
    S = row_sampling(_probs(n), 40, method=method, rng=1)
    M = S.todense()
    A = rng.standard_normal((n, 3))
    A0 = A.copy()
    Y = rng.standard_normal((S.d, 2))
    np.testing.assert_allclose(S @ A, M @ A, atol=1e-13)
    np.testing.assert_allclose(S.T @ Y, M.T @ Y, atol=1e-13)
    np.testing.assert_allclose(A.T @ S.T, A.T @ M.T, atol=1e-13)
    Asp = sp.random_array((n, 4), density=0.1, random_state=2, format="csr")
    out = S @ Asp
    assert sp.issparse(out)
    np.testing.assert_allclose(out.toarray(), M @ Asp.toarray(), atol=1e-13)
    np.testing.assert_allclose(S @ aslinearoperator(A), M @ A, atol=1e-13)
    np.testing.assert_allclose(S[:, :70] @ A[:70] + S[:, 70:] @ A[70:], S @ A, atol=1e-13)
    np.testing.assert_array_equal(A, A0)
    assert np.count_nonzero(M, axis=1).tolist() == [1] * S.d
    np.testing.assert_allclose(M[np.arange(S.d), S.indices], S.weights)


def test_weights():
    p = _probs(50)
    S = row_sampling(p, 20, rng=0)
    np.testing.assert_allclose(S.weights, 1 / np.sqrt(20 * p[S.indices]))
    P = row_sampling(p, 20, method="pivotal", rng=0)
    np.testing.assert_allclose(P.inclusion.sum(), 20)
    assert P.inclusion.max() <= 1.0
    np.testing.assert_allclose(P.weights, 1 / np.sqrt(P.inclusion[P.indices]))


@pytest.mark.parametrize("method", METHODS)
def test_unbiased_and_inclusion_frequencies(method):
    """Over T = 2000 seeds the mean of diag(SᵀS) is 1: the count of row i is
    a sum with mean π_i and variance <= π_i, so its mean over T seeds is within
    4 sqrt(π_i / T) of π_i (4 standard deviations, 16 rows tested)."""
    n, d, T = 16, 6, 2000
    p = _probs(n, seed=3)
    counts = np.zeros(n)
    diag = np.zeros(n)
    for seed in range(T):
        S = row_sampling(p, d, method=method, rng=seed)
        counts += np.bincount(S.indices, minlength=n)
        diag += np.bincount(S.indices, weights=S.weights**2, minlength=n)
    inclusion = row_sampling(p, d, method=method, rng=0).inclusion
    assert np.all(np.abs(counts / T - inclusion) <= 4 * np.sqrt(inclusion / T))
    assert np.all(np.abs(diag / T - 1) <= 4 / np.sqrt(inclusion * T))


def test_pivotal_exact_size_and_lower_variance():
    """Pivotal draws exactly d distinct rows; on a leverage-score example its
    Gram error E‖(S Q)ᵀ(S Q) - I‖_F² (the variance of the unbiased estimate of QᵀQ)
    is smaller than iid's: sampling without replacement drops the repeated rows."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((400, 5)) * rng.lognormal(0, 1, (400, 1))
    Q, _ = np.linalg.qr(A)
    lev = (Q**2).sum(axis=1)
    p = lev / lev.sum()
    estimates = {"iid": [], "pivotal": []}
    for seed in range(300):
        for method in METHODS:
            S = row_sampling(p, 40, method=method, rng=seed)
            if method == "pivotal":
                assert S.d == 40 and np.unique(S.indices).size == 40
            SQ = S @ Q
            estimates[method].append(np.sum((SQ.T @ SQ - np.eye(5)) ** 2))
    assert np.mean(estimates["pivotal"]) < 0.8 * np.mean(estimates["iid"])


def test_engines_and_seeds(engine):
    p = _probs(3000)
    a = row_sampling(p, 500, method="pivotal", rng=4, engine=engine)
    b = row_sampling(p, 500, method="pivotal", rng=4, engine="reference")
    np.testing.assert_array_equal(a.indices, b.indices)
    c = row_sampling(p, 500, method="pivotal", rng=5)
    assert not np.array_equal(a.indices, c.indices)
    i = row_sampling(p, 50, rng=4, engine=engine)
    np.testing.assert_array_equal(i.indices, row_sampling(p, 50, rng=4).indices)
    assert not np.array_equal(i.indices, row_sampling(p, 50, rng=5).indices)


def test_float32():
    S = row_sampling(np.full(8, 1 / 8), 3, rng=0, dtype=np.float32)
    A = np.ones((8, 2), dtype=np.float32)
    assert (S @ A).dtype == np.float32 and S.todense().dtype == np.float32
    assert (S.T @ (S @ A)).dtype == np.float32


def test_bad_input():
    p = np.full(4, 0.25)
    with pytest.raises(ValueError, match="d must be >= 1"):
        row_sampling(p, 0)
    with pytest.raises(ValueError, match="probs must be nonnegative"):
        row_sampling(np.array([1.5, -0.5]), 1)
    with pytest.raises(ValueError, match="probs must sum to 1"):
        row_sampling(np.full(4, 0.3), 1)
    with pytest.raises(ValueError, match="probs contains NaN"):
        row_sampling(np.array([np.nan, 1.0]), 1)
    with pytest.raises(ValueError, match="method must be"):
        row_sampling(p, 2, method="poisson")
    with pytest.raises(ValueError, match="d must be <= 2"):
        row_sampling(np.array([0.5, 0.5, 0.0]), 3, method="pivotal")
