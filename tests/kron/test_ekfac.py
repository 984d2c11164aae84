"""EKFAC against K-FAC "exact" and against the explicit eigenbasis formula."""

from __future__ import annotations

import numpy as np
import pytest

from linalg._core.results import LinAlgError
from linalg.kron import KFAC, kfac_factors
from linalg.kron._ekfac import EKFAC

from conftest import RTOL

DIM_IN, DIM_OUT, N = 5, 3, 40


def vec(V: np.ndarray) -> np.ndarray:
    return V.reshape(-1, order="F")


def relerr(x, y) -> float:
    return float(np.linalg.norm(np.asarray(x) - y) / np.linalg.norm(y))


@pytest.fixture
def layer(rng):
    """Per-sample weight gradients g_n a_nᵀ of a linear layer, and its K-FAC factors."""
    a = rng.standard_normal((N, DIM_IN)) * np.linspace(0.5, 2.0, DIM_IN)
    g = rng.standard_normal((N, DIM_OUT)) + 0.5 * a[:, :DIM_OUT] ** 2
    grads = g[:, :, None] * a[:, None, :]
    A, G = kfac_factors(a, g)
    return A, G, grads


def eigenbasis_matrix(A: np.ndarray, G: np.ndarray, S: np.ndarray) -> np.ndarray:
    """(Q_A ⊗ Q_G) diag(vec S) (Q_A ⊗ Q_G)ᵀ, the EK-FAC matrix on column-major vec."""
    Q = np.kron(np.linalg.eigh(A)[1], np.linalg.eigh(G)[1])
    return (Q * vec(S)) @ Q.T


def fitted_scaling(A: np.ndarray, G: np.ndarray, grads: np.ndarray) -> np.ndarray:
    Q_A, Q_G = np.linalg.eigh(A)[1], np.linalg.eigh(G)[1]
    return np.mean([(Q_G.T @ x @ Q_A) ** 2 for x in grads], axis=0)


def test_before_fit_equals_kfac_exact(layer, rng, dtype):
    A, G, _ = layer
    ekfac = EKFAC(A.astype(dtype), G.astype(dtype), damping=0.05)
    kfac = KFAC(A.astype(dtype), G.astype(dtype), damping=0.05, damping_mode="exact")
    V = rng.standard_normal((2, DIM_OUT, DIM_IN)).astype(dtype)
    assert not ekfac.fitted
    Y = ekfac.solve(V)
    assert Y.dtype == dtype
    assert relerr(Y, kfac.solve(V)) <= RTOL[dtype]
    assert relerr(ekfac.matvec(V), kfac.matvec(V)) <= RTOL[dtype]
    assert abs(ekfac.logdet() - kfac.logdet()) <= RTOL[dtype] * abs(kfac.logdet())


def test_after_fit_equals_dense_formula(layer, rng, dtype):
    A, G, grads = layer
    damping = 0.05
    ekfac = EKFAC(A.astype(dtype), G.astype(dtype), damping=damping)
    assert ekfac.fit_eigenvalues(grads.astype(dtype)) is ekfac and ekfac.fitted
    S = fitted_scaling(A, G, grads)
    assert relerr(ekfac.scaling, S) <= RTOL[dtype]
    F = eigenbasis_matrix(A, G, S)
    K = F + damping * np.eye(DIM_IN * DIM_OUT)
    V = rng.standard_normal((DIM_OUT, DIM_IN))
    Y = ekfac.solve(V.astype(dtype))
    assert Y.dtype == dtype
    assert relerr(vec(Y), np.linalg.solve(K, vec(V))) <= RTOL[dtype]
    assert relerr(vec(ekfac.matvec(V.astype(dtype))), F @ vec(V)) <= RTOL[dtype]
    logdet = np.linalg.slogdet(K)[1]
    assert abs(ekfac.logdet() - logdet) <= RTOL[dtype] * abs(logdet)
    op = ekfac.as_linear_operator()
    assert relerr(op.matvec(vec(V)), np.linalg.solve(K, vec(V))) <= RTOL[dtype]


def test_refit_is_closer_to_second_moment(layer):
    A, G, grads = layer
    flat = np.stack([vec(x) for x in grads])
    moment = flat.T @ flat / N  # the true per-sample second moment on vec(W)
    ekfac = EKFAC(A, G, damping=0.0).fit_eigenvalues(grads)
    kfac_error = np.linalg.norm(np.kron(A, G) - moment)
    ekfac_error = np.linalg.norm(eigenbasis_matrix(A, G, ekfac.scaling) - moment)
    assert ekfac_error < 0.95 * kfac_error


def test_update_resets_fit(layer, rng):
    A, G, grads = layer
    ekfac = EKFAC(A, G, damping=0.1).fit_eigenvalues(grads)
    ekfac.update(A, G)
    assert not ekfac.fitted
    V = rng.standard_normal((DIM_OUT, DIM_IN))
    expected = KFAC(A, G, damping=0.1, damping_mode="exact").solve(V)
    assert relerr(ekfac.solve(V), expected) <= 1e-12


def test_torch_in_torch_out(layer, rng):
    torch = pytest.importorskip("torch")
    A, G, grads = layer
    ekfac = EKFAC(torch.from_numpy(A), torch.from_numpy(G), damping=0.1)
    ekfac.fit_eigenvalues(torch.from_numpy(grads))
    V = rng.standard_normal((DIM_OUT, DIM_IN))
    Y = ekfac.solve(torch.from_numpy(V))
    assert isinstance(Y, torch.Tensor)
    expected = EKFAC(A, G, damping=0.1).fit_eigenvalues(grads).solve(V)
    assert relerr(Y.numpy(), expected) <= 1e-12


def test_inputs_not_modified(layer, rng):
    A, G, grads = layer
    V = rng.standard_normal((DIM_IN, DIM_OUT)).T
    for M in (A, G, grads, V):
        M.flags.writeable = False
    copies = [M.copy() for M in (A, G, grads, V)]
    ekfac = EKFAC(A, G, damping=0.1).fit_eigenvalues(grads)
    ekfac.solve(V), ekfac.matvec(V), ekfac.logdet()
    for M, copy in zip((A, G, grads, V), copies, strict=True):
        np.testing.assert_array_equal(M, copy)


def test_bad_input(layer, rng):
    A, G, grads = layer
    with pytest.raises(ValueError, match="A must be square"):
        EKFAC(A[:, :2], G, damping=0.1)
    with pytest.raises(ValueError, match="damping must be >= 0"):
        EKFAC(A, G, damping=-1.0)
    ekfac = EKFAC(A, G, damping=0.0)
    with pytest.raises(ValueError, match=r"per_sample_grads must have shape \(n, 3, 5\)"):
        ekfac.fit_eigenvalues(grads.transpose(0, 2, 1))
    with pytest.raises(ValueError, match="V must have shape"):
        ekfac.solve(np.ones((DIM_IN, DIM_OUT)))
    ekfac.fit_eigenvalues(np.zeros_like(grads))
    with pytest.raises(LinAlgError, match="increase damping"):
        ekfac.solve(np.ones((DIM_OUT, DIM_IN)))
