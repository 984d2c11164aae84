"""Gaussian, Rademacher, CountSketch and sparse sign sketches: entries, products, engines."""

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

from linalg.sketch import countsketch, gaussian, rademacher, sparse_sign

from conftest import HAVE_NUMBA

KINDS = {
    "gaussian": gaussian,
    "rademacher": rademacher,
    "countsketch": countsketch,
    "sparse_sign": lambda d, n, **kw: sparse_sign(d, n, nnz_per_col=4, **kw),
}
ENGINES = ["reference"] + (["numba"] if HAVE_NUMBA else [])
needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="Numba is not installed")


@pytest.fixture(params=sorted(KINDS))
def kind(request):
    return request.param


@pytest.fixture(params=ENGINES)
def sketch_engine(request):
    return request.param


def _matrix(n=300, k=5, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal((n, k)).astype(dtype)


def test_product_equals_dense_matrix_product(kind, sketch_engine):
    S = KINDS[kind](40, 300, rng=7, engine=sketch_engine)
    A = _matrix()
    dense = S.todense()
    assert dense.shape == (40, 300)
    np.testing.assert_allclose(S @ A, dense @ A, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(S @ np.asfortranarray(A), dense @ A, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(S @ A[:, 0], dense @ A[:, 0], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(S @ A[::2].repeat(2, axis=0), dense @ A[::2].repeat(2, axis=0))


def test_transposes_equal_dense(kind, sketch_engine):
    S = KINDS[kind](40, 300, rng=7, engine=sketch_engine)
    dense = S.todense()
    Y = _matrix(40, 3, seed=1)
    B = _matrix(6, 300, seed=2)
    np.testing.assert_allclose(S.T @ Y, dense.T @ Y, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(B @ S.T, B @ dense.T, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(S.T.todense(), dense.T)
    assert S.T.shape == (300, 40) and S.T.T is S


def test_blocks_give_the_same_product(kind):
    S = KINDS[kind](30, 500, rng=11)
    A = _matrix(500, 4)
    blocked = S[:, :123] @ A[:123] + S[:, 123:400] @ A[123:400] + S[:, 400:] @ A[400:]
    np.testing.assert_allclose(blocked, S @ A, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(S[:, 123:400].todense(), S.todense()[:, 123:400])


@needs_numba
def test_engines_draw_identical_sketches(kind):
    for dtype in (np.float64, np.float32):
        ours = KINDS[kind](64, 1000, rng=123, dtype=dtype, engine="reference").todense()
        numba = KINDS[kind](64, 1000, rng=123, dtype=dtype, engine="numba").todense()
        np.testing.assert_array_equal(ours, numba)


@needs_numba
def test_numba_product_matches_reference_on_a_large_input(kind):
    # Large enough for the threaded row partition of the sparse kernels.
    A = _matrix(70_000, 3, seed=4)
    reference = KINDS[kind](50, 70_000, rng=5, engine="reference") @ A
    numba = KINDS[kind](50, 70_000, rng=5, engine="numba") @ A
    np.testing.assert_allclose(numba, reference, rtol=1e-12, atol=1e-11)


def test_sparse_and_operator_inputs(kind):
    S = KINDS[kind](40, 300, rng=3)
    A = sp.random(300, 20, density=0.1, random_state=0, format="csr")
    dense = S.todense()
    product = S @ A
    assert sp.issparse(product) == S.sparse
    as_array = product.toarray() if sp.issparse(product) else product
    np.testing.assert_allclose(as_array, dense @ A.toarray(), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(S @ aslinearoperator(A), dense @ A.toarray(), atol=1e-13)


def test_same_seed_same_sketch_other_seed_other_sketch(kind):
    a = KINDS[kind](20, 100, rng=1).todense()
    np.testing.assert_array_equal(a, KINDS[kind](20, 100, rng=1).todense())
    assert not np.array_equal(a, KINDS[kind](20, 100, rng=2).todense())


def test_dtype_is_kept_and_input_not_modified(kind):
    A = _matrix(dtype=np.float32)
    A.flags.writeable = False
    before = A.copy()
    S = KINDS[kind](40, 300, rng=0, dtype=np.float32)
    assert (S @ A).dtype == np.float32
    assert (KINDS[kind](40, 300, rng=0) @ A).dtype == np.float64
    np.testing.assert_array_equal(A, before)


def test_expected_gram_is_identity(kind):
    # E[SᵀS] = I: the mean of SᵀS over 200 seeds, entrywise within 5 standard errors.
    n, d, seeds = 12, 8, 200
    grams = np.array([KINDS[kind](d, n, rng=s).todense() for s in range(seeds)])
    mean = np.einsum("sij,sik->jk", grams, grams) / seeds
    assert np.abs(mean - np.eye(n)).max() < 5 * np.sqrt(2.0 / seeds)


# d rows for an r = 10 dimensional subspace of R^2000 and the distortion allowed.
EMBEDDING = {
    "gaussian": (400, 10**0.5 / 20 + 3 / 20),  # sqrt(r/d) + 3/sqrt(d)
    "rademacher": (400, 10**0.5 / 20 + 3 / 20),
    "sparse_sign": (400, 10**0.5 / 20 + 3 / 20),
    "countsketch": (1000, 0.5),  # d = O(r²): a looser embedding for the same d
}


def test_subspace_embedding_over_20_seeds(kind):
    d, eps = EMBEDDING[kind]
    Q, _ = np.linalg.qr(_matrix(2000, 10, seed=9))
    for seed in range(20):
        s = np.linalg.svd(KINDS[kind](d, 2000, rng=seed) @ Q, compute_uv=False)
        assert 1 - eps <= s.min() and s.max() <= 1 + eps, (seed, s.min(), s.max())


def test_countsketch_distribution_matches_scipy_clarkson_woodruff():
    # ‖S x‖² has mean ‖x‖² and variance (2/d)(‖x‖⁴ − Σ x_i⁴) for CountSketch;
    # SciPy's transform and ours agree with it and with each other.
    x = np.random.default_rng(0).standard_normal((200, 1))
    d, seeds = 16, 3000
    ours = np.array([np.sum((countsketch(d, 200, rng=s) @ x) ** 2) for s in range(seeds)])
    scipy_cwt = np.array(
        [np.sum(scipy.linalg.clarkson_woodruff_transform(x, d, rng=s) ** 2) for s in range(seeds)]
    )
    norm2 = float(np.sum(x**2))
    variance = 2.0 / d * (norm2**2 - float(np.sum(x**4)))
    for sample in (ours, scipy_cwt):
        assert abs(sample.mean() - norm2) < 5 * np.sqrt(variance / seeds)
        assert abs(sample.var() / variance - 1) < 0.15
    assert abs(ours.var() / scipy_cwt.var() - 1) < 0.2


def test_countsketch_has_one_signed_entry_per_column():
    dense = countsketch(7, 500, rng=2).todense()
    assert np.array_equal(np.abs(dense).sum(axis=0), np.ones(500))
    counts = np.abs(dense).sum(axis=1)
    assert counts.min() > 0.5 * 500 / 7  # every bucket used, none starved


def test_sparse_sign_rows_are_distinct_and_uniform():
    dense = sparse_sign(10, 4000, nnz_per_col=9, rng=4).todense()
    assert np.array_equal((dense != 0).sum(axis=0), np.full(4000, 9))
    np.testing.assert_allclose(np.abs(dense[dense != 0]), 1 / 3)
    per_row = (dense != 0).sum(axis=1) / 4000  # each row holds a non-zero w.p. 9/10
    np.testing.assert_allclose(per_row, 0.9, atol=0.03)
    full = sparse_sign(5, 10, nnz_per_col=5, rng=0).todense()
    assert (full != 0).all()


def test_torch_input_returns_torch():
    torch = pytest.importorskip("torch")
    S = countsketch(10, 50, rng=0)
    A = torch.randn(50, 3, dtype=torch.float64)
    out = S @ A
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), S.todense() @ A.numpy())


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: gaussian(0, 5), "d must be >= 1"),
        (lambda: countsketch(3, 0), "n must be >= 1"),
        (lambda: gaussian(3, 5, dtype=np.complex128), "dtype is complex"),
        (lambda: sparse_sign(3, 5, nnz_per_col=4), "nnz_per_col must be <= d"),
        (lambda: sparse_sign(3, 5, nnz_per_col=0), "nnz_per_col must be >= 1"),
        (lambda: countsketch(3, 5, rng=-1), "seed"),
        (lambda: countsketch(3, 5) @ np.ones((4, 2)), "A must have 5 rows"),
        (lambda: countsketch(3, 5) @ np.full((5, 2), np.nan), "A"),
        (lambda: countsketch(3, 5).T @ np.ones((4, 2)), "Y must have 3 rows"),
        (lambda: countsketch(3, 5)[1:2], "sliced by columns"),
        (lambda: countsketch(3, 5)[:, 3:3], "a < b"),
        (lambda: countsketch(3, 5, engine="nope"), "engine"),
    ],
)
def test_bad_input_is_refused(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_non_finite_input_is_found_after_the_product(kind):
    # A is checked only when S @ A is not finite: a NaN or Inf anywhere in A shows there.
    for bad, word in ((np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "Inf")):
        A = _matrix(300, 4)
        A[217, 3] = bad
        with pytest.raises(ValueError, match=f"A contains {word}"):
            KINDS[kind](40, 300, rng=0) @ A


def test_overflow_of_a_finite_input_warns():
    A = np.full((100, 2), 3e38, dtype=np.float32)
    with pytest.warns(RuntimeWarning, match="overflow in S @ A"):
        out = countsketch(1, 100, rng=0, dtype=np.float32) @ A
    assert np.isinf(out).all()


def test_operator_without_adjoint_is_refused_clearly():
    from scipy.sparse.linalg import LinearOperator

    L = LinearOperator((5, 2), matvec=lambda v: np.ones(5) * v.sum(), dtype=np.float64)
    with pytest.raises(TypeError, match="no adjoint product"):
        countsketch(3, 5, rng=0) @ L
