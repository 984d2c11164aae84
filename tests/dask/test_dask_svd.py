"""randomized_svd of dask arrays on a LocalCluster, against the in-memory computation."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")

from linalg.svd import TruncatedSVD, randomized_svd  # noqa: E402


def low_rank(m: int, n: int, rank: int, decay: float, seed: int = 0) -> np.ndarray:
    gen = np.random.default_rng(seed)
    Q1, _ = np.linalg.qr(gen.standard_normal((m, rank)))
    Q2, _ = np.linalg.qr(gen.standard_normal((n, rank)))
    return (Q1 * decay ** np.arange(rank)) @ Q2.T


@pytest.fixture(scope="module")
def matrix() -> np.ndarray:
    return low_rank(1500, 120, 60, 0.85)


def assert_same(result, expected, rtol=1e-10):
    """Same triplets (signs fixed by svd_flip in both), passes and info."""
    U = result.U.compute()
    scale = expected.s[0]
    assert np.max(np.abs(result.s - expected.s)) <= rtol * scale
    assert np.max(np.abs(U - expected.U)) <= rtol * 1e3
    assert np.max(np.abs(result.Vt - expected.Vt)) <= rtol * 1e3
    assert result.n_passes == expected.n_passes
    assert result.info == expected.info
    assert abs(result.error_estimate - expected.error_estimate) <= rtol * scale


@pytest.mark.parametrize(
    ("method", "chunks"),
    [
        ("subspace", (1500, 120)),
        ("subspace", (333, 50)),
        ("block_krylov", (400, 120)),
        ("block_krylov", (333, 50)),
        ("auto", (250, 120)),
    ],
    ids=str,
)
def test_equals_in_memory(dask_client, matrix, method, chunks):
    before = matrix.copy()
    options = {"method": method, "n_iter": 2, "rng": 1}
    result = randomized_svd(da.from_array(matrix, chunks=chunks), 6, **options)
    assert isinstance(result.U, da.Array)
    assert isinstance(result.s, np.ndarray) and isinstance(result.Vt, np.ndarray)
    assert_same(result, randomized_svd(matrix, 6, **options))
    assert np.array_equal(matrix, before)


@pytest.mark.parametrize("sketch", ["countsketch", "sparse_sign", "srht"])
def test_other_sketches_and_iterations(dask_client, matrix, sketch):
    A = da.from_array(matrix, chunks=(500, 60))
    options = {"sketch": sketch, "n_iter": 1, "rng": 5, "oversample": 6}
    assert_same(randomized_svd(A, 4, **options), randomized_svd(matrix, 4, **options))


def test_exact_svd_when_few_blocks_fit(dask_client):
    tall = low_rank(600, 30, 30, 0.7, seed=2)
    expected = randomized_svd(tall, 5, method="block_krylov", rng=0)
    assert expected.info["method"] == "dense"
    result = randomized_svd(da.from_array(tall, chunks=(150, 10)), 5, method="block_krylov", rng=0)
    assert_same(result, expected)
    wide = tall.T.copy()
    expected = randomized_svd(wide, 5, method="auto", rng=0)
    result = randomized_svd(da.from_array(wide, chunks=(30, 200)), 5, method="auto", rng=0)
    assert_same(result, expected)


def test_singular_values_against_lapack(dask_client, matrix):
    result = randomized_svd(da.from_array(matrix, chunks=(300, 120)), 8, rng=3)
    exact = np.linalg.svd(matrix, compute_uv=False)
    assert np.allclose(result.s, exact[:8], rtol=1e-10)
    U = result.U.compute()
    assert np.allclose(U.T @ U, np.eye(8), atol=1e-12)
    residual = np.linalg.norm(matrix - (U * result.s) @ result.Vt, 2)
    assert residual <= result.error_estimate * (1 + 1e-12)  # a bound, tight here: equal to rounding
    assert np.isclose(residual, exact[8], rtol=1e-8)


def test_compute_false_is_lazy(dask_client, matrix):
    A = da.from_array(matrix, chunks=(300, 120))
    eager = randomized_svd(A, 5, n_iter=1, rng=2)
    lazy = randomized_svd(A, 5, n_iter=1, rng=2, compute=False)
    assert isinstance(lazy.U, da.Array)
    assert len(lazy.U.__dask_graph__()) > len(eager.U.__dask_graph__())  # eager: persisted
    assert np.array_equal(lazy.U.compute(), eager.U.compute())
    assert np.array_equal(lazy.s, eager.s)


def test_float32(dask_client, matrix):
    A32 = matrix.astype(np.float32)
    result = randomized_svd(da.from_array(A32, chunks=(300, 120)), 5, n_iter=1, rng=0)
    assert result.U.dtype == np.float32 and result.s.dtype == np.float32
    assert result.Vt.dtype == np.float32
    assert np.allclose(result.s, randomized_svd(A32, 5, n_iter=1, rng=0).s, rtol=1e-4)
    assert np.allclose(result.s, np.linalg.svd(matrix, compute_uv=False)[:5], rtol=1e-3)


def test_no_task_holds_the_matrix(largest_task_output):
    A = da.random.default_rng(1).standard_normal((24_000, 40), chunks=(3_000, 40))
    chunk_bytes = 3_000 * 40 * 8

    def run():
        randomized_svd(A, 5, n_iter=1, method="subspace", rng=0, compute=False).U.compute()

    assert largest_task_output(run) <= 1.05 * chunk_bytes < A.nbytes / 4


def test_bad_input(dask_client, matrix):
    A = da.from_array(matrix, chunks=(300, 120))
    with pytest.raises(ValueError, match="k must be <= min"):
        randomized_svd(A, 121)
    with pytest.raises(ValueError, match="method='lanczos' and tol"):
        randomized_svd(A, 5, method="lanczos")
    with pytest.raises(ValueError, match="method='lanczos' and tol"):
        randomized_svd(A, 5, tol=1e-3)
    with pytest.raises(ValueError, match="normalizer must be 'auto' or 'qr'"):
        randomized_svd(A, 5, normalizer="lu", method="subspace")
    with pytest.raises(TypeError, match="compute must be True or False"):
        randomized_svd(A, 5, compute="yes")
    with pytest.raises(ValueError, match="A must have 2 dimensions"):
        randomized_svd(A[:, 0], 1)
    with pytest.raises(TypeError, match="A"):
        randomized_svd(A.astype(np.complex128), 2)
    bad = matrix.copy()
    bad[10, 10] = np.nan
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        randomized_svd(da.from_array(bad, chunks=(300, 120)), 5, rng=0)


def test_truncated_svd_add_rows_of_a_dask_block(dask_client, matrix):
    U, s, Vt = np.linalg.svd(matrix[:1000], full_matrices=False)
    E = matrix[1000:1100]
    expected = TruncatedSVD(U[:, :8], s[:8], Vt[:8], rng=0).add_rows(E)
    block = da.from_array(E, chunks=(30, 60))
    result = TruncatedSVD(U[:, :8], s[:8], Vt[:8], rng=0).add_rows(block)
    assert np.array_equal(result.s, expected.s)
    assert np.array_equal(result.U, expected.U) and np.array_equal(result.Vt, expected.Vt)
