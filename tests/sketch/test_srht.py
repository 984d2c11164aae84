"""SRHT sketches: dense and fast products against S.todense(), blocks, embedding."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

from linalg.sketch._srht import srht

TRANSFORMS = ["dct", "hadamard"]
# (n, d): the first triple takes the fast path, the last the explicit one.
SIZES = [(1000, 300), (777, 400), (1024, 200), (300, 8)]


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize(("n", "d"), SIZES)
def test_products_match_dense(transform, n, d, rng):
    S = srht(d, n, transform=transform, rng=3)
    M = S.todense()
    A = rng.standard_normal((n, 4))
    A0 = A.copy()
    Y = rng.standard_normal((d, 3))
    tol = 1e-12 * np.sqrt(n)
    np.testing.assert_allclose(S @ A, M @ A, atol=tol)
    np.testing.assert_allclose(S @ A[:, 0], M @ A[:, 0], atol=tol)
    np.testing.assert_allclose(S.T @ Y, M.T @ Y, atol=tol)
    np.testing.assert_allclose(A.T @ S.T, A.T @ M.T, atol=tol)
    Asp = sp.random_array((n, 5), density=0.05, random_state=1, format="csr")
    np.testing.assert_allclose(S @ Asp, M @ Asp.toarray(), atol=tol)
    np.testing.assert_allclose(S @ aslinearoperator(A), M @ A, atol=tol)
    m = n // 3
    np.testing.assert_allclose(S[:, :m] @ A[:m] + S[:, m:] @ A[m:], S @ A, atol=tol)
    np.testing.assert_array_equal(A, A0)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_entries(transform):
    """Rows of the transform are orthogonal: S Sᵀ = (N/d) I when n = N; entries from formulas."""
    S = srht(50, 256, transform=transform, rng=5)
    M = S.todense()
    np.testing.assert_allclose(M @ M.T, 256 / 50 * np.eye(50), atol=1e-12)
    assert np.unique(S.rows).size == 50
    signs = S.rng.rademacher(256)
    if transform == "hadamard":
        np.testing.assert_allclose(np.abs(M), 1 / np.sqrt(50))
    else:
        from scipy.fft import dct

        F = dct(np.eye(256), type=2, norm="ortho", axis=0)
        np.testing.assert_allclose(M, np.sqrt(256 / 50) * F[S.rows] * signs, atol=1e-13)


def test_hadamard_padding():
    S = srht(20, 100, transform="hadamard", rng=0)
    assert S.N == 128 and S.todense().shape == (20, 100)
    assert S.rows.max() < 128
    full = srht(20, 128, transform="hadamard", rng=0)
    np.testing.assert_array_equal(S.todense(), full.todense()[:, :100])


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_subspace_embedding(transform):
    """n = 4096, r = 10, d = 200: every singular value of S Q within [0.6, 1.4] over 20 seeds.

    Tropp (2011) predicts distortion about sqrt(r log r / d) ≈ 0.34 at worst;
    the observed range is about [0.75, 1.25].
    """
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4096, 10)))
    for seed in range(20):
        s = np.linalg.svd(srht(200, 4096, transform=transform, rng=seed) @ Q, compute_uv=False)
        assert s.min() > 0.6 and s.max() < 1.4


def test_same_seed_engines_and_dtype(engine):
    a = srht(30, 500, rng=7, engine=engine)
    b = srht(30, 500, rng=7, engine="reference")
    np.testing.assert_array_equal(a.todense(), b.todense())
    assert not np.array_equal(a.todense(), srht(30, 500, rng=8).todense())
    S = srht(30, 500, rng=7, dtype=np.float32)
    A = np.random.default_rng(0).standard_normal((500, 2)).astype(np.float32)
    assert S.todense().dtype == np.float32 and (S @ A).dtype == np.float32
    assert (S.T @ (S @ A)).dtype == np.float32
    np.testing.assert_allclose(S @ A, b.todense() @ A, rtol=1e-4, atol=1e-4)


def test_bad_input():
    with pytest.raises(ValueError, match="d must be >= 1"):
        srht(0, 10)
    with pytest.raises(ValueError, match="d must be <= 10"):
        srht(11, 10, transform="dct")
    with pytest.raises(ValueError, match="d must be <= 16"):
        srht(17, 10)
    with pytest.raises(ValueError, match="transform must be"):
        srht(2, 10, transform="fft")
    with pytest.raises(ValueError, match="n must be >= 1"):
        srht(2, 0)
