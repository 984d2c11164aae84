"""Leverage and ridge leverage scores against dense float64 definitions."""

import numpy as np
import pytest
import scipy.sparse as sp

from linalg._core.random import RandomStream
from linalg.sketch import _leverage
from linalg.sketch._kinds import make_sketch
from linalg.sketch._leverage import leverage_scores
from linalg.sketch._ridge_leverage import rbf_kernel, ridge_leverage_scores


def svd_leverage(A):
    """Squared row norms of the left singular vectors of the numerical rank."""
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    rank = int(np.sum(s > max(A.shape) * np.finfo(float).eps * s[0]))
    return np.sum(U[:, :rank] ** 2, axis=1)


def student_rows(seed, n=2000, p=10, df=1):
    return np.random.default_rng(seed).standard_t(df, size=(n, p))


def ridge_dense(X, lam):
    """x_iᵀ (XᵀX + λI)⁻¹ x_i by a dense solve."""
    G = X.T @ X + lam * np.eye(X.shape[1])
    return np.einsum("ij,ji->i", X, np.linalg.solve(G, X.T))


def ridge_kernel_dense(K, lam):
    """diag(K (K + λI)⁻¹) by a dense solve (K symmetric)."""
    return np.diag(np.linalg.solve(K + lam * np.eye(len(K)), K))


def clustered_points(n=1000):
    g = np.random.default_rng(0)
    return np.concatenate([g.standard_normal((n - 50, 3)), 6.0 + 0.3 * g.standard_normal((50, 3))])


# --- leverage_scores: exact ---------------------------------------------------------


def test_exact_matches_svd_definition(rng):
    A = rng.standard_normal((300, 8)) * np.geomspace(1.0, 1e3, 8)
    A[:3] *= 50.0
    scores = leverage_scores(A)
    np.testing.assert_allclose(scores, svd_leverage(A), rtol=0, atol=1e-12)
    assert scores.dtype == np.float64 and scores.shape == (300,)
    assert scores.sum() == pytest.approx(8.0, abs=1e-12)


def test_exact_rank_deficient(rng):
    A = rng.standard_normal((200, 4)) @ rng.standard_normal((4, 9))
    scores = leverage_scores(A)
    np.testing.assert_allclose(scores, svd_leverage(A), rtol=0, atol=1e-12)
    assert scores.sum() == pytest.approx(4.0, abs=1e-10)
    assert scores.max() <= 1.0 + 1e-12


def test_exact_sparse_equals_dense(rng):
    A = sp.random_array((400, 12), density=0.2, rng=rng, format="csc")
    np.testing.assert_allclose(leverage_scores(A), svd_leverage(A.toarray()), atol=1e-12)


def test_exact_refuses_a_large_sparse_matrix(rng, monkeypatch):
    monkeypatch.setattr(_leverage, "_DENSE_LIMIT", 100)
    A = sp.random_array((50, 5), density=0.5, rng=rng, format="csr")
    with pytest.raises(ValueError, match="method='sketch'"):
        leverage_scores(A)
    assert leverage_scores(A, method="sketch", rng=0).shape == (50,)


# --- leverage_scores: sketch ----------------------------------------------------------


@pytest.mark.parametrize(("df", "sketch"), [(1, "auto"), (2, "auto"), (1, "gaussian")])
def test_sketch_within_factor_two_on_coherent_rows(df, sketch):
    """Every row within [0.5, 2] × exact in at least 19 of 20 seeds (measured: all 20,
    ratios within [0.67, 1.78] for both kinds and both df)."""
    good = 0
    for seed in range(20):
        A = student_rows(1000 + seed, df=df)
        ratio = leverage_scores(A, method="sketch", sketch=sketch, rng=seed) / svd_leverage(A)
        good += bool(np.all((ratio >= 0.5) & (ratio <= 2.0)))
    assert good >= 19


