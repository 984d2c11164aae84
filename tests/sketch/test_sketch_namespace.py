"""Sketch products with matrices computed through their own array-API namespace.

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. Dense kinds draw
their entries on the host (the same stream as every engine) and multiply on the
data's device, so ``S @ A`` equals the NumPy path's to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from linalg.sketch import gaussian, rademacher, srht

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


def test_kinds_without_a_device_path_say_so(namespace, rng):
    to_array, _ = namespace
    A = to_array(rng.standard_normal((64, 2)))
    with pytest.raises(TypeError, match="the srht sketch has no GPU engine yet"):
        srht(8, 64, rng=0) @ A
    with pytest.raises(ValueError, match="A must have 64 rows"):
        gaussian(8, 64, rng=0) @ to_array(np.ones((63, 2)))
    with pytest.raises(ValueError, match="A contains NaN"):
        gaussian(8, 64, rng=0) @ to_array(np.full((64, 2), np.nan))
