"""kron_matvec and kron_solve against explicit numpy.kron products."""

from __future__ import annotations

import numpy as np
import pytest

from linalg._core.results import LinAlgError
from linalg.kron._products import kron_matvec, kron_solve

from conftest import RTOL, spd_matrix


def vec(X: np.ndarray) -> np.ndarray:
    """Column-major vec (stacked columns)."""
    return X.reshape(-1, order="F")


def relerr(x, y) -> float:
    return float(np.linalg.norm(np.asarray(x) - y) / np.linalg.norm(y))


def test_matvec_rectangular_factors(rng, dtype):
    A, B = rng.standard_normal((3, 5)), rng.standard_normal((4, 2))
    X = rng.standard_normal((2, 5))
    Y = kron_matvec(A.astype(dtype), B.astype(dtype), X.astype(dtype))
    assert Y.shape == (4, 3) and Y.dtype == dtype
    assert relerr(vec(Y), np.kron(A, B) @ vec(X)) <= RTOL[dtype]


def test_matvec_batched(rng):
    A, B = rng.standard_normal((3, 5)), rng.standard_normal((4, 2))
    X = rng.standard_normal((6, 2, 5))
    Y = kron_matvec(A, B, X)
    expected = np.stack([np.kron(A, B) @ vec(x) for x in X])
    assert Y.shape == (6, 4, 3)
    assert relerr(np.stack([vec(y) for y in Y]), expected) <= 1e-10


def test_matvec_three_factors_on_tensor(rng):
    factors = [rng.standard_normal(shape) for shape in [(2, 3), (4, 2), (3, 5)]]
    X = rng.standard_normal((3, 2, 5))
    Y = kron_matvec(factors, X)
    assert Y.shape == (2, 4, 3)
    expected = np.kron(np.kron(factors[0], factors[1]), factors[2]) @ X.reshape(-1)
    assert relerr(Y.reshape(-1), expected) <= 1e-10
    batch = rng.standard_normal((4, 3, 2, 5))
    Yb = kron_matvec(factors, batch)
    assert Yb.shape == (4, 2, 4, 3)
    for y, x in zip(Yb, batch, strict=True):
        assert relerr(y, kron_matvec(factors, x)) <= 1e-12


def test_list_form_agrees_with_two_factor_form(rng):
    A, B = rng.standard_normal((3, 5)), rng.standard_normal((4, 2))
    X = rng.standard_normal((2, 5))
    assert relerr(kron_matvec([A, B], X.T), kron_matvec(A, B, X).T) <= 1e-14


def test_solve(rng, dtype):
    A, B = spd_matrix(rng, 4), spd_matrix(rng, 3, cond=10.0)
    X = rng.standard_normal((3, 4))
    damping = 0.7
    K = np.kron(A, B) + damping * np.eye(12)
    Y = kron_solve(A.astype(dtype), B.astype(dtype), X.astype(dtype), damping=damping)
    assert Y.dtype == dtype and Y.shape == (3, 4)
    assert relerr(vec(Y), np.linalg.solve(K, vec(X))) <= RTOL[dtype]


def test_solve_batched(rng):
    A, B = spd_matrix(rng, 4), spd_matrix(rng, 3)
    X = rng.standard_normal((5, 3, 4))
    Y = kron_solve(A, B, X, damping=0.1)
    K = np.kron(A, B) + 0.1 * np.eye(12)
    expected = np.stack([np.linalg.solve(K, vec(x)) for x in X])
    assert relerr(np.stack([vec(y) for y in Y]), expected) <= 1e-10


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    A, B = spd_matrix(rng, 4), spd_matrix(rng, 3)
    X = rng.standard_normal((3, 4))
    Y = kron_matvec(torch.from_numpy(A), torch.from_numpy(B), torch.from_numpy(X))
    assert isinstance(Y, torch.Tensor)
    assert relerr(Y.numpy(), B @ X @ A.T) <= 1e-12
    Z = kron_solve(torch.from_numpy(A), torch.from_numpy(B), torch.from_numpy(X), damping=0.5)
    assert isinstance(Z, torch.Tensor)
    assert relerr(Z.numpy(), kron_solve(A, B, X, damping=0.5)) <= 1e-14


def test_inputs_not_modified_read_only_noncontiguous(rng):
    A, B = spd_matrix(rng, 4), spd_matrix(rng, 3)
    X = rng.standard_normal((4, 3)).T  # non-contiguous (3, 4)
    for M in (A, B, X):
        M.flags.writeable = False
    copies = [M.copy() for M in (A, B, X)]
    kron_matvec(A, B, X)
    kron_matvec([A, B], X.T)
    kron_solve(A, B, X, damping=0.1)
    for M, copy in zip((A, B, X), copies, strict=True):
        np.testing.assert_array_equal(M, copy)


def test_bad_input(rng):
    A, B = spd_matrix(rng, 4), spd_matrix(rng, 3)
    X = rng.standard_normal((3, 4))
    with pytest.raises(ValueError, match="X must have shape"):
        kron_matvec(A, B, X.T)
    with pytest.raises(ValueError, match="X must have shape"):
        kron_matvec([A, B], X)
    with pytest.raises(ValueError, match="factors"):
        kron_matvec([], X)
    with pytest.raises(ValueError, match="A must be square"):
        kron_solve(A[:, :3], B, X, damping=0.1)
    with pytest.raises(ValueError, match="B must be symmetric"):
        kron_solve(A, B + np.triu(np.ones((3, 3)), 1), X, damping=0.1)
    with pytest.raises(ValueError, match="damping must be >= 0"):
        kron_solve(A, B, X, damping=-1.0)
    with pytest.raises(ValueError, match="X contains NaN"):
        kron_solve(A, B, np.full((3, 4), np.nan), damping=0.1)
    with pytest.raises(TypeError, match="complex"):
        kron_matvec(A, B, X.astype(complex))
    with pytest.raises(LinAlgError, match="increase damping"):
        kron_solve(np.zeros((4, 4)), B, X, damping=0.0)
