"""Sketch products with matrices computed through their own array-API namespace.

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. Dense kinds draw
their entries on the host (the same stream as every engine) and multiply on the
data's device, so ``S @ A`` (and ``S.T @ Y``, ``A @ S.T``) equals the NumPy
path's to rounding; the SRHT draws its signs and rows on the host and
transforms on the device; row sampling gathers its rows there.
"""

from __future__ import annotations

import numpy as np
import pytest

from linalg.sketch import (
    SketchOperator,
    countsketch,
    gaussian,
    rademacher,
    row_sampling,
    sparse_sign,
    srht,
)

from conftest import RTOL


@pytest.mark.parametrize("make", [gaussian, rademacher], ids=["gaussian", "rademacher"])
def test_dense_kinds_equal_numpy_path(namespace, rng, dtype, make):
    to_array, to_numpy = namespace
    A = rng.standard_normal((3000, 4)).astype(dtype)
    S = make(50, 3000, rng=7, dtype=dtype)
    for X in (A, A[:, 0]):
        got = S @ to_array(X)
        want = S @ X
        assert type(got) is type(to_array(X)) and to_numpy(got).dtype == dtype
        assert to_numpy(got).shape == want.shape
        assert np.abs(to_numpy(got) - want).max() <= 10 * RTOL[np.dtype(dtype)] * np.abs(want).max()
    part = S[:, 1000:2500]  # a column slice draws the same entries
    want = part @ A[1000:2500]
    got = to_numpy(part @ to_array(A[1000:2500]))
    assert np.abs(got - want).max() <= 10 * RTOL[np.dtype(dtype)] * np.abs(want).max()


@pytest.mark.parametrize("transform", ["hadamard", "dct"])
@pytest.mark.parametrize(("d", "n"), [(6, 40), (50, 3000), (300, 513)])
def test_srht_equals_numpy_path_and_dense_product(namespace, rng, dtype, transform, d, n):
    to_array, to_numpy = namespace
    A = rng.standard_normal((n, 3)).astype(dtype)
    before = A.copy()
    S = srht(d, n, transform=transform, rng=5, dtype=dtype)
    exact = S.todense().astype(np.float64) @ A.astype(np.float64)  # explicit S, float64
    tol = RTOL[np.dtype(dtype)]
    for X in (A, A[:, 0]):
        device_X = to_array(X)
        got = S @ device_X
        assert type(got) is type(device_X) and to_numpy(got).dtype == dtype
        want = S @ X
        assert to_numpy(got).shape == want.shape
        assert np.abs(to_numpy(got) - want).max() <= tol * np.abs(want).max()
    assert np.abs(to_numpy(S @ to_array(A)) - exact).max() <= tol * np.abs(exact).max()
    np.testing.assert_array_equal(to_numpy(device_X), before[:, 0])  # input unchanged
    a, b = n // 4, n - 7  # a column block S[:, a:b] keeps its signs and pads around them
    part = S[:, a:b]
    want = part.todense().astype(np.float64) @ A[a:b].astype(np.float64)
    got = to_numpy(part @ to_array(A[a:b]))
    assert np.abs(got - want).max() <= tol * np.abs(want).max()


@pytest.mark.parametrize("method", ["iid", "pivotal"])
def test_row_sampling_gathers_on_the_device(namespace, rng, dtype, method):
    to_array, to_numpy = namespace
    probs = rng.uniform(size=300)
    probs /= probs.sum()
    S = row_sampling(to_array(probs), 40, method=method, rng=2, dtype=dtype)
    host = row_sampling(probs, 40, method=method, rng=2, dtype=dtype)
    np.testing.assert_array_equal(S.indices, host.indices)  # device probs: the same draws
    np.testing.assert_array_equal(S.weights, host.weights)
    A = rng.standard_normal((300, 3)).astype(dtype)
    got = S @ to_array(A)
    assert type(got) is type(to_array(A)) and to_numpy(got).dtype == dtype
    np.testing.assert_array_equal(to_numpy(got), host @ A)
    inclusion = 40 * probs if method == "iid" else S.inclusion  # expected draws per row
    exact = A.astype(np.float64)[S.indices] / np.sqrt(inclusion[S.indices])[:, None]
    assert np.abs(to_numpy(got) - exact).max() <= RTOL[np.dtype(dtype)] * np.abs(exact).max()
    np.testing.assert_array_equal(to_numpy(S @ to_array(A[:, 1])), host @ A[:, 1])
    part = S[:, 100:250]  # rows sampled outside the block are zero
    np.testing.assert_array_equal(to_numpy(part @ to_array(A[100:250])), part @ A[100:250])


