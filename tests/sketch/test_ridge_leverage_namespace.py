"""ridge_leverage_scores of points computed through their own array-API namespace.

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. Every method is
compared with the NumPy path for the same seed (the random draws are the
host's) and with dense float64 definitions: ``x_iᵀ (XᵀX + λI)⁻¹ x_i`` and
``diag(K (K + λI)⁻¹)``.
"""

from __future__ import annotations

import numpy as np
import pytest

from linalg.sketch import rbf_kernel, ridge_leverage_scores

from conftest import RTOL


def ridge_dense(X, lam):
    X = X.astype(np.float64)
    return np.einsum("ij,ji->i", X, np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T))


def ridge_kernel_dense(K, lam):
    return np.diag(np.linalg.solve(K + lam * np.eye(len(K)), K))


def rbf_dense(X, gamma):
    X = X.astype(np.float64)
    return np.exp(-gamma * np.sum((X[:, None] - X[None]) ** 2, axis=-1))


def close(got, want, dtype):
    return np.abs(got - want).max() <= RTOL[np.dtype(dtype)] * np.abs(want).max()


@pytest.mark.parametrize("shape", [(120, 7), (15, 40)], ids=["tall", "wide"])
def test_exact_matrix_scores(namespace, rng, dtype, shape):
    to_array, to_numpy = namespace
    X = rng.standard_normal(shape).astype(dtype)
    X[3] *= 20.0
    device_X = to_array(X)
    got = ridge_leverage_scores(device_X, 0.3)
    assert type(got) is type(device_X) and to_numpy(got).dtype == dtype
    assert close(to_numpy(got), ridge_leverage_scores(X, 0.3), dtype)
    assert close(to_numpy(got), ridge_dense(X, 0.3), dtype)
    np.testing.assert_array_equal(to_numpy(device_X), X)


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_exact_kernel_scores(namespace, rng, dtype, kernel):
    to_array, to_numpy = namespace
    X = rng.standard_normal((150, 3)).astype(dtype)
    k = rbf_kernel(0.7) if kernel == "rbf" else (lambda A, B: A @ B.T)
    # the linear kernel as it computes (in X's dtype): in float32 its rounding errors,
    # about 1e-8 |K|, are eigenvalues of K that every path clips at 0; divided by lam
    K = rbf_dense(X, 0.7) if kernel == "rbf" else (X @ X.T).astype(np.float64)
    got = to_numpy(ridge_leverage_scores(to_array(X), 0.5, kernel=k))
    assert got.dtype == dtype
    assert close(got, ridge_leverage_scores(X, 0.5, kernel=k), dtype)
    assert close(got, ridge_kernel_dense(K, 0.5), dtype)


@pytest.mark.parametrize("kernel", ["rbf", "rbf-without-diag", "linear"])
def test_recursive_scores_equal_numpy_path(namespace, rng, dtype, kernel):
    to_array, to_numpy = namespace
    X = np.concatenate([rng.standard_normal((650, 3)), 6.0 + 0.3 * rng.standard_normal((50, 3))])
    X = X.astype(dtype)
    rbf = rbf_kernel(0.2)
    k = {"rbf": rbf, "rbf-without-diag": lambda A, B: rbf(A, B), "linear": None}[kernel]
    options = {"kernel": k, "method": "recursive", "rng": 3}
    got = to_numpy(ridge_leverage_scores(to_array(X), 0.1, **options))
    assert got.dtype == dtype
    assert close(got, ridge_leverage_scores(X, 0.1, **options), dtype)
    K = rbf_dense(X, 0.2) if k is not None else X.astype(np.float64) @ X.T.astype(np.float64)
    ratio = got / ridge_kernel_dense(K, 0.1)  # estimates of the exact scores
    assert np.all((ratio > 0.5) & (ratio < 2.0)), (ratio.min(), ratio.max())


def test_bad_input(namespace, rng):
    to_array, _ = namespace
    X = to_array(rng.standard_normal((300, 2)))
    with pytest.raises(TypeError, match=r"kernel\(A, B\) returned numpy"):
        ridge_leverage_scores(X, 0.1, kernel=lambda A, B: np.ones((A.shape[0], B.shape[0])))
    with pytest.raises(ValueError, match=r"kernel\(A, B\) must return shape"):
        ridge_leverage_scores(X, 0.1, kernel=lambda A, B: A @ A.T, method="recursive", rng=0)
    with pytest.raises(ValueError, match=r"kernel\.diag\(X\) contains NaN"):
        ridge_leverage_scores(X, 0.1, kernel=_NaNDiagonal(), method="recursive", rng=0)
    with pytest.raises(ValueError, match="X contains NaN"):
        ridge_leverage_scores(to_array(np.full((10, 2), np.nan)), 0.1)
    with pytest.raises(ValueError, match="lam"):
        ridge_leverage_scores(X, 0.0)


class _NaNDiagonal:
    def __call__(self, A, B):
        return rbf_kernel(1.0)(A, B)

    def diag(self, A):
        return A[:, 0] * float("nan")
