"""Shampoo against dense float64 inverse roots and explicit mode products."""

from __future__ import annotations

import numpy as np
import pytest

from linalg._core.results import LinAlgError
from linalg.kron._shampoo import Shampoo


def dense_root(S: np.ndarray, p: int, eps: float) -> np.ndarray:
    """(S + eps I)^(-1/p) by a float64 eigendecomposition."""
    lam, V = np.linalg.eigh(S.astype(np.float64) + eps * np.eye(len(S)))
    return (V * lam ** (-1.0 / p)) @ V.T


def mode_product(T: np.ndarray, M: np.ndarray, axis: int) -> np.ndarray:
    """T ×_axis M, by unfolding: (M @ T_(axis)) folded back."""
    moved = np.moveaxis(T, axis, 0)
    folded = (M @ moved.reshape(moved.shape[0], -1)).reshape(moved.shape)
    return np.moveaxis(folded, 0, axis)


def test_matrix_gradient_matches_dense(rng, dtype):
    grads = [rng.standard_normal((5, 7)).astype(dtype) for _ in range(4)]
    opt = Shampoo((5, 7), eps=1e-3)
    for G in grads:
        opt.update(G)
    assert opt.n_updates == 4
    L = sum(G.astype(np.float64) @ G.T.astype(np.float64) for G in grads)
    R = sum(G.astype(np.float64).T @ G.astype(np.float64) for G in grads)
    G = rng.standard_normal((5, 7)).astype(dtype)
    expected = dense_root(L, 4, 1e-3) @ G.astype(np.float64) @ dense_root(R, 4, 1e-3)
    out = opt.precondition(G)
    assert out.dtype == dtype
    rtol = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}[dtype]
    np.testing.assert_allclose(opt.statistics[0], L, rtol=rtol, atol=rtol * np.abs(L).max())
    np.testing.assert_allclose(out, expected, rtol=0, atol=rtol * np.abs(expected).max())


def test_three_way_tensor_matches_mode_products(rng):
    shape = (3, 4, 5)
    grads = [rng.standard_normal(shape) for _ in range(3)]
    opt = Shampoo(shape, eps=1e-4)
    for G in grads:
        opt.update(G)
    G = rng.standard_normal(shape)
    expected = G
    for i, n in enumerate(shape):
        stat = sum(
            np.moveaxis(g, i, 0).reshape(n, -1) @ np.moveaxis(g, i, 0).reshape(n, -1).T
            for g in grads
        )
        np.testing.assert_allclose(opt.statistics[i], stat, rtol=1e-12)
        expected = mode_product(expected, dense_root(stat, 6, 1e-4), i)
    np.testing.assert_allclose(opt.precondition(G), expected, rtol=1e-9, atol=1e-12)


def test_vector_gradient(rng):
    g = rng.standard_normal(6)
    opt = Shampoo(6, eps=1e-2)
    opt.update(g)
    expected = dense_root(np.outer(g, g), 2, 1e-2) @ g
    np.testing.assert_allclose(opt.precondition(g), expected, rtol=1e-10)


def test_beta2_moving_average(rng):
    beta2 = 0.9
    grads = [rng.standard_normal((4, 3)) for _ in range(5)]
    opt = Shampoo((4, 3), eps=1e-6, beta2=beta2)
    for G in grads:
        opt.update(G)
    T = len(grads)
    L = sum((1 - beta2) * beta2 ** (T - 1 - t) * (G @ G.T) for t, G in enumerate(grads))
    R = sum((1 - beta2) * beta2 ** (T - 1 - t) * (G.T @ G) for t, G in enumerate(grads))
    np.testing.assert_allclose(opt.statistics[0], L, rtol=1e-12)
    np.testing.assert_allclose(opt.statistics[1], R, rtol=1e-12)
    G = grads[0]
    expected = dense_root(L, 4, 1e-6) @ G @ dense_root(R, 4, 1e-6)
    np.testing.assert_allclose(opt.precondition(G), expected, rtol=1e-8)


def test_roots_cached_until_update(rng):
    opt = Shampoo((3, 3), eps=1e-3)
    opt.update(rng.standard_normal((3, 3)))
    G = rng.standard_normal((3, 3))
    first = opt.precondition(G)
    np.testing.assert_array_equal(opt.precondition(G), first)
    opt.update(rng.standard_normal((3, 3)))
    assert not np.allclose(opt.precondition(G), first)


def test_before_update_and_rank_deficient(rng):
    opt = Shampoo((2, 3), eps=1e-4)
    G = rng.standard_normal((2, 3))
    np.testing.assert_allclose(opt.precondition(G), G / 1e-4**0.5, rtol=1e-10)
    opt.update(G)  # the 3 x 3 statistic has rank 2: eps keeps the roots finite
    assert np.isfinite(opt.precondition(G)).all()
    with pytest.raises(LinAlgError, match="use eps >"):
        Shampoo((2, 3), eps=0.0).precondition(G)


def test_float32_default_eps_rank_deficient_is_finite(rng):
    opt = Shampoo((8, 2))
    G = rng.standard_normal((8, 2)).astype(np.float32)
    opt.update(G)
    out = opt.precondition(G)
    assert out.dtype == np.float32 and np.isfinite(out).all()


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    G = rng.standard_normal((3, 4)).astype(np.float32)
    opt = Shampoo((3, 4), eps=1e-3)
    opt.update(torch.from_numpy(G))
    out = opt.precondition(torch.from_numpy(G))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    ref = Shampoo((3, 4), eps=1e-3)
    ref.update(G)
    np.testing.assert_allclose(out.numpy(), ref.precondition(G), rtol=1e-6)


def test_inputs_not_modified_read_only_non_contiguous(rng):
    G = rng.standard_normal((8, 6))[::2, ::2]
    G.flags.writeable = False
    before = G.copy()
    opt = Shampoo((4, 3), eps=1e-3)
    opt.update(G)
    opt.precondition(G)
    np.testing.assert_array_equal(G, before)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"shape": ()}, ValueError, "shape must have at least one"),
        ({"shape": (3, 0)}, ValueError, "shape must be >= 1"),
        ({"shape": (3, 2.5)}, TypeError, "shape must be an integer"),
        ({"eps": -1.0}, ValueError, "eps must be >= 0"),
        ({"beta2": 0.0}, ValueError, "beta2 must be > 0"),
        ({"beta2": 1.0}, ValueError, "beta2 must be < 1"),
    ],
)
def test_bad_construction(kwargs, error, match):
    args = {"shape": (3, 2)} | kwargs
    with pytest.raises(error, match=match):
        Shampoo(args.pop("shape"), **args)


@pytest.mark.parametrize("method", ["update", "precondition"])
def test_bad_gradient(method):
    opt = Shampoo((3, 2), eps=1e-3)
    call = getattr(opt, method)
    with pytest.raises(ValueError, match=r"grad must have shape \(3, 2\)"):
        call(np.ones((2, 3)))
    with pytest.raises(ValueError, match="grad contains NaN"):
        call(np.full((3, 2), np.nan))
    with pytest.raises(TypeError, match="grad is complex"):
        call(np.ones((3, 2), dtype=complex))
    assert opt.n_updates == 0
