"""InverseFactor on matrices computed through their own array-API namespace.

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. The inverse is kept
on the device; after a sequence of updates it is compared with the NumPy path
on the same updates and probe seed (1e-10 in float64, 1e-4 in float32) and with
the dense float64 inverse of the updated matrix.
"""

from __future__ import annotations

import numpy as np
import pytest

from linalg._core.results import LinAlgError
from linalg.kron import InverseFactor

from conftest import RTOL, spd_matrix

N = 30


def relative(got: np.ndarray, want: np.ndarray) -> float:
    return np.abs(got - want).max() / np.abs(want).max()


def updates(rng: np.random.Generator, count: int) -> list[tuple[np.ndarray, float, float]]:
    """``(u, alpha, decay)``: mostly updates, some small downdates and decays."""
    out = []
    for j in range(count):
        alpha = -rng.uniform(0.0, 0.01) if j % 5 == 4 else rng.uniform(0.01, 2.0)
        out.append((rng.standard_normal(N), alpha, 1.0 if j % 3 else rng.uniform(0.9, 1.0)))
    return out


def test_equals_numpy_path(namespace, rng, dtype):
    to_array, to_numpy = namespace
    A = spd_matrix(rng, N).astype(dtype)
    A_device = to_array(A)
    on_device = InverseFactor(A_device, check_every=4, rng=1)
    on_host = InverseFactor(A, check_every=4, rng=1)
    dense = A.astype(np.float64)
    for u, alpha, decay in updates(rng, 60):
        u = u.astype(dtype)
        u_device = to_array(u)
        on_device.rank_one_update(u_device, alpha=alpha, decay=decay)
        on_host.rank_one_update(u, alpha=alpha, decay=decay)
        np.testing.assert_array_equal(to_numpy(u_device), u)  # never modified
        dense = decay * dense + alpha * np.outer(u, u)
    rtol = RTOL[np.dtype(dtype)]
    inverse, matrix = on_device.inverse, on_device.matrix
    assert type(inverse) is type(A_device) and to_numpy(inverse).dtype == dtype
    assert relative(to_numpy(inverse), on_host.inverse) <= rtol
    assert relative(to_numpy(matrix), on_host.matrix) <= rtol
    assert relative(to_numpy(matrix), dense) <= 10 * rtol
    assert (on_device.n_updates, on_device.n_refactorizations) == (
        on_host.n_updates,
        on_host.n_refactorizations,
    )
    X = rng.standard_normal((N, 3)).astype(dtype)
    got = on_device.solve(to_array(X))
    assert type(got) is type(A_device) and to_numpy(got).dtype == dtype
    assert relative(to_numpy(got), on_host.solve(X)) <= 10 * rtol
    np.testing.assert_array_equal(to_numpy(A_device), A)


def test_exact_inverse_after_updates(namespace, rng):
    to_array, to_numpy = namespace
    A = spd_matrix(rng, N)
    factor = InverseFactor(to_array(A), rng=2)
    dense = A.copy()
    for u, alpha, decay in updates(rng, 200):
        factor.rank_one_update(to_array(u), alpha=alpha, decay=decay)
        dense = decay * dense + alpha * np.outer(u, u)
    inverse = to_numpy(factor.inverse)
    assert factor.n_updates == 200
    assert relative(to_numpy(factor.matrix), dense) <= 1e-12
    assert relative(inverse, np.linalg.inv(dense)) <= 1e-9
    np.testing.assert_array_equal(inverse, inverse.T)
    for shape in [(N,), (N, 4)]:
        X = rng.standard_normal(shape)
        expected = np.linalg.solve(dense, X)
        assert relative(to_numpy(factor.solve(to_array(X))), expected) <= 1e-9
        assert (
            relative(to_numpy(factor.matmat(to_array(X.reshape(N, -1)))).ravel(), expected.ravel())
            <= 1e-9
        )


def test_near_singular_and_cancelling_updates_refactorize(namespace, rng):
    to_array, to_numpy = namespace
    A = spd_matrix(rng, N)
    factor = InverseFactor(to_array(A), rng=1)
    u = rng.standard_normal(N)
    down = -(1.0 - 1e-10) / (u @ np.linalg.solve(A, u))  # 1 + alpha uᵀA⁻¹u = 1e-10
    factor.rank_one_update(to_array(u), alpha=down)
    assert factor.n_refactorizations == 1
    dense = A + down * np.outer(u, u)
    residual = dense @ to_numpy(factor.inverse) - np.eye(N)
    assert np.linalg.norm(residual) < 1e3 * np.finfo(float).eps * np.linalg.cond(dense)
    factor.rank_one_update(to_array(u), alpha=-down)  # undo: Sherman–Morrison would cancel
    assert factor.n_refactorizations == 2
    assert relative(to_numpy(factor.inverse), np.linalg.inv(A)) <= 1e-10


