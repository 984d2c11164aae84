"""nystrom and the Nyström preconditioner on matrices computed through their own
array-API namespace.

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. ``Ω`` is drawn on the
host from the same stream, so the approximation equals the NumPy path's to
rounding (``U`` up to the signs of its columns: compared through ``U diag(lam) Uᵀ``);
a PSD matrix of exact low rank is recovered, and the preconditioner applies
``(lam_r + μ)(A + μI)⁻¹`` exactly at full rank.
"""

from __future__ import annotations

import numpy as np
import pytest

from linalg.sketch import NystromPreconditioner, nystrom, nystrom_preconditioner
from linalg.solvers import cg

from conftest import RTOL


def relative(got, want):
    return np.abs(got - want).max() / np.abs(want).max()


def kernel_matrix(rng, n=300):
    X = rng.standard_normal((n, 10))
    return np.exp(-0.01 * ((X[:, None] - X[None]) ** 2).sum(-1))


def test_nystrom_equals_numpy_path_and_recovers_low_rank(namespace, rng, dtype):
    to_array, to_numpy = namespace
    G = rng.standard_normal((200, 6))
    A = (G @ G.T).astype(dtype)  # PSD of rank 6
    device_A = to_array(A)
    U, lam = nystrom(device_A, 10, rng=1)
    assert type(U) is type(device_A) and type(lam) is type(device_A)
    U, lam = to_numpy(U), to_numpy(lam)
    assert U.dtype == dtype and lam.dtype == dtype and U.shape == (200, 10)
    U0, lam0 = nystrom(A, 10, rng=1)
    tol = 10 * RTOL[np.dtype(dtype)]
    assert relative(lam, lam0) <= tol
    assert relative((U * lam) @ U.T, (U0 * lam0) @ U0.T) <= tol
    exact = (G @ G.T).astype(np.float64)
    assert relative((U.astype(np.float64) * lam) @ U.T.astype(np.float64), exact) <= 100 * tol
    assert np.all(lam[6:] <= tol * lam[0]) and np.all(np.diff(lam) <= 0)
    assert np.abs(U.T.astype(np.float64) @ U - np.eye(10)).max() <= tol
    np.testing.assert_array_equal(to_numpy(device_A), A)  # input unchanged


def test_preconditioner_equals_numpy_path(namespace, rng, dtype):
    to_array, to_numpy = namespace
    K = kernel_matrix(rng).astype(dtype)
    P = nystrom_preconditioner(to_array(K), 10, mu=1e-2, rng=0)
    P0 = nystrom_preconditioner(K, 10, mu=1e-2, rng=0)
    assert (P.rank, P.n_doublings) == (P0.rank, P0.n_doublings)
    assert P.n_doublings >= 1  # the rank grew on the device
    assert P.condition_estimate == pytest.approx(P0.condition_estimate, rel=10 * RTOL[dtype])
    assert type(P.U) is type(to_array(K)) and P.dtype == dtype
    R = rng.standard_normal((300, 3)).astype(dtype)
    want = P0.solve(R)
    for got in (P.solve(to_array(R)), P.matmat(to_array(R))):
        assert type(got) is type(to_array(R)) and to_numpy(got).dtype == dtype
        assert relative(to_numpy(got), want) <= 10 * RTOL[dtype]
    assert relative(to_numpy(P.matvec(to_array(R[:, 0]))), want[:, 0]) <= 10 * RTOL[dtype]


def test_full_rank_preconditioner_is_the_scaled_inverse(namespace, rng):
    to_array, to_numpy = namespace
    Q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    A = (Q * np.geomspace(1.0, 100.0, 16)) @ Q.T
    P = nystrom_preconditioner(to_array(A), 16, mu=0.1, rng=0)
    v = np.arange(1.0, 17.0)
    expected = (1.0 + 0.1) * np.linalg.solve(A + 0.1 * np.eye(16), v)
    np.testing.assert_allclose(to_numpy(P.solve(to_array(v))), expected, rtol=1e-9)


def test_device_preconditioner_in_device_cg(namespace, rng):
    to_array, to_numpy = namespace
    K, mu = kernel_matrix(rng), 1e-2
    A = K + mu * np.eye(len(K))
    b = rng.standard_normal(len(K))
    P = nystrom_preconditioner(to_array(K), 10, mu=mu, rng=0)
    result = cg(to_array(A), to_array(b), M=P, rtol=1e-10)
    x = to_numpy(result.x)
    assert result.converged
    assert np.linalg.norm(A @ x - b) <= 1e-9 * np.linalg.norm(b)  # recomputed residual
    plain = cg(A, b, rtol=1e-10)
    assert result.n_iter < plain.n_iter / 3


