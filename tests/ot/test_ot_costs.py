"""Cost helpers against SciPy's distances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from linalg.ot import grid_cost, sqeuclidean_cost


def test_sqeuclidean_matches_scipy(rng):
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((5, 3))
    copies = x.copy(), y.copy()
    np.testing.assert_allclose(sqeuclidean_cost(x, y), cdist(x, y, "sqeuclidean"), atol=1e-13)
    np.testing.assert_array_equal(x, copies[0])
    np.testing.assert_array_equal(y, copies[1])
    C = sqeuclidean_cost(x, x)
    assert np.all(C >= 0.0) and np.all(np.diag(C) <= 1e-14)


def test_sqeuclidean_on_a_line_float32_and_torch(rng):
    x, y = rng.standard_normal(6), rng.standard_normal(4)
    np.testing.assert_allclose(sqeuclidean_cost(x, y), (x[:, None] - y[None, :]) ** 2, atol=1e-14)
    C32 = sqeuclidean_cost(x.astype(np.float32), y.astype(np.float32))
    assert C32.dtype == np.float32
    torch = pytest.importorskip("torch")
    out = sqeuclidean_cost(torch.from_numpy(x), torch.from_numpy(y))
    assert isinstance(out, torch.Tensor)


def test_sqeuclidean_bad_input(rng):
    with pytest.raises(ValueError, match="x and y must have the same dimension"):
        sqeuclidean_cost(rng.standard_normal((3, 2)), rng.standard_normal((3, 3)))
    with pytest.raises(ValueError, match="y contains NaN"):
        sqeuclidean_cost(np.ones((2, 2)), np.array([[np.nan, 0.0]]))
    with pytest.raises(TypeError, match="x is complex"):
        sqeuclidean_cost(np.ones((2, 2), dtype=complex), np.ones((2, 2)))


@pytest.mark.parametrize(("p", "metric"), [(2, "sqeuclidean"), (1, "cityblock")])
def test_grid_cost_matches_scipy(p, metric):
    points = np.indices((3, 4)).reshape(2, -1).T
    np.testing.assert_allclose(grid_cost((3, 4), p=p), cdist(points, points, metric))


def test_grid_cost_other_exponents_and_dtype():
    points = np.indices((5,)).reshape(1, -1).T.astype(float)
    np.testing.assert_allclose(grid_cost(5, p=1.5), cdist(points, points, "cityblock") ** 1.5)
    assert grid_cost((2, 2, 2), dtype=np.float32).dtype == np.float32
    assert grid_cost((2, 2, 2)).shape == (8, 8)


def test_grid_cost_bad_input():
    with pytest.raises(ValueError, match="shape must be >= 1"):
        grid_cost((3, 0))
    with pytest.raises(TypeError, match="shape must be an integer"):
        grid_cost((3, 2.5))
    with pytest.raises(ValueError, match="p must be > 0"):
        grid_cost((3, 3), p=0)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        grid_cost((3, 3), dtype=np.int64)