def test_sketch_with_jl_projection():
    """rank > jl_dim: Π₂ is used, and each score is the unprojected one times an
    independent chi-square(r₂)/r₂ number: mean 1, standard deviation √(2/r₂)."""
    A = student_rows(7, n=3000, p=60, df=2)
    direct = leverage_scores(A, method="sketch", rng=3)  # jl_dim "auto" >= 60: no Π₂
    ratio = direct / svd_leverage(A)
    assert np.all((ratio > 0.7) & (ratio < 1.5))
    projected = leverage_scores(A, method="sketch", jl_dim=40, rng=3)
    factor = projected / direct
    assert factor.mean() == pytest.approx(1.0, abs=0.05)
    assert factor.std() == pytest.approx(np.sqrt(2 / 40), rel=0.2)


def test_sketch_rank_deficient(rng):
    A = rng.standard_normal((1500, 4)) @ rng.standard_normal((4, 9))
    scores = leverage_scores(A, method="sketch", rng=1)
    ratio = scores / svd_leverage(A)
    assert np.all((ratio > 0.5) & (ratio < 2.0))


def test_sketch_sparse_equals_dense(rng):
    A = sp.random_array((3000, 10), density=0.1, rng=rng, format="csr")
    sparse = leverage_scores(A, method="sketch", rng=5)
    dense = leverage_scores(A.toarray(), method="sketch", rng=5)
    np.testing.assert_allclose(sparse, dense, rtol=1e-10, atol=1e-14)


def test_sketch_operator_accepted():
    A = student_rows(3, n=1000, p=5, df=2)
    S = make_sketch("gaussian", 100, 1000, rng=4)
    ratio = leverage_scores(A, method="sketch", sketch=S) / svd_leverage(A)
    assert np.all((ratio > 0.5) & (ratio < 2.0))


def test_sketch_reproducible_by_seed():
    A = student_rows(2, n=1000, p=6)
    first = leverage_scores(A, method="sketch", rng=11)
    np.testing.assert_array_equal(first, leverage_scores(A, method="sketch", rng=11))
    np.testing.assert_array_equal(first, leverage_scores(A, method="sketch", rng=RandomStream(11)))
    assert not np.array_equal(first, leverage_scores(A, method="sketch", rng=12))


@pytest.mark.parametrize("method", ["exact", "sketch"])
def test_float32_kept(method):
    A = student_rows(4, n=800, p=6, df=2)
    scores = leverage_scores(A.astype(np.float32), method=method, rng=0)
    assert scores.dtype == np.float32
    reference = leverage_scores(A, method=method, rng=0)
    np.testing.assert_allclose(scores, reference, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("method", ["exact", "sketch"])
def test_input_not_modified_and_read_only_works(method):
    A = student_rows(5, n=600, p=5)
    A.flags.writeable = False
    before = A.copy()
    leverage_scores(A, method=method, rng=0)
    leverage_scores(np.asfortranarray(A)[::2], method=method, rng=0)
    np.testing.assert_array_equal(A, before)


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    A = student_rows(6, n=500, p=4, df=2)
    scores = leverage_scores(torch.from_numpy(A.astype(np.float32)), method="sketch", rng=0)
    assert isinstance(scores, torch.Tensor) and scores.dtype == torch.float32
    expected = leverage_scores(A.astype(np.float32), method="sketch", rng=0)
    np.testing.assert_array_equal(scores.numpy(), expected)


def test_integer_input_promoted():
    A = np.arange(40).reshape(10, 4) % 7
    assert leverage_scores(A).dtype == np.float64


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "qr"}, ValueError, "method"),
        ({"method": "sketch", "sketch": "nope"}, ValueError, "sketch"),
        ({"method": "sketch", "sketch_size": 3}, ValueError, "sketch_size"),
        ({"method": "sketch", "sketch_size": 2.5}, TypeError, "sketch_size"),
        ({"method": "sketch", "jl_dim": 0}, ValueError, "jl_dim"),
        ({"method": "sketch", "rng": "seed"}, TypeError, "rng"),
    ],
)
def test_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        leverage_scores(np.ones((20, 4)), **kwargs)


