"""leverage_scores of matrices computed through their own array-API namespace.

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. Exact scores are
compared with the NumPy path (1e-10 in float64) and with ``diag(A A⁺)``;
sketched scores with the NumPy path on the same sketch.
"""

from __future__ import annotations

import numpy as np
import pytest

from linalg.sketch import leverage_scores


def exact(A: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ji->i", A, np.linalg.pinv(A))


def test_exact_scores(namespace, rng):
    to_array, to_numpy = namespace
    A = rng.standard_normal((400, 6))
    A[7] *= 40.0
    got = leverage_scores(to_array(A), method="exact")
    assert type(got) is type(to_array(A))
    assert np.allclose(to_numpy(got), leverage_scores(A, method="exact"), rtol=1e-10, atol=1e-12)
    assert np.allclose(to_numpy(got), exact(A), rtol=1e-9, atol=1e-12)


def test_exact_scores_of_a_rank_deficient_matrix(namespace, rng):
    to_array, to_numpy = namespace
    B = rng.standard_normal((300, 3))
    A = np.hstack([B, B @ rng.standard_normal((3, 2))])  # rank 3 of 5 columns
    got = to_numpy(leverage_scores(to_array(A), method="exact"))
    assert np.allclose(got, exact(A), rtol=1e-8, atol=1e-10)
    assert abs(got.sum() - 3.0) <= 1e-8


@pytest.mark.parametrize("jl_dim", [100, 3], ids=["no-jl", "jl"])
def test_sketched_scores_equal_numpy_path(namespace, rng, jl_dim):
    to_array, to_numpy = namespace
    A = rng.standard_normal((2000, 8))
    options = {"method": "sketch", "sketch": "gaussian", "jl_dim": jl_dim, "rng": 4}
    got = to_numpy(leverage_scores(to_array(A), **options))
    want = leverage_scores(A, **options)
    assert np.abs(got - want).max() <= 1e-10 * want.max()


def test_bad_input(namespace):
    to_array, _ = namespace
    with pytest.raises(ValueError, match="at least as many rows as columns"):
        leverage_scores(to_array(np.ones((3, 5))))
    with pytest.raises(ValueError, match="A contains NaN"):
        leverage_scores(to_array(np.full((5, 2), np.nan)))
