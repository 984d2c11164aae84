"""TruncatedSVD: every update against the dense SVD of the updated surrogate."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from linalg.svd._result import SVDResult
from linalg.svd._truncated import TruncatedSVD

pytestmark = pytest.mark.filterwarnings("error")

METHODS = ["zha_simon", "sparse", "krylov"]


def orthonormal(rng, rows, cols):
    return np.linalg.qr(rng.standard_normal((rows, cols)))[0]


def factors(rng, m=90, n=70, k=6):
    """A rank-k surrogate with well separated singular values."""
    return orthonormal(rng, m, k), np.geomspace(10.0, 2.0, k), orthonormal(rng, n, k).T


def best_rank_k(M, k):
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    return U[:, :k], s[:k], Vt[:k]


def assert_svd_of(tsvd, M, rtol=1e-10):
    """``tsvd`` holds the rank-k SVD of ``M``: values, subspaces, reconstruction, signs."""
    k = tsvd.rank
    U_ref, s_ref, Vt_ref = best_rank_k(M, k)
    U, s, Vt = (np.asarray(x) for x in (tsvd.U, tsvd.s, tsvd.Vt))
    assert U.shape == U_ref.shape and Vt.shape == Vt_ref.shape and tsvd.shape == M.shape
    np.testing.assert_allclose(s, s_ref, rtol=rtol)
    assert np.linalg.norm(U @ U.T - U_ref @ U_ref.T, 2) < rtol * 10
    assert np.linalg.norm(Vt.T @ Vt - Vt_ref.T @ Vt_ref, 2) < rtol * 10
    np.testing.assert_allclose((U * s) @ Vt, (U_ref * s_ref) @ Vt_ref, atol=rtol * 10 * s_ref[0])
    biggest = U[np.argmax(np.abs(U), axis=0), np.arange(k)]
    assert np.all(biggest > 0)  # svd_flip convention
    assert tsvd.orthogonality_error() < 1e-12


def surrogate(U, s, Vt):
    return (U * s) @ Vt


def sparse_block(rng, shape, density=0.15):
    return sp.random_array(shape, density=density, rng=rng, format="csr")


def new(U, s, Vt, method, **kw):
    kw.setdefault("krylov_rank", 20)  # >= every update's rank here: "krylov" is exact
    return TruncatedSVD(U, s, Vt, method=method, rng=0, **kw)


# --- one update of each kind, each method: the dense SVD of the updated surrogate -------


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("method", METHODS)
def test_add_rows(method, sparse, rng):
    U, s, Vt = factors(rng)
    E = sparse_block(rng, (7, 70)) if sparse else rng.standard_normal((7, 70))
    tsvd = new(U, s, Vt, method).add_rows(E)
    E = E.toarray() if sparse else E
    assert_svd_of(tsvd, np.vstack([surrogate(U, s, Vt), E]))


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("method", METHODS)
def test_add_columns(method, sparse, rng):
    U, s, Vt = factors(rng)
    E = sparse_block(rng, (90, 9)) if sparse else rng.standard_normal((90, 9))
    tsvd = new(U, s, Vt, method).add_columns(E)
    E = E.toarray() if sparse else E
    assert_svd_of(tsvd, np.hstack([surrogate(U, s, Vt), E]))


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("method", METHODS)
def test_update(method, sparse, rng):
    U, s, Vt = factors(rng)
    if sparse:
        B, C = sparse_block(rng, (90, 4), 0.2), sparse_block(rng, (70, 4), 0.2)
    else:
        B, C = rng.standard_normal((90, 4)), rng.standard_normal((70, 4))
    tsvd = new(U, s, Vt, method).update(B, C)
    B, C = (X.toarray() if sparse else X for X in (B, C))
    assert_svd_of(tsvd, surrogate(U, s, Vt) + B @ C.T)


@pytest.mark.parametrize("method", METHODS)
def test_updates_in_sequence(method, rng):
    U, s, Vt = factors(rng)
    tsvd = new(U, s, Vt, method)
    M = surrogate(U, s, Vt)
    for _ in range(3):
        E, F = rng.standard_normal((5, M.shape[1])), rng.standard_normal((M.shape[0] + 5, 3))
        B, C = rng.standard_normal((M.shape[0] + 5, 2)), rng.standard_normal((M.shape[1] + 3, 2))
        tsvd.add_rows(E).add_columns(F).update(B, C).decay(0.9)
        M = surrogate(*best_rank_k(np.vstack([M, E]), 6))
        M = surrogate(*best_rank_k(np.hstack([M, F]), 6))
        M = 0.9 * surrogate(*best_rank_k(M + B @ C.T, 6))
    assert_svd_of(tsvd, M, rtol=1e-9)
    assert tsvd.n_updates == 12


def test_update_of_rank_inside_the_subspace_changes_only_the_small_matrix(rng):
    """B in span(U), C in span(V): no complement (r = 0) on either side."""
    U, s, Vt = factors(rng)
    B, C = U @ rng.standard_normal((6, 2)), Vt.T @ rng.standard_normal((6, 2))
    for method in METHODS:
        tsvd = new(U, s, Vt, method).update(B, C)
        assert_svd_of(tsvd, surrogate(U, s, Vt) + B @ C.T)


# --- the sparse method over many updates ---------------------------------------------


def planted(rng, m, n, rank=4, density=0.03):
    """Sparse noise plus a rank-``rank`` part with sparse factors, as a CSR matrix."""
    L = sp.random_array((m, rank), density=0.3, rng=rng) * 20.0
    R = sp.random_array((n, rank), density=0.3, rng=rng)
    return sp.csr_array(L @ R.T + 0.3 * sp.random_array((m, n), density=density, rng=rng))


def follow_batches(A, k, method, batches, **kw):
    start = A.shape[0] - sum(b.shape[0] for b in batches)
    tsvd = TruncatedSVD(*best_rank_k(A[:start].toarray(), k), method=method, **kw)
    for batch in batches:
        tsvd.add_rows(batch)
    return tsvd


def test_100_sparse_batches_stay_orthonormal_and_as_accurate_as_zha_simon(rng):
    A = planted(rng, 700, 120)
    batches = [A[200 + 5 * i : 205 + 5 * i] for i in range(100)]
    exact = np.linalg.svd(A.toarray(), compute_uv=False)[:10]
    errors = {}
    for method in ("zha_simon", "sparse"):
        tsvd = follow_batches(A, 10, method, batches)
        assert tsvd.orthogonality_error() <= 1e-10
        errors[method] = np.max(np.abs(tsvd.s - exact) / exact)
    assert errors["sparse"] <= 1.5 * errors["zha_simon"]
    assert errors["zha_simon"] < 0.2  # the surrogate's own truncation error, not noise


def test_sparse_matches_zha_simon_along_the_way(rng):
    A = planted(rng, 300, 80)
    batches = [A[100 + 10 * i : 110 + 10 * i] for i in range(20)]
    sparse = follow_batches(A, 8, "sparse", batches)
    dense = follow_batches(A, 8, "zha_simon", batches)
    np.testing.assert_allclose(sparse.s, dense.s, rtol=1e-11)
    np.testing.assert_allclose(sparse.U, dense.U, atol=1e-9)
    np.testing.assert_allclose(sparse.Vt, dense.Vt, atol=1e-9)


def test_reorthogonalization_is_triggered_by_reorth_tol(rng):
    A = planted(rng, 200, 60)
    batches = [A[100 + 10 * i : 110 + 10 * i] for i in range(10)]
    always = follow_batches(A, 6, "sparse", batches, reorth_tol=1e-300)
    never = follow_batches(A, 6, "sparse", batches, reorth_tol=1.0)
    assert always.n_reorth == 10 and never.n_reorth == 0
    np.testing.assert_allclose(always.s, never.s, rtol=1e-11)
    np.testing.assert_allclose(always.U, never.U, atol=1e-9)
    assert always.orthogonality_error() < 1e-14


def test_dominant_new_rows_fall_back_to_the_explicit_factor(rng):
    """Rows that carry most of the new top singular vectors make ``K`` singular:
    the update is applied to the explicit factors and stays exact."""
    U, s, Vt = factors(rng)
    E = sp.csr_array(1e6 * rng.standard_normal((3, 70)) * (rng.random((3, 70)) < 0.2))
    tsvd = new(U, s, Vt, "sparse").add_rows(E)
    assert_svd_of(tsvd, np.vstack([surrogate(U, s, Vt), E.toarray()]), rtol=1e-9)


def test_sparse_and_dense_blocks_give_the_same_answer(rng):
    U, s, Vt = factors(rng)
    E = sparse_block(rng, (6, 70))
    results = [
        TruncatedSVD(U, s, Vt, method=method).add_rows(block)
        for method in ("sparse", "zha_simon")
        for block in (E, E.toarray(), sp.coo_matrix(E))
    ]
    for other in results[1:]:
        np.testing.assert_allclose(other.s, results[0].s, rtol=1e-12)
        np.testing.assert_allclose(other.U, results[0].U, atol=1e-12)
        np.testing.assert_allclose(other.Vt, results[0].Vt, atol=1e-12)


# --- remove_rows, decay --------------------------------------------------------------


@pytest.mark.parametrize("method", ["zha_simon", "sparse"])
def test_remove_rows_undoes_add_rows_in_the_row_space(method, rng):
    U, s, Vt = factors(rng)
    E = rng.standard_normal((8, 6)) @ Vt  # rows in the row space: [A_k; E] has rank k
    tsvd = new(U, s, Vt, method).add_rows(E if method == "zha_simon" else sp.csr_array(E))
    tsvd.remove_rows(np.arange(90, 98))
    assert tsvd.shape == (90, 70)
    np.testing.assert_allclose(tsvd.s, s, rtol=1e-12)
    assert np.linalg.norm(tsvd.U @ tsvd.U.T - U @ U.T, 2) < 1e-12
    np.testing.assert_allclose(surrogate(tsvd.U, tsvd.s, tsvd.Vt), surrogate(U, s, Vt), atol=1e-12)


@pytest.mark.parametrize(
    "idx",
    [np.array([0, 5, 7, 89]), np.array([-1, -2, 3]), slice(10, 30), np.arange(90) % 3 == 0],
    ids=["ints", "negative", "slice", "mask"],
)
def test_remove_rows_is_the_svd_of_the_kept_rows(idx, rng):
    U, s, Vt = factors(rng)
    keep = np.ones(90, bool)
    keep[idx] = False
    tsvd = new(U, s, Vt, "auto").remove_rows(idx)
    assert_svd_of(tsvd, surrogate(U, s, Vt)[keep])


def test_decay_scales_the_singular_values_only(rng):
    U, s, Vt = factors(rng)
    tsvd = new(U, s, Vt, "auto")
    U0, Vt0 = tsvd.U.copy(), tsvd.Vt.copy()
    tsvd.decay(0.5).decay(1.0)
    np.testing.assert_allclose(tsvd.s, 0.5 * s, rtol=1e-15)
    np.testing.assert_array_equal(tsvd.U, U0)
    np.testing.assert_array_equal(tsvd.Vt, Vt0)
    E = rng.standard_normal((4, 70))
    tsvd.add_rows(E)
    assert_svd_of(tsvd, np.vstack([0.5 * surrogate(U, s, Vt), E]))


# --- krylov --------------------------------------------------------------------------


def test_krylov_on_a_high_rank_update_approximates_zha_simon(rng):
    """A 60-row update whose complement is rank 5 plus noise of size 1e-7.

    With ``q = 8 >= 5`` directions the Krylov space holds the rank-5 part
    to within the noise, and the rest of the complement (Frobenius norm
    about 1e-7 · √(60·150) ≈ 1e-5) is what is left out: singular values
    agree with Zha–Simon to about that over σ_k (≈ 1), and exactly (1e-10)
    without the noise.
    """
    U, s, Vt = factors(rng, m=120, n=150, k=8)
    low_rank = rng.standard_normal((60, 5)) @ rng.standard_normal((5, 150))
    for noise, rtol in ((0.0, 1e-10), (1e-7, 1e-5)):
        E = low_rank + noise * rng.standard_normal((60, 150))
        exact = TruncatedSVD(U, s, Vt, method="zha_simon").add_rows(E)
        approx = TruncatedSVD(U, s, Vt, method="krylov", krylov_rank=8, rng=1).add_rows(E)
        np.testing.assert_allclose(approx.s, exact.s, rtol=rtol)
        assert np.linalg.norm(approx.Vt.T @ approx.Vt - exact.Vt.T @ exact.Vt, 2) < 10 * rtol
        assert approx.orthogonality_error() < 1e-13


def test_auto_uses_krylov_for_dense_updates_of_rank_above_4k(rng):
    U, s, Vt = factors(rng, m=120, n=150, k=4)
    for p, expected in ((16, "zha_simon"), (17, "krylov")):
        E = rng.standard_normal((p, 150))
        auto = TruncatedSVD(U, s, Vt, rng=3).add_rows(E)
        chosen = TruncatedSVD(U, s, Vt, method=expected, rng=3).add_rows(E)
        np.testing.assert_array_equal(auto.s, chosen.s)


def test_krylov_is_reproducible_with_a_seed(rng):
    U, s, Vt = factors(rng)
    E = rng.standard_normal((40, 70))
    first, second = (
        TruncatedSVD(U, s, Vt, method="krylov", krylov_rank=4, rng=5).add_rows(E).add_rows(E)
        for _ in range(2)
    )
    np.testing.assert_array_equal(first.U, second.U)


# --- dtypes, inputs, interfaces ------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_float32_stays_float32(method, rng):
    U, s, Vt = (x.astype(np.float32) for x in factors(rng))
    E = rng.standard_normal((5, 70))  # float64 updates are cast to the object's dtype
    F = rng.standard_normal((95, 3))
    tsvd = new(U, s, Vt, method).add_rows(sp.csr_array(E)).add_columns(F)
    assert tsvd.dtype == np.float32
    assert {tsvd.U.dtype, tsvd.s.dtype, tsvd.Vt.dtype} == {np.dtype(np.float32)}
    M = surrogate(*best_rank_k(np.vstack([surrogate(U, s, Vt).astype(np.float64), E]), 6))
    ref = best_rank_k(np.hstack([M, F]), 6)[1]
    np.testing.assert_allclose(tsvd.s, ref, rtol=1e-4)
    assert tsvd.orthogonality_error() < 1e-4


def test_inputs_are_not_modified(rng):
    U, s, Vt = factors(rng)
    E, F = rng.standard_normal((5, 70)), sparse_block(rng, (5, 70))
    B, C = rng.standard_normal((100, 2)), rng.standard_normal((70, 2))
    inputs = [U, s, Vt, E, B, C]
    before = [x.copy() for x in inputs] + [F.copy()]
    for method in METHODS:
        tsvd = new(U, s, Vt, method).add_rows(E).add_rows(F).update(B, C)
        tsvd.U, tsvd.Vt  # noqa: B018  (forming the factors flips signs internally)
        tsvd.remove_rows([0]).decay(0.5)
    for x, y in zip(inputs, before, strict=False):
        np.testing.assert_array_equal(x, y)
    assert (before[-1] != F).nnz == 0


def test_returned_factors_are_read_only(rng):
    tsvd = new(*factors(rng), "auto")
    with pytest.raises(ValueError, match="read-only"):
        tsvd.U[0, 0] = 1.0


def test_linear_operator_and_result(rng):
    U, s, Vt = factors(rng)
    tsvd = new(U, s, Vt, "auto")
    x, y = rng.standard_normal(70), rng.standard_normal((90, 3))
    L = tsvd.as_linear_operator()
    np.testing.assert_allclose(L @ x, surrogate(U, s, Vt) @ x, rtol=1e-12)
    np.testing.assert_allclose(L.T @ y, surrogate(U, s, Vt).T @ y, rtol=1e-12)
    result = tsvd.to_result()
    assert isinstance(result, SVDResult) and result.info["n_updates"] == 0
    np.testing.assert_array_equal(result.s, s)
    assert tsvd.rank == 6 and "shape=(90, 70)" in repr(tsvd)


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    U, s, Vt = factors(rng)
    tsvd = TruncatedSVD(*(torch.from_numpy(x) for x in (U, s, Vt)))
    E = rng.standard_normal((3, 70))
    tsvd.add_rows(torch.from_numpy(E))
    assert isinstance(tsvd.U, torch.Tensor) and isinstance(tsvd.s, torch.Tensor)
    assert_svd_of(tsvd, np.vstack([surrogate(U, s, Vt), E]))


# --- bad input ---------------------------------------------------------------------


def test_bad_factors(rng):
    U, s, Vt = factors(rng)
    cases = [
        ((U, s[:-1], Vt), ValueError, "s must have shape"),
        ((U, s, Vt[:-1]), ValueError, "Vt must have 6 rows"),
        ((U[:5, :6], s, Vt), ValueError, "exceed min"),
        ((U, -s, Vt), ValueError, "s must be non-negative"),
        ((U, s[::-1], Vt), ValueError, "non-increasing"),
        ((2 * U, s, Vt), ValueError, "U must have orthonormal"),
        ((U, s, 2 * Vt), ValueError, "Vt must have orthonormal"),
        ((np.where(U > 0.3, np.nan, U), s, Vt), ValueError, "U contains NaN"),
        ((U, s, Vt.astype(complex)), TypeError, "Vt is complex"),
        ((U[0], s, Vt), ValueError, "U must be 2-D"),
    ]
    for args, error, match in cases:
        with pytest.raises(error, match=match):
            TruncatedSVD(*args)


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"method": "brand"}, ValueError, "method must be one of"),
        ({"reorth_tol": 0.0}, ValueError, "reorth_tol must be > 0"),
        ({"krylov_rank": 0}, ValueError, "krylov_rank must be >= 1"),
        ({"krylov_iter": 1.5}, TypeError, "krylov_iter must be an integer"),
        ({"rng": "seed"}, TypeError, "rng must be"),
    ],
)
def test_bad_options(options, error, match, rng):
    with pytest.raises(error, match=match):
        TruncatedSVD(*factors(rng), **options)


def test_bad_updates_are_refused_before_any_work(rng):
    U, s, Vt = factors(rng)
    tsvd = new(U, s, Vt, "sparse")
    E_nan = sparse_block(rng, (3, 70))
    E_nan.data[0] = np.nan
    cases = [
        (lambda: tsvd.add_rows(rng.standard_normal((3, 71))), ValueError, "E must have 70 columns"),
        (lambda: tsvd.add_rows(rng.standard_normal(70)), ValueError, "E must be 2-D"),
        (lambda: tsvd.add_rows(E_nan), ValueError, "E contains NaN"),
        (lambda: tsvd.add_rows(np.full((2, 70), np.inf)), ValueError, "E contains Inf"),
        (lambda: tsvd.add_rows(np.zeros((0, 70))), ValueError, "E is empty"),
        (lambda: tsvd.add_rows(sp.csr_array((0, 70))), ValueError, "E is empty"),
        (lambda: tsvd.add_columns(rng.standard_normal((89, 2))), ValueError, "E must have 90 rows"),
        (lambda: tsvd.add_columns(np.ones((90, 2), complex)), TypeError, "E is complex"),
        (lambda: tsvd.update(np.ones((89, 2)), np.ones((70, 2))), ValueError, "B must have 90"),
        (lambda: tsvd.update(np.ones((90, 2)), np.ones((71, 2))), ValueError, "C must have 70"),
        (lambda: tsvd.update(np.ones((90, 2)), np.ones((70, 3))), ValueError, "C must have as"),
        (lambda: tsvd.decay(0.0), ValueError, "gamma must be > 0"),
        (lambda: tsvd.decay(1.5), ValueError, "gamma must be <= 1"),
        (lambda: tsvd.decay(np.nan), ValueError, "gamma must be finite"),
        (lambda: tsvd.remove_rows([90]), ValueError, "idx must hold row indices"),
        (lambda: tsvd.remove_rows([-91]), ValueError, "idx must hold row indices"),
        (lambda: tsvd.remove_rows(np.arange(85)), ValueError, "at least k = 6 rows"),
        (lambda: tsvd.remove_rows(slice(None)), ValueError, "at least k = 6 rows"),
        (lambda: tsvd.remove_rows(np.ones(89, bool)), ValueError, "idx as a mask"),
        (lambda: tsvd.remove_rows(np.array([1.0])), TypeError, "idx must be an integer"),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()
    assert tsvd.n_updates == 0 and tsvd.shape == (90, 70)
    np.testing.assert_array_equal(tsvd.s, s)


@pytest.mark.parametrize(
    "k, error, match",
    [
        (0, ValueError, "k must be >= 1"),
        (31, ValueError, "k must be <= min"),
        (2.0, TypeError, "k must be an integer"),
    ],
)
def test_from_matrix_checks_k_first(k, error, match, rng):
    with pytest.raises(error, match=match):
        TruncatedSVD.from_matrix(rng.standard_normal((40, 30)), k)


def test_from_matrix_starts_from_the_randomized_svd(rng):
    pytest.importorskip("linalg.svd._randomized", reason="randomized_svd not written yet")
    A = rng.standard_normal((60, 5)) @ rng.standard_normal((5, 40))
    tsvd = TruncatedSVD.from_matrix(A[:50], 5, rng=0)
    tsvd.add_rows(sp.csr_array(A[50:]))
    assert_svd_of(tsvd, A, rtol=1e-8)


@pytest.mark.parametrize("method", METHODS)
def test_full_rank_k_equal_to_n_has_no_complement(method, rng):
    """k = n: every new row lies in the row space; the complement is empty."""
    U, s, Vt = orthonormal(rng, 30, 6), np.geomspace(5.0, 1.0, 6), orthonormal(rng, 6, 6).T
    E, B, C = rng.standard_normal((4, 6)), rng.standard_normal((30, 8)), rng.standard_normal((6, 8))
    assert_svd_of(new(U, s, Vt, method).add_rows(E), np.vstack([surrogate(U, s, Vt), E]))
    assert_svd_of(new(U, s, Vt, method).update(B, C), surrogate(U, s, Vt) + B @ C.T)
