"""Tests for fisher_weighted_svd: the weighted optimum against dense computations."""

from __future__ import annotations

import numpy as np
import pytest

from linalg._core.results import LinAlgError
from linalg.kron._fisher_svd import fisher_weighted_svd

from conftest import RTOL, spd_matrix

OUT, IN = 12, 9


def _sqrtm(S):
    values, vectors = np.linalg.eigh(S)
    return (vectors * np.sqrt(values)) @ vectors.T


def _weighted_norm(X, A, G):
    return np.linalg.norm(_sqrtm(G) @ X @ _sqrtm(A))


def _problem(rng):
    return rng.standard_normal((OUT, IN)), spd_matrix(rng, IN, 1e3), spd_matrix(rng, OUT, 1e3)


def _plain_truncation(W, rank):
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    return (U[:, :rank] * s[:rank]) @ Vt[:rank]


@pytest.mark.parametrize("rank", [1, 3, 8, 9])
def test_matches_whitened_optimum_and_beats_plain_svd(rng, rank):
    W, A, G = _problem(rng)
    low = fisher_weighted_svd(W, A, G, rank)
    assert low.L.shape == (OUT, rank) and low.R.shape == (rank, IN)
    # the optimum by symmetric square roots (eigh), independent of the Cholesky path
    s = np.linalg.svd(_sqrtm(G) @ W @ _sqrtm(A), compute_uv=False)
    optimum = np.sqrt(np.sum(s[rank:] ** 2) / np.sum(s**2))
    total = _weighted_norm(W, A, G)
    achieved = _weighted_norm(W - low.L @ low.R, A, G) / total
    assert low.error == pytest.approx(optimum, rel=1e-10, abs=1e-13)
    assert achieved == pytest.approx(optimum, rel=1e-8, abs=1e-12)
    plain = _weighted_norm(W - _plain_truncation(W, rank), A, G) / total
    assert achieved <= plain * (1 + 1e-12) + 1e-14
    if rank < IN:
        assert achieved < 0.9 * plain  # strongly anisotropic weights: a real gain


def test_identity_weights_give_plain_truncated_svd(rng, dtype):
    W = rng.standard_normal((OUT, IN)).astype(dtype)
    low = fisher_weighted_svd(W, np.eye(IN, dtype=dtype), np.eye(OUT, dtype=dtype), 4)
    assert low.L.dtype == dtype and low.R.dtype == dtype
    W64 = W.astype(np.float64)
    expected = _plain_truncation(W64, 4)
    tol = 10 * RTOL[np.dtype(dtype)]
    assert np.linalg.norm(low.L @ low.R - expected) <= tol * np.linalg.norm(expected)
    s = np.linalg.svd(W64, compute_uv=False)
    assert low.error == pytest.approx(np.linalg.norm(s[4:]) / np.linalg.norm(s), rel=tol)
    # balanced split: L and R carry equal shares of each singular value
    np.testing.assert_allclose(
        np.linalg.norm(low.L, axis=0), np.linalg.norm(low.R, axis=1), rtol=tol
    )


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    W, A, G = _problem(rng)
    low = fisher_weighted_svd(torch.from_numpy(W), torch.from_numpy(A), torch.from_numpy(G), 2)
    assert isinstance(low.L, torch.Tensor) and isinstance(low.R, torch.Tensor)
    reference = fisher_weighted_svd(W, A, G, 2)
    np.testing.assert_allclose(low.L.numpy() @ low.R.numpy(), reference.L @ reference.R)


def test_inputs_not_modified_read_only_noncontiguous(rng):
    W, A, G = _problem(rng)
    W = np.asfortranarray(W)
    A = np.repeat(A, 2, axis=1)[:, ::2]
    for X in (W, A, G):
        X.flags.writeable = False
    copies = [X.copy() for X in (W, A, G)]
    low = fisher_weighted_svd(W, A, G, 3)
    for X, before in zip((W, A, G), copies, strict=True):
        np.testing.assert_array_equal(X, before)
    reference = fisher_weighted_svd(*copies, 3)
    np.testing.assert_allclose(low.L @ low.R, reference.L @ reference.R, rtol=1e-12)


def test_zero_weights_matrix_has_zero_error(rng):
    low = fisher_weighted_svd(np.zeros((3, 2)), np.eye(2), np.eye(3), 1)
    assert low.error == 0.0
    np.testing.assert_array_equal(low.L @ low.R, np.zeros((3, 2)))


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ({"A": -np.eye(IN)}, LinAlgError, "A is not positive definite.*add damping"),
        ({"G": np.zeros((OUT, OUT))}, LinAlgError, "G is not positive definite.*add damping"),
        ({"A": np.triu(np.ones((IN, IN)))}, ValueError, "A must be symmetric"),
        ({"A": np.eye(IN + 1)}, ValueError, r"A must have shape \(in, in\)"),
        ({"G": np.eye(IN)}, ValueError, r"G must have shape \(out, out\)"),
        ({"W": np.ones(IN)}, ValueError, "W must be 2-D"),
        ({"W": np.full((OUT, IN), np.inf)}, ValueError, "W contains Inf"),
        ({"G": np.eye(OUT, dtype=complex)}, TypeError, "G is complex"),
        ({"rank": 0}, ValueError, "rank must be >= 1"),
        ({"rank": IN + 1}, ValueError, "rank must be <= min"),
        ({"rank": 2.0}, TypeError, "rank must be an integer"),
    ],
)
def test_bad_input(args, error, match):
    full = {"W": np.ones((OUT, IN)), "A": np.eye(IN), "G": np.eye(OUT), "rank": 2}
    full.update(args)
    with pytest.raises(error, match=match):
        fisher_weighted_svd(full["W"], full["A"], full["G"], full["rank"])