def test_bad_input(namespace, rng):
    to_array, _ = namespace
    with pytest.raises(ValueError, match="A must be symmetric"):
        nystrom(to_array(rng.standard_normal((8, 8))), 2, rng=0)
    with pytest.raises(ValueError, match="A must be square"):
        nystrom(to_array(np.ones((8, 6))), 2, rng=0)
    with pytest.raises(ValueError, match="A contains NaN"):
        nystrom(to_array(np.full((8, 8), np.nan)), 2, rng=0)
    with pytest.raises(ValueError, match="rank must be <= n"):
        nystrom(to_array(np.eye(8)), 9, rng=0)
    G = rng.standard_normal((8, 2))
    with pytest.raises(Exception, match="not positive semidefinite"):
        nystrom(to_array(-(G @ G.T) - np.eye(8)), 3, rng=0)
    P = NystromPreconditioner(to_array(np.eye(8)[:, :2]), to_array(np.array([3.0, 1.0])), mu=1.0)
    with pytest.raises(TypeError, match="convert R to the array type of U"):
        P.solve(np.ones(8))
    with pytest.raises(TypeError, match="convert R to the array type of U"):
        P.matvec(np.ones(8))
    with pytest.raises(ValueError, match="R must have 8 rows"):
        P.solve(to_array(np.ones(7)))
    with pytest.raises(TypeError, match="live in different places"):
        NystromPreconditioner(to_array(np.eye(8)[:, :2]), np.array([3.0, 1.0]), mu=1.0)
    with pytest.raises(ValueError, match="lam must be >= 0 and sorted"):
        NystromPreconditioner(to_array(np.eye(8)[:, :2]), to_array(np.array([1.0, 3.0])), mu=1.0)


class DeviceKernelOperator:
    """A user's operator on device blocks: ``shape``, ``dtype`` and ``matmat``, the
    products made by the device matrix it holds (counted)."""

    def __init__(self, matrix, dtype):
        self.matrix, self.shape, self.dtype = matrix, tuple(matrix.shape), np.dtype(dtype)
        self.calls = 0

    def matmat(self, X):
        self.calls += 1
        return self.matrix @ X


def test_operator_on_device_data_with_like(namespace, rng, dtype):
    """An operator computing on device blocks, with ``like=``: Ω drawn there, the
    same approximation and preconditioner as the device matrix itself gives."""
    to_array, to_numpy = namespace
    K = kernel_matrix(rng).astype(dtype)
    device_K = to_array(K)
    op = DeviceKernelOperator(device_K, dtype)
    U, lam = nystrom(op, 12, rng=3, like=device_K)
    assert type(U) is type(device_K) and type(lam) is type(device_K) and op.calls == 1
    U0, lam0 = nystrom(device_K, 12, rng=3)
    tol = 10 * RTOL[np.dtype(dtype)]
    U, lam, U0, lam0 = (to_numpy(a) for a in (U, lam, U0, lam0))
    assert relative(lam, lam0) <= tol
    assert relative((U * lam) @ U.T, (U0 * lam0) @ U0.T) <= tol
    P = nystrom_preconditioner(op, 10, mu=1e-2, rng=0, like=device_K)
    P0 = nystrom_preconditioner(device_K, 10, mu=1e-2, rng=0)
    assert (P.rank, P.n_doublings) == (P0.rank, P0.n_doublings) and type(P.U) is type(device_K)
    if dtype == np.float64:  # the preconditioner at work in the device CG
        A = K + 1e-2 * np.eye(len(K))
        b = rng.standard_normal(len(K))
        result = cg(to_array(A), to_array(b), M=P, rtol=1e-10)
        assert result.converged and result.n_iter < cg(A, b, rtol=1e-10).n_iter / 3
        assert np.linalg.norm(A @ to_numpy(result.x) - b) <= 1e-9 * np.linalg.norm(b)


def test_operator_and_like_refusals(namespace, rng):
    to_array, _ = namespace
    K = kernel_matrix(rng, n=40)
    device_K = to_array(K)
    from scipy.sparse.linalg import aslinearoperator

    with pytest.raises(TypeError, match="SciPy LinearOperator, which computes on NumPy"):
        nystrom(aslinearoperator(K), 4, like=device_K)
    with pytest.raises(TypeError, match="like must be an array"):
        nystrom(DeviceKernelOperator(device_K, np.float64), 4, like=[1.0])
    with pytest.raises(TypeError, match="convert like to the array type of A"):
        nystrom(device_K, 4, like=K)

    class OnTheHost(DeviceKernelOperator):
        def matmat(self, X):
            return K @ np.ones((40, X.shape[1]))

    with pytest.raises(TypeError, match=r"A returned numpy arrays .*compute where the data lives"):
        nystrom(OnTheHost(device_K, np.float64), 4, like=device_K)
    with pytest.raises(TypeError, match="A is a callable without a shape"):
        nystrom(lambda X: X, 4, like=device_K)
