"""Tests for InverseFactor: Sherman–Morrison updates against dense inverses, refactorization."""

from __future__ import annotations

import numpy as np
import pytest

from linalg._core.results import LinAlgError
from linalg.kron._inverse_factor import InverseFactor

from conftest import spd_matrix

N = 40


def _relative(x, y):
    return np.linalg.norm(x - y) / np.linalg.norm(y)


def test_thousand_updates_match_dense_inverse(rng):
    A = spd_matrix(rng, N)
    factor = InverseFactor(A, rng=1)
    dense = A.copy()
    for _ in range(1000):
        u = rng.standard_normal(N)
        alpha = rng.choice([rng.uniform(0.01, 2.0), -rng.uniform(0.0, 0.01)])
        decay = rng.choice([1.0, rng.uniform(0.9, 1.0)])
        factor.rank_one_update(u, alpha=alpha, decay=decay)
        dense = decay * dense + alpha * np.outer(u, u)
    assert factor.n_updates == 1000
    assert _relative(factor.matrix, dense) < 1e-12
    assert _relative(factor.inverse, np.linalg.inv(dense)) < 1e-8
    np.testing.assert_array_equal(factor.inverse, factor.inverse.T)


def test_float32_stays_float32(rng):
    A = spd_matrix(rng, N).astype(np.float32)
    factor = InverseFactor(A, rng=1)
    dense = A.astype(np.float64)
    for _ in range(50):
        u = rng.standard_normal(N).astype(np.float32)
        factor.rank_one_update(u, alpha=0.5, decay=0.95)
        dense = 0.95 * dense + 0.5 * np.outer(u, u)
    assert (
        factor.inverse.dtype == np.float32
        and factor.solve(np.ones(N, np.float32)).dtype == np.float32
    )
    assert _relative(factor.inverse, np.linalg.inv(dense)) < 1e-3


def test_tiny_denominator_refactorizes_and_stays_accurate(rng):
    A = spd_matrix(rng, N)
    factor = InverseFactor(A, rng=1)
    u = rng.standard_normal(N)
    quadratic = u @ np.linalg.solve(A, u)
    down = -(1.0 - 1e-10) / quadratic  # 1 + alpha uᵀA⁻¹u = 1e-10: nearly singular
    factor.rank_one_update(u, alpha=down)
    assert factor.n_refactorizations == 1
    dense = A + down * np.outer(u, u)
    residual = dense @ factor.inverse - np.eye(N)
    assert np.linalg.norm(residual) < 1e3 * np.finfo(float).eps * np.linalg.cond(dense)
    factor.rank_one_update(u, alpha=-down)  # undo: the formula would cancel catastrophically
    assert factor.n_refactorizations == 2
    assert _relative(factor.inverse, np.linalg.inv(A)) < 1e-10


def test_probe_check_refactorizes_when_error_grows(rng):
    A = spd_matrix(rng, N)
    factor = InverseFactor(A, check_every=1, rtol=0.0, rng=1)
    factor.rank_one_update(rng.standard_normal(N))
    before = factor.n_refactorizations
    # rtol=0 leaves the floor 100 * r0; a corrupted inverse must be caught at the next check
    factor._inverse += 1e-6
    factor.rank_one_update(rng.standard_normal(N))
    assert factor.n_refactorizations == before + 1
    assert _relative(factor.inverse, np.linalg.inv(factor.matrix)) < 1e-12


def test_indefinite_update_raises_and_leaves_state(rng):
    A = spd_matrix(rng, N)
    factor = InverseFactor(A, rng=1)
    u = rng.standard_normal(N)
    before_inverse, before_matrix = factor.inverse.copy(), factor.matrix.copy()
    with pytest.raises(LinAlgError, match=r"makes A indefinite.*smaller downdate"):
        factor.rank_one_update(u, alpha=-2.0 / (u @ np.linalg.solve(A, u)))
    np.testing.assert_array_equal(factor.inverse, before_inverse)
    np.testing.assert_array_equal(factor.matrix, before_matrix)
    assert factor.n_updates == 0


@pytest.mark.parametrize("shape", [(N,), (N, 3)])
def test_solve_and_operator(rng, shape):
    A = spd_matrix(rng, N)
    factor = InverseFactor(A)
    X = rng.standard_normal(shape)
    expected = np.linalg.solve(A, X)
    assert _relative(factor.solve(X), expected) < 1e-12
    assert _relative(factor.as_linear_operator() @ X, expected) < 1e-12


def test_solve_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    A = spd_matrix(rng, N)
    factor = InverseFactor(torch.from_numpy(A))
    out = factor.solve(torch.ones(N, dtype=torch.float64))
    assert isinstance(out, torch.Tensor)
    assert _relative(out.numpy(), np.linalg.solve(A, np.ones(N))) < 1e-12


def test_inputs_not_modified_and_views_read_only(rng):
    A = np.asfortranarray(spd_matrix(rng, N))
    A.flags.writeable = False
    u = rng.standard_normal(2 * N)[::2]
    u.flags.writeable = False
    A_before, u_before = A.copy(), u.copy()
    factor = InverseFactor(A)
    factor.rank_one_update(u, alpha=0.3, decay=0.9)
    np.testing.assert_array_equal(A, A_before)
    np.testing.assert_array_equal(u, u_before)
    for view in (factor.inverse, factor.matrix):
        with pytest.raises(ValueError, match="read-only"):
            view[0, 0] = 1.0


def test_bad_construction(rng):
    with pytest.raises(LinAlgError, match=r"A is not positive definite.*add damping"):
        InverseFactor(-np.eye(3))
    with pytest.raises(ValueError, match="A must be symmetric"):
        InverseFactor(np.array([[2.0, 1.0], [0.0, 2.0]]))
    with pytest.raises(ValueError, match="A must be square"):
        InverseFactor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="A contains NaN"):
        InverseFactor(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="check_every"):
        InverseFactor(np.eye(2), check_every=0)
    with pytest.raises(ValueError, match="rtol"):
        InverseFactor(np.eye(2), rtol=-1.0)


@pytest.mark.parametrize(
    ("u", "kwargs", "error", "match"),
    [
        (np.ones(3), {}, ValueError, "u must have length 4"),
        (np.ones((4, 1)), {}, ValueError, "u must be 1-D"),
        (np.array([1.0, np.nan, 0.0, 0.0]), {}, ValueError, "u contains NaN"),
        (np.ones(4), {"alpha": np.inf}, ValueError, "alpha must be finite"),
        (np.ones(4), {"decay": 0.0}, ValueError, "decay must be > 0"),
        (np.ones(4), {"alpha": -1.0}, LinAlgError, "makes A indefinite"),
    ],
)
def test_bad_update(u, kwargs, error, match):
    factor = InverseFactor(np.eye(4))
    with pytest.raises(error, match=match):
        factor.rank_one_update(u, **kwargs)
    np.testing.assert_array_equal(factor.inverse, np.eye(4))
