"""Tests for nearest_kronecker: exact recovery, the SVD bound, power iteration, Shampoo."""

from __future__ import annotations

import numpy as np
import pytest

from linalg.kron._nearest import nearest_kronecker

from conftest import RTOL

SHAPE_A, SHAPE_B = (3, 4), (5, 2)


def _rearranged(M, shape_a, shape_b):
    """R(M) built entry by entry from its definition (row i * n1 + j = vec of block (i, j))."""
    (m1, n1), (m2, n2) = shape_a, shape_b
    return np.array(
        [
            M[i * m2 : (i + 1) * m2, j * n2 : (j + 1) * n2].ravel()
            for i in range(m1)
            for j in range(n1)
        ]
    )


def _sum_of_products(approx):
    return sum(np.kron(a, b) for a, b in zip(approx.A, approx.B, strict=True))


def _relative(x, y):
    return np.linalg.norm(x - y) / np.linalg.norm(y)


def test_recovers_exact_kronecker_product(rng, dtype):
    A = rng.standard_normal(SHAPE_A).astype(dtype)
    B = rng.standard_normal(SHAPE_B).astype(dtype)
    M = np.kron(A, B)
    approx = nearest_kronecker(M, SHAPE_A, SHAPE_B)
    assert approx.A.shape == (1, *SHAPE_A) and approx.B.shape == (1, *SHAPE_B)
    assert approx.A.dtype == dtype and approx.B.dtype == dtype
    tol = {np.float32: 1e-5, np.float64: 1e-12}[dtype.type]
    assert _relative(np.kron(approx.A[0], approx.B[0]), M.astype(np.float64)) < tol
    assert approx.error < tol
    power = nearest_kronecker(M, SHAPE_A, SHAPE_B, method="power", n_iter=3, rng=5)
    assert power.A.dtype == dtype and power.B.dtype == dtype
    assert _relative(np.kron(power.A[0], power.B[0]), M.astype(np.float64)) < tol
    # balanced split: both factors carry sqrt of the singular value
    assert np.isclose(np.linalg.norm(approx.A[0]), np.linalg.norm(approx.B[0]), rtol=1e-4)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_error_equals_svd_tail_and_true_error(rng, rank):
    M = rng.standard_normal((15, 8))
    approx = nearest_kronecker(M, SHAPE_A, SHAPE_B, rank=rank)
    s = np.linalg.svd(_rearranged(M, SHAPE_A, SHAPE_B), compute_uv=False)
    bound = np.sqrt(np.sum(s[rank:] ** 2)) / np.linalg.norm(M)
    assert approx.error == pytest.approx(bound, rel=1e-12)
    assert _relative(_sum_of_products(approx), M) == pytest.approx(bound, rel=1e-10)


def test_rank_two_of_a_sum_of_two_products_is_exact(rng):
    M = sum(np.kron(rng.standard_normal(SHAPE_A), rng.standard_normal(SHAPE_B)) for _ in range(2))
    approx = nearest_kronecker(M, SHAPE_A, SHAPE_B, rank=2)
    assert approx.error < 1e-14
    assert _relative(_sum_of_products(approx), M) < 1e-12
    assert nearest_kronecker(M, SHAPE_A, SHAPE_B).error > 1e-3


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("rng_arg", [None, 7])
def test_power_iteration_converges_to_svd(rng, rank, rng_arg):
    M = rng.standard_normal((15, 8))
    exact = nearest_kronecker(M, SHAPE_A, SHAPE_B, rank=rank)
    power = nearest_kronecker(
        M, SHAPE_A, SHAPE_B, rank=rank, method="power", n_iter=300, rng=rng_arg
    )
    assert power.error == pytest.approx(exact.error, rel=1e-7)
    assert _relative(_sum_of_products(power), _sum_of_products(exact)) < 1e-6
    one_step = nearest_kronecker(M, SHAPE_A, SHAPE_B, rank=rank, method="power", rng=rng_arg)
    assert one_step.error >= exact.error * (1 - 1e-12)
    assert _relative(_sum_of_products(one_step), M) == pytest.approx(one_step.error, rel=1e-8)


def test_one_power_step_from_identity_is_shampoo(rng):
    m, n = 3, 4
    grads = rng.standard_normal((20, m, n))
    M = sum(np.outer(g.ravel(), g.ravel()) for g in grads)  # row-major vec
    left = sum(g @ g.T for g in grads)  # Shampoo's L
    right = sum(g.T @ g for g in grads)  # Shampoo's R
    approx = nearest_kronecker(M, (m, m), (n, n), method="power", n_iter=1)
    ratio_a = approx.A[0] / left
    ratio_b = approx.B[0] / right
    assert np.all(ratio_a > 0) and np.all(ratio_b > 0)
    np.testing.assert_allclose(ratio_a, ratio_a[0, 0], rtol=1e-12)
    np.testing.assert_allclose(ratio_b, ratio_b[0, 0], rtol=1e-12)
    # the product carries the Frobenius-optimal scale c = <M, L ⊗ R> / ||L ⊗ R||²
    K = np.kron(left, right)
    c = np.sum(M * K) / np.sum(K * K)
    np.testing.assert_allclose(np.kron(approx.A[0], approx.B[0]), c * K, rtol=1e-12)
    assert approx.error == pytest.approx(_relative(c * K, M), rel=1e-6)


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    M = np.kron(rng.standard_normal(SHAPE_A), rng.standard_normal(SHAPE_B))
    approx = nearest_kronecker(torch.from_numpy(M), SHAPE_A, SHAPE_B)
    assert isinstance(approx.A, torch.Tensor) and isinstance(approx.B, torch.Tensor)
    np.testing.assert_allclose(np.kron(approx.A[0].numpy(), approx.B[0].numpy()), M, atol=1e-12)


def test_input_not_modified_and_read_only_noncontiguous(rng):
    big = rng.standard_normal((15, 16))
    M = big[:, ::2]
    M.flags.writeable = False
    before = M.copy()
    approx = nearest_kronecker(M, SHAPE_A, SHAPE_B, rank=2)
    np.testing.assert_array_equal(M, before)
    reference = nearest_kronecker(np.ascontiguousarray(M), SHAPE_A, SHAPE_B, rank=2)
    np.testing.assert_allclose(approx.A, reference.A, rtol=RTOL[M.dtype])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"M": np.ones((15, 9))}, ValueError, "M must have shape"),
        ({"M": np.full((15, 8), np.nan)}, ValueError, "M contains NaN"),
        ({"M": np.ones((15, 8), complex)}, TypeError, "M is complex"),
        ({"shape_a": (3,)}, TypeError, "shape_a"),
        ({"shape_b": (0, 2)}, ValueError, r"shape_b\[0\]"),
        ({"rank": 0}, ValueError, "rank"),
        ({"rank": 11}, ValueError, "rank must be <= "),
        ({"method": "qr"}, ValueError, "method"),
        ({"n_iter": 0}, ValueError, "n_iter"),
        ({"rng": "seed"}, TypeError, "rng"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {"M": np.ones((15, 8)), "shape_a": SHAPE_A, "shape_b": SHAPE_B, "method": "power"}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        nearest_kronecker(args.pop("M"), args.pop("shape_a"), args.pop("shape_b"), **args)