def test_probe_check_refactorizes_when_error_grows(namespace, rng):
    to_array, to_numpy = namespace
    factor = InverseFactor(to_array(spd_matrix(rng, N)), check_every=1, rtol=0.0, rng=1)
    factor.rank_one_update(to_array(rng.standard_normal(N)))
    before = factor.n_refactorizations
    factor._inverse = factor._inverse + 1e-6  # caught at the next probe check
    factor.rank_one_update(to_array(rng.standard_normal(N)))
    assert factor.n_refactorizations == before + 1
    inverse, matrix = to_numpy(factor.inverse), to_numpy(factor.matrix)
    assert relative(inverse, np.linalg.inv(matrix)) <= 1e-12


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NumPy-backed
def test_refused_updates_leave_the_state(namespace, rng):
    to_array, to_numpy = namespace
    A = spd_matrix(rng, N)
    factor = InverseFactor(to_array(A), rng=1)
    before = to_numpy(factor.inverse).copy(), to_numpy(factor.matrix).copy()
    u = rng.standard_normal(N)
    with pytest.raises(LinAlgError, match=r"makes A indefinite.*smaller downdate"):
        factor.rank_one_update(to_array(u), alpha=-2.0 / (u @ np.linalg.solve(A, u)))
    u[3] = np.nan
    with pytest.raises(ValueError, match="u contains NaN"):
        factor.rank_one_update(to_array(u))
    u[3] = np.inf
    with pytest.raises(ValueError, match="u contains Inf"):
        factor.rank_one_update(to_array(u))
    np.testing.assert_array_equal(to_numpy(factor.inverse), before[0])
    np.testing.assert_array_equal(to_numpy(factor.matrix), before[1])
    assert factor.n_updates == 0


def test_views_are_copies_on_the_device(namespace, rng):
    to_array, to_numpy = namespace
    factor = InverseFactor(to_array(spd_matrix(rng, N)))
    inverse = factor.inverse
    expected = to_numpy(inverse).copy()
    inverse[0, 0] = 1e6
    np.testing.assert_array_equal(to_numpy(factor.inverse), expected)


def test_errors_name_the_argument(namespace, rng):
    to_array, _ = namespace
    A = spd_matrix(rng, 4)
    factor = InverseFactor(to_array(A))
    with pytest.raises(
        TypeError, match=r"X holds numpy arrays .* convert X to the array type of A"
    ):
        factor.solve(np.ones(4))
    with pytest.raises(
        TypeError, match=r"X holds numpy arrays .* convert X to the array type of A"
    ):
        factor.matvec(np.ones(4))
    with pytest.raises(
        TypeError, match=r"u holds numpy arrays .* convert u to the array type of A"
    ):
        factor.rank_one_update(np.ones(4))
    with pytest.raises(
        TypeError, match=r"u holds (array-api|cupy|torch) arrays .* the array type of A"
    ):
        InverseFactor(A).rank_one_update(to_array(np.ones(4)))
    with pytest.raises(ValueError, match="u must have length 4"):
        factor.rank_one_update(to_array(np.ones(3)))
    with pytest.raises(ValueError, match="X must have 4 rows"):
        factor.solve(to_array(np.ones(3)))
    with pytest.raises(ValueError, match="X contains NaN"):
        factor.solve(to_array(np.full(4, np.nan)))
    with pytest.raises(TypeError, match="as_linear_operator needs a host inverse"):
        factor.as_linear_operator()
    with pytest.raises(LinAlgError, match=r"A is not positive definite.*add damping"):
        InverseFactor(to_array(-np.eye(3)))
    with pytest.raises(ValueError, match="A must be symmetric"):
        InverseFactor(to_array(np.array([[2.0, 1.0], [0.0, 2.0]])))
    with pytest.raises(ValueError, match="A contains NaN"):
        InverseFactor(to_array(np.full((2, 2), np.nan)))