def test_row_sampling_checks_every_row_of_device_data(namespace, rng):
    to_array, _ = namespace
    S = row_sampling(np.full(64, 1 / 64), 4, method="pivotal", rng=0)
    A = rng.standard_normal((64, 2))
    A[int(np.setdiff1d(np.arange(64), S.indices)[0])] = np.nan  # a row S does not keep
    with pytest.raises(ValueError, match="A contains NaN"):
        S @ to_array(A)
    with pytest.raises(ValueError, match="probs must sum to 1"):
        row_sampling(to_array(np.full(8, 0.2)), 2)
    with pytest.raises(ValueError, match="probs contains NaN"):
        row_sampling(to_array(np.full(8, np.nan)), 2)


class _NoDevicePath(SketchOperator):
    kind = "custom"

    def _columns(self, start, stop):
        return np.ones((self.d, stop - start))


def test_kinds_without_a_device_path_say_so(namespace, rng):
    to_array, _ = namespace
    A = to_array(rng.standard_normal((64, 2)))
    with pytest.raises(TypeError, match="the custom sketch has no device path; move A"):
        _NoDevicePath(8, 64) @ A
    with pytest.raises(ValueError, match="A must have 64 rows"):
        gaussian(8, 64, rng=0) @ to_array(np.ones((63, 2)))
    with pytest.raises(ValueError, match="A contains NaN"):
        gaussian(8, 64, rng=0) @ to_array(np.full((64, 2), np.nan))
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        srht(8, 64, rng=0) @ to_array(np.full((64, 2), np.inf))


def _close(got, want, dtype) -> bool:
    return np.abs(got - want).max() <= 10 * RTOL[np.dtype(dtype)] * np.abs(want).max()


_PROBS = np.random.default_rng(3).uniform(0.1, 1.0, 2500)

TRANSPOSED = {
    "gaussian": lambda dtype: gaussian(40, 2500, rng=5, dtype=dtype),
    "rademacher": lambda dtype: rademacher(40, 2500, rng=5, dtype=dtype),
    "countsketch": lambda dtype: countsketch(40, 2500, rng=5, dtype=dtype),
    "sparse_sign": lambda dtype: sparse_sign(40, 2500, nnz_per_col=5, rng=5, dtype=dtype),
    "srht_hadamard": lambda dtype: srht(40, 2500, rng=5, dtype=dtype),
    "srht_dct": lambda dtype: srht(40, 2500, transform="dct", rng=5, dtype=dtype),
    # iid sampling of 400 rows with these weights draws several rows more than once
    "row_sampling_iid": lambda dtype: row_sampling(_PROBS / _PROBS.sum(), 400, rng=5, dtype=dtype),
    "row_sampling_pivotal": lambda dtype: row_sampling(
        _PROBS / _PROBS.sum(), 400, method="pivotal", rng=5, dtype=dtype
    ),
}