def test_bad_matrices():
    with pytest.raises(ValueError, match="n >= p"):
        leverage_scores(np.ones((3, 5)))
    A = np.ones((10, 2))
    A[3, 1] = np.nan
    with pytest.raises(ValueError, match="A contains NaN"):
        leverage_scores(A)
    with pytest.raises(ValueError, match="A contains Inf"):
        leverage_scores(sp.csr_array(np.where(np.isnan(A), np.inf, A)), method="sketch")
    with pytest.raises(TypeError, match="A is complex"):
        leverage_scores(np.ones((4, 2), dtype=complex))
    with pytest.raises(ValueError, match="A must be 2-D"):
        leverage_scores(np.ones(5))
    with pytest.raises(ValueError, match="sketch must have shape"):
        leverage_scores(A[:, :1] + 1, method="sketch", sketch=make_sketch("gaussian", 5, 9))


# --- ridge_leverage_scores: exact -------------------------------------------------------


@pytest.mark.parametrize("shape", [(120, 7), (15, 40)])
def test_ridge_exact_matches_dense_formula(rng, shape):
    X = rng.standard_normal(shape)
    scores = ridge_leverage_scores(X, 0.3)
    np.testing.assert_allclose(scores, ridge_dense(X, 0.3), rtol=0, atol=1e-12)
    s = np.linalg.svd(X, compute_uv=False) ** 2
    assert scores.sum() == pytest.approx(np.sum(s / (s + 0.3)), abs=1e-12)


def test_ridge_exact_kernel_matches_dense_formula(rng):
    X = rng.standard_normal((150, 3))
    k = rbf_kernel(0.7)
    K = np.exp(-0.7 * np.sum((X[:, None] - X[None]) ** 2, axis=-1))
    np.testing.assert_allclose(k(X, X), K, atol=1e-13)
    scores = ridge_leverage_scores(X, 0.05, kernel=k)
    np.testing.assert_allclose(scores, ridge_kernel_dense(K, 0.05), rtol=0, atol=1e-12)
    linear = ridge_leverage_scores(X, 0.05, kernel=lambda A, B: A @ B.T)
    np.testing.assert_allclose(linear, ridge_dense(X, 0.05), atol=1e-12)


# --- ridge_leverage_scores: recursive -----------------------------------------------------


class ShapeGuard:
    """A kernel that refuses to be evaluated on all n points against all n points."""

    def __init__(self, kernel, n):
        self.kernel, self.n, self.largest = kernel, n, 0

    def __call__(self, A, B):
        assert not (len(A) >= self.n and len(B) >= self.n), "formed the n x n kernel"
        self.largest = max(self.largest, len(A) * len(B))
        return self.kernel(A, B)

    def diag(self, A):
        return self.kernel.diag(A)


@pytest.mark.parametrize("lam", [0.01, 1.0])
def test_recursive_close_to_exact_without_forming_the_kernel(lam):
    """Measured over 20 seeds: every score in [0.68, 1.68] × exact, sums within 8%."""
    X = clustered_points()
    k = rbf_kernel(0.2)
    exact = ridge_leverage_scores(X, lam, kernel=k)
    for seed in range(4):
        guard = ShapeGuard(k, len(X))
        approx = ridge_leverage_scores(X, lam, kernel=guard, method="recursive", rng=seed)
        ratio = approx / exact
        assert np.all((ratio > 0.5) & (ratio < 2.0)), (ratio.min(), ratio.max())
        assert approx.sum() == pytest.approx(exact.sum(), rel=0.1)
        # O(n s) memory, s landmarks <= oversample (8) x the overestimated d_eff
        assert guard.largest <= len(X) * 16 * exact.sum()


