"""randomized_svd on matrices computed through their own array-API namespace.

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. The tall blocks stay
in the matrix's library, the small factors go to the host, so the results must
equal the NumPy path's (1e-10 in float64, 1e-4 in float32, relative to σ₁).
"""

from __future__ import annotations

import numpy as np
import pytest

from linalg.svd import randomized_svd

from conftest import RTOL


def low_rank(m: int, n: int, rank: int, decay: float, seed: int = 0) -> np.ndarray:
    gen = np.random.default_rng(seed)
    Q1, _ = np.linalg.qr(gen.standard_normal((m, rank)))
    Q2, _ = np.linalg.qr(gen.standard_normal((n, rank)))
    return (Q1 * decay ** np.arange(rank)) @ Q2.T


def assert_same(result, expected, to_numpy, dtype):
    tol = RTOL[np.dtype(dtype)] * float(expected.s[0])
    U, s, Vt = (to_numpy(x) for x in result)
    assert s.dtype == dtype and U.dtype == dtype and Vt.dtype == dtype
    assert np.abs(s - expected.s).max() <= tol
    assert np.abs(U - expected.U).max() <= 1e3 * RTOL[np.dtype(dtype)]
    assert np.abs(Vt - expected.Vt).max() <= 1e3 * RTOL[np.dtype(dtype)]
    assert result.n_passes == expected.n_passes and result.info == expected.info
    assert abs(result.error_estimate - expected.error_estimate) <= 10 * tol


@pytest.mark.parametrize(
    "options",
    [
        {"method": "subspace", "n_iter": 2},
        {"method": "subspace", "n_iter": 3, "normalizer": "none"},
        {"method": "block_krylov", "n_iter": 2},
        {"method": "lanczos"},
        {"method": "auto"},
        {"method": "auto", "tol": 0.75},
        {"method": "subspace", "n_iter": 1, "sketch": "countsketch"},
        {"method": "block_krylov", "n_iter": 1, "sketch": "srht"},
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_equals_numpy_path(namespace, dtype, options):
    to_array, to_numpy = namespace
    A = low_rank(400, 150, 80, 0.9).astype(dtype)
    x = to_array(A)
    result = randomized_svd(x, 6, rng=3, **options)
    assert type(result.U) is type(x) and type(result.s) is type(x) and type(result.Vt) is type(x)
    assert_same(result, randomized_svd(A, 6, rng=3, **options), to_numpy, dtype)
    assert np.array_equal(to_numpy(x), A)


def test_exhausted_krylov_space_and_exact_triplets(namespace):
    to_array, to_numpy = namespace
    A = low_rank(300, 120, 4, 0.5, seed=1)  # rank 4: the Krylov space runs out at once
    result = randomized_svd(to_array(A), 6, method="block_krylov", n_iter=3, rng=0)
    expected = randomized_svd(A, 6, method="block_krylov", n_iter=3, rng=0)
    U, s, Vt = (to_numpy(x) for x in result)
    np.testing.assert_allclose(U.T @ U, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(s[:4], 0.5 ** np.arange(4), rtol=1e-12)
    assert np.abs(s[4:]).max() <= 1e-14  # σ₅ = σ₆ = 0: their vectors are any in the null space
    assert np.abs(U[:, :4] - expected.U[:, :4]).max() <= 1e-10
    assert np.abs(Vt[:4] - expected.Vt[:4]).max() <= 1e-10
    assert result.error_estimate <= 1e-13 and expected.error_estimate <= 1e-13


def test_small_problems_take_the_exact_svd(namespace):
    to_array, to_numpy = namespace
    A = low_rank(60, 30, 30, 0.8, seed=2)
    result = randomized_svd(to_array(A), 5, method="block_krylov", rng=0)
    assert result.info["method"] == "dense"
    assert_same(result, randomized_svd(A, 5, method="block_krylov", rng=0), to_numpy, np.float64)


def test_bad_input(namespace):
    to_array, _ = namespace
    A = to_array(low_rank(100, 40, 10, 0.5))
    with pytest.raises(ValueError, match="normalizer='lu' needs A in host memory"):
        randomized_svd(A, 3, method="subspace", normalizer="lu")
    with pytest.raises(ValueError, match="A must be 2-D"):
        randomized_svd(to_array(np.ones(5)), 1)
    with pytest.raises(ValueError, match="A contains NaN"):
        randomized_svd(to_array(np.full((20, 10), np.nan)), 1)
    with pytest.raises(ValueError, match="k must be <= min"):
        randomized_svd(A, 41)