@pytest.mark.parametrize("kind", list(TRANSPOSED))
def test_transposed_sketches_on_the_device(namespace, rng, dtype, kind):
    """``S.T @ Y`` computes where ``Y`` lives for every kind (the random parts drawn
    there, the host's numbers); it equals the NumPy path and the dense product, for a
    vector, a block and column slices of S, and leaves ``Y`` unchanged."""
    to_array, to_numpy = namespace
    S = TRANSPOSED[kind](dtype)
    d, n = S.shape
    Y = rng.standard_normal((d, 3)).astype(dtype)
    for X in (Y, Y[:, 0]):
        device_X = to_array(X)
        got = S.T @ device_X
        assert type(got) is type(device_X) and to_numpy(got).dtype == dtype
        assert to_numpy(got).shape == (n, *X.shape[1:])
        assert _close(to_numpy(got), S.T @ X, dtype)
        assert _close(to_numpy(got), S.todense().astype(np.float64).T @ X, dtype)
        np.testing.assert_array_equal(to_numpy(device_X), X)
    for a, b in ((700, 1900), (0, 1), (2499, 2500)):
        part = S[:, a:b]
        assert _close(to_numpy(part.T @ to_array(Y)), part.T @ Y, dtype)


@pytest.mark.parametrize("make", [countsketch, sparse_sign], ids=["countsketch", "sparse_sign"])
def test_sparse_kinds_scatter_where_the_library_can(namespace, rng, dtype, make):
    """``S @ A`` of the hashed kinds is a scatter-add: torch tensors (index_add_, or
    the CuPy kernel on CUDA) and CuPy arrays compute it and equal the NumPy path;
    a library without a scatter-add refuses it naming the kinds that work."""
    to_array, to_numpy = namespace
    S = make(40, 2500, rng=5, dtype=dtype)
    A = rng.standard_normal((2500, 3)).astype(dtype)
    device_A = to_array(A)
    if type(device_A).__module__.startswith("array_api_strict"):
        with pytest.raises(TypeError, match=r"no engine here implements sketch\.sparse"):
            S @ device_A
        return
    for X in (A, A[:, 0]):
        got = S @ to_array(X)
        assert type(got) is type(device_A) and to_numpy(got).dtype == dtype
        assert _close(to_numpy(got), S @ X, dtype)
        assert _close(to_numpy(got), S.todense().astype(np.float64) @ X, dtype)
    part = S[:, 700:1900]
    assert _close(to_numpy(part @ to_array(A[700:1900])), part @ A[700:1900], dtype)
    np.testing.assert_array_equal(to_numpy(device_A), A)


def test_repeated_rows_of_row_sampling_add_up_on_the_device(namespace, rng):
    """A row drawn twice by iid sampling gets both weighted rows of ``Y``."""
    to_array, to_numpy = namespace
    S = row_sampling(np.array([0.97, 0.01, 0.01, 0.01]), 6, rng=2)
    assert np.bincount(S.indices).max() > 1
    Y = rng.standard_normal((S.d, 2))
    np.testing.assert_allclose(to_numpy(S.T @ to_array(Y)), S.todense().T @ Y, rtol=1e-14)


@pytest.mark.parametrize(
    "make",
    [
        lambda: gaussian(30, 200, rng=1),
        lambda: srht(30, 200, rng=1),
        lambda: row_sampling(np.full(200, 1 / 200), 30, rng=1),
    ],
    ids=["gaussian", "srht", "row_sampling"],
)
def test_right_products_with_the_transpose_on_the_device(namespace, rng, make):
    # ``A @ S.T`` reaches ``S.T.__rmatmul__`` where the array library defers to it
    # (NumPy, torch); array_api_strict's ``@`` refuses other operands itself.
    to_array, to_numpy = namespace
    S = make()
    A = rng.standard_normal((5, 200))
    got = S.T.__rmatmul__(to_array(A))
    assert type(got) is type(to_array(A))
    assert _close(to_numpy(got), A @ S.T, np.float64)


def test_transposed_kinds_without_a_device_path_say_so(namespace, rng):
    to_array, _ = namespace
    with pytest.raises(TypeError, match=r"S\.T @ Y of the custom sketch has no device path"):
        _NoDevicePath(30, 200).T @ to_array(rng.standard_normal((30, 2)))
    with pytest.raises(ValueError, match="Y must have 30 rows"):
        gaussian(30, 200, rng=1).T @ to_array(rng.standard_normal((29, 2)))
