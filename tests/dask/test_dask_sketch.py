"""Sketches, leverage scores and sketched least squares on dask arrays, on a LocalCluster."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")

from linalg.sketch import (  # noqa: E402
    countsketch,
    gaussian,
    leverage_scores,
    rademacher,
    sketched_lstsq,
    sparse_sign,
    srht,
)

KINDS = [gaussian, rademacher, countsketch, sparse_sign, srht]
# Row and column chunkings of a 1200 x 12 matrix: one chunk, even, uneven, both ways.
CHUNKINGS = [(1200, 12), (300, 12), (250, 5), (1000, 12)]


@pytest.fixture(scope="module")
def matrix() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((1200, 12))


def close(got, expected, rtol=1e-10) -> bool:
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    return float(np.max(np.abs(np.asarray(got) - expected))) <= rtol * scale


@pytest.mark.parametrize("chunks", CHUNKINGS, ids=str)
@pytest.mark.parametrize("make", KINDS, ids=lambda f: f.__name__)
def test_sketch_equals_in_memory(dask_client, matrix, make, chunks):
    S = make(40, matrix.shape[0], rng=3)
    before = matrix.copy()
    out = S @ da.from_array(matrix, chunks=chunks)
    assert isinstance(out, da.Array) and out.shape == (40, 12)
    assert close(out.compute(), S @ matrix)
    assert np.array_equal(matrix, before)


def test_sketch_of_a_block_of_columns_and_of_a_vector(dask_client, matrix):
    S = countsketch(30, 2000, rng=1)[:, 500:1700]
    A = da.from_array(matrix, chunks=(333, 12))
    assert close((S @ A).compute(), S @ matrix)
    assert close((S @ A[:, 3]).compute(), S @ matrix[:, 3])
    assert (S @ A[:, 3]).shape == (30,)


@pytest.mark.parametrize("make", [gaussian, countsketch], ids=lambda f: f.__name__)
def test_float32_stays_float32(dask_client, matrix, make):
    A32 = matrix.astype(np.float32)
    S = make(40, A32.shape[0], rng=0, dtype=np.float32)
    out = S @ da.from_array(A32, chunks=(300, 12))
    assert out.dtype == np.float32
    expected = S @ A32
    assert np.allclose(out.compute(), expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_transposed_products(dask_client, matrix):
    S = gaussian(40, 1200, rng=2)
    Y = np.random.default_rng(1).standard_normal((40, 3))
    out = S.T @ da.from_array(Y, chunks=(10, 2))
    assert isinstance(out, da.Array) and out.shape == (1200, 3)
    assert close(out.compute(), S.T @ Y)
    At = da.from_array(matrix.T, chunks=(5, 400))
    right = At @ S.T
    assert isinstance(right, da.Array)
    assert close(right.compute(), matrix.T @ S.T)


def test_no_task_holds_the_matrix(largest_task_output):
    A = da.random.default_rng(0).standard_normal((20_000, 16), chunks=(2_500, 16))
    chunk_bytes = 2_500 * 16 * 8
    S = countsketch(64, A.shape[0], rng=0)
    largest = largest_task_output(lambda: (S @ A).compute())
    assert largest <= chunk_bytes < A.nbytes / 4
    # TSQR's first stage returns a chunk of Q with its small R: a chunk and 2 KB.
    largest = largest_task_output(lambda: leverage_scores(A).compute())
    assert largest <= 1.05 * chunk_bytes
    largest = largest_task_output(lambda: leverage_scores(A, method="sketch", rng=0).compute())
    assert largest <= chunk_bytes


def test_sketch_bad_input(dask_client, matrix):
    S = gaussian(10, 1000, rng=0)
    with pytest.raises(ValueError, match="A must have 1000 rows"):
        S @ da.from_array(matrix, chunks=(300, 12))
    bad = matrix.copy()
    bad[700, 2] = np.nan
    S = gaussian(10, 1200, rng=0)
    with pytest.raises(ValueError, match="A contains NaN"):
        (S @ da.from_array(bad, chunks=(300, 12))).compute()
    A = da.from_array(matrix, chunks=(300, 12))
    unknown = A[A[:, 0] > 0]
    with pytest.raises(ValueError, match="A has unknown chunk sizes"):
        S @ unknown
    with pytest.raises(TypeError, match="A"):
        S @ da.from_array(matrix.astype(np.complex128), chunks=(300, 12))


def test_chunks_other_than_numpy_are_refused(matrix):
    from scipy import sparse

    from linalg.svd import randomized_svd

    A = da.from_array(sparse.csr_matrix(matrix), chunks=(300, 12), asarray=False)
    with pytest.raises(TypeError, match=r"takes dask arrays of NumPy or CuPy chunks"):
        gaussian(10, 1200, rng=0) @ A
    for call in (lambda: randomized_svd(A, 3), lambda: leverage_scores(A)):
        with pytest.raises(TypeError, match=r"A has chunks of type scipy.sparse.*map_blocks"):
            call()


@pytest.mark.parametrize("chunks", [(1200, 12), (300, 12), (170, 12)], ids=str)
def test_leverage_scores_equal_in_memory(dask_client, matrix, chunks):
    A = matrix.copy()
    A[5] *= 50.0
    Ad = da.from_array(A, chunks=chunks)
    exact = leverage_scores(Ad)
    assert isinstance(exact, da.Array)
    assert close(exact.compute(), leverage_scores(A))
    sketched = leverage_scores(Ad, method="sketch", rng=4)
    assert close(sketched.compute(), leverage_scores(A, method="sketch", rng=4))
    countsketched = leverage_scores(Ad, method="sketch", sketch="countsketch", jl_dim=5, rng=4)
    expected = leverage_scores(A, method="sketch", sketch="countsketch", jl_dim=5, rng=4)
    assert close(countsketched.compute(), expected)


def test_leverage_scores_rank_deficient_and_float32(dask_client, matrix):
    A = matrix.copy()
    A[:, 11] = A[:, 0] + A[:, 1]
    scores = leverage_scores(da.from_array(A, chunks=(300, 12))).compute()
    assert close(scores, leverage_scores(A))
    assert abs(scores.sum() - 11.0) < 1e-9
    A32 = matrix.astype(np.float32)
    scores32 = leverage_scores(da.from_array(A32, chunks=(300, 12))).compute()
    assert scores32.dtype == np.float32
    assert np.allclose(scores32, leverage_scores(matrix), atol=1e-5)


def test_leverage_scores_bad_chunking(dask_client, matrix):
    A = da.from_array(matrix, chunks=(300, 5))
    with pytest.raises(ValueError, match=r"rechunk it with A\.rechunk\(\{1: -1\}\)"):
        leverage_scores(A)
    with pytest.raises(ValueError, match="at least as many rows as columns"):
        leverage_scores(da.from_array(matrix[:8], chunks=(8, 12)))
    with pytest.raises(ValueError, match="method must be"):
        leverage_scores(da.from_array(matrix, chunks=(300, 12)), method="svd")
    bad = matrix.copy()
    bad[3, 3] = np.inf
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        leverage_scores(da.from_array(bad, chunks=(300, 12)))


def test_sketched_lstsq_equals_exact(dask_client):
    chunks = (400, 5)  # rows and columns chunked
    gen = np.random.default_rng(0)
    A = gen.standard_normal((1200, 12)) * np.geomspace(1, 1e-5, 12)
    b = gen.standard_normal((1200, 2))
    before = b.copy()
    Ad, bd = da.from_array(A, chunks=chunks), da.from_array(b, chunks=(300, 1))
    res = sketched_lstsq(Ad, bd, oversampling=8, rng=0)  # fewer iterations
    exact = np.linalg.lstsq(A, b, rcond=None)[0]
    assert np.all(res.converged) and res.x.shape == (12, 2)
    best = np.linalg.norm(A @ exact - b, axis=0)
    assert np.all(res.residual_norm <= best * (1 + 1e-12))
    assert np.allclose(A @ res.x, A @ exact, rtol=0, atol=1e-10 * np.abs(A @ exact).max())
    assert res.info["preconditioner"] == "qr" and res.info["solver"] == "cgnr"
    assert np.array_equal(b, before)


def test_sketched_lstsq_vector_numpy_b_and_rank_deficient(dask_client, matrix):
    A = matrix.copy()
    A[:, 11] = A[:, 0]
    b = np.random.default_rng(2).standard_normal(1200)
    res = sketched_lstsq(da.from_array(A, chunks=(600, 12)), b, oversampling=8, rng=1)
    expected = np.linalg.lstsq(A, b, rcond=None)[0]  # the minimum-norm solution
    assert res.converged and res.info["preconditioner"] == "svd"
    assert np.allclose(res.x, expected, rtol=0, atol=1e-9 * np.abs(expected).max())
    assert isinstance(res.residual_norm, float) and isinstance(res.n_iter, int)


def test_sketched_lstsq_bad_input_and_warning(dask_client, matrix):
    A = da.from_array(matrix, chunks=(300, 12))
    with pytest.raises(ValueError, match="b must have 1200 rows"):
        sketched_lstsq(A, np.ones(5))
    with pytest.raises(ValueError, match="oversampling"):
        sketched_lstsq(A, np.ones(1200), oversampling=0.5)
    with pytest.raises(ValueError, match="m >= n"):
        sketched_lstsq(da.from_array(matrix[:5], chunks=(5, 12)), np.ones(5))
    from linalg import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match="did not converge"):
        res = sketched_lstsq(A, np.random.default_rng(0).standard_normal(1200), maxiter=1, rng=0)
    assert not res.converged