def test_recursive_matrix_case():
    X = student_rows(8, n=3000, p=6, df=2)
    exact = ridge_leverage_scores(X, 10.0)
    approx = ridge_leverage_scores(X, 10.0, method="recursive", rng=2)
    ratio = approx / exact
    assert np.all((ratio > 0.5) & (ratio < 2.0))


def test_recursive_plain_callable_gives_same_scores():
    X = clustered_points(600)
    k = rbf_kernel(0.2)
    with_diag = ridge_leverage_scores(X, 0.1, kernel=k, method="recursive", rng=4)
    plain = ridge_leverage_scores(X, 0.1, kernel=lambda A, B: k(A, B), method="recursive", rng=4)
    np.testing.assert_allclose(plain, with_diag, rtol=0, atol=1e-12)


def test_recursive_small_problem_is_exact(rng):
    X = rng.standard_normal((100, 3))
    k = rbf_kernel(1.0)
    np.testing.assert_allclose(
        ridge_leverage_scores(X, 0.1, kernel=k, method="recursive", rng=0),
        ridge_leverage_scores(X, 0.1, kernel=k),
        atol=1e-12,
    )


def test_recursive_reproducible_by_seed():
    X = clustered_points(700)
    k = rbf_kernel(0.2)
    first = ridge_leverage_scores(X, 0.1, kernel=k, method="recursive", rng=1)
    np.testing.assert_array_equal(
        first, ridge_leverage_scores(X, 0.1, kernel=k, method="recursive", rng=1)
    )
    assert not np.array_equal(
        first, ridge_leverage_scores(X, 0.1, kernel=k, method="recursive", rng=2)
    )


@pytest.mark.parametrize("method", ["exact", "recursive"])
def test_ridge_float32_kept_and_input_not_modified(method):
    X = clustered_points(500).astype(np.float32)
    X.flags.writeable = False
    before = X.copy()
    scores = ridge_leverage_scores(X, 0.1, kernel=rbf_kernel(0.2), method=method, rng=0)
    assert scores.dtype == np.float32
    np.testing.assert_array_equal(X, before)
    reference = ridge_leverage_scores(
        X.astype(np.float64), 0.1, kernel=rbf_kernel(0.2), method=method, rng=0
    )
    np.testing.assert_allclose(scores, reference, rtol=1e-3)


def test_ridge_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    X = np.random.default_rng(0).standard_normal((50, 3))
    scores = ridge_leverage_scores(torch.from_numpy(X), 0.5)
    assert isinstance(scores, torch.Tensor)
    np.testing.assert_allclose(scores.numpy(), ridge_dense(X, 0.5), atol=1e-12)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0.0,), {}, ValueError, "lam"),
        ((-1.0,), {}, ValueError, "lam"),
        ((np.nan,), {}, ValueError, "lam"),
        ((1.0,), {"method": "sketch"}, ValueError, "method"),
        ((1.0,), {"oversample": 0.0}, ValueError, "oversample"),
        ((1.0,), {"kernel": "rbf"}, TypeError, "kernel"),
        ((1.0,), {"kernel": lambda A, B: np.ones((2, 2))}, ValueError, "kernel"),
        ((1.0,), {"kernel": lambda A, B: np.full((len(A), len(B)), np.nan)}, ValueError, "NaN"),
    ],
)
def test_ridge_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        ridge_leverage_scores(np.ones((10, 2)), *args, **kwargs)


def test_ridge_bad_points():
    X = np.ones((10, 2))
    X[0, 0] = np.inf
    with pytest.raises(ValueError, match="X contains Inf"):
        ridge_leverage_scores(X, 1.0)
    with pytest.raises(ValueError, match="X must be 2-D"):
        ridge_leverage_scores(np.ones(4), 1.0)
    with pytest.raises(ValueError, match="gamma"):
        rbf_kernel(0.0)
