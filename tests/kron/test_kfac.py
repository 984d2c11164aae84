"""kfac_factors, KFACFactors and KFAC against explicit Kronecker matrices."""

from __future__ import annotations

import numpy as np
import pytest

from linalg._core.results import LinAlgError
from linalg.kron import KFAC, KFACFactors, kfac_factors

from conftest import RTOL, spd_matrix

DIM_IN, DIM_OUT = 5, 3


def vec(V: np.ndarray) -> np.ndarray:
    return V.reshape(-1, order="F")


def relerr(x, y) -> float:
    return float(np.linalg.norm(np.asarray(x) - y) / np.linalg.norm(y))


def damped_kron(A: np.ndarray, G: np.ndarray, damping: float, mode: str) -> np.ndarray:
    """The explicit damped matrix on column-major vec(V), V of shape (out, in)."""
    if mode == "exact":
        return np.kron(A, G) + damping * np.eye(A.shape[0] * G.shape[0])
    pi = 1.0
    if mode == "pi":
        pi = np.sqrt((np.trace(A) / A.shape[0]) / (np.trace(G) / G.shape[0]))
    root = np.sqrt(damping)
    return np.kron(A + pi * root * np.eye(A.shape[0]), G + root / pi * np.eye(G.shape[0]))


@pytest.fixture
def factors(rng):
    return spd_matrix(rng, DIM_IN, cond=50.0), 3.0 * spd_matrix(rng, DIM_OUT, cond=20.0)


def test_kfac_factors(rng):
    a, g = rng.standard_normal((7, DIM_IN)), rng.standard_normal((7, DIM_OUT))
    A, G = kfac_factors(a, g)
    assert relerr(A, a.T @ a / 7) <= 1e-14 and relerr(G, g.T @ g / 7) <= 1e-14
    A, G = kfac_factors(a, g, bias=True)
    ones = np.hstack([a, np.ones((7, 1))])
    assert A.shape == (DIM_IN + 1, DIM_IN + 1)
    assert relerr(A, ones.T @ ones / 7) <= 1e-14 and relerr(G, g.T @ g / 7) <= 1e-14


@pytest.mark.parametrize("bias", [False, True])
def test_running_average(rng, bias):
    running = KFACFactors(DIM_IN, DIM_OUT, decay=0.8, bias=bias)
    assert running.A is None and running.n_updates == 0
    batches = [
        (rng.standard_normal((6, DIM_IN)), rng.standard_normal((6, DIM_OUT))) for _ in "abcd"
    ]
    for a, g in batches:
        running.update(a, g)
    moments = [kfac_factors(a, g, bias=bias) for a, g in batches]
    # first batch weight 0.8³, then 0.2 * 0.8², 0.2 * 0.8, 0.2
    weights = [0.8**3, 0.2 * 0.8**2, 0.2 * 0.8, 0.2]
    A = sum(w * m[0] for w, m in zip(weights, moments, strict=True))
    G = sum(w * m[1] for w, m in zip(weights, moments, strict=True))
    assert running.n_updates == 4
    assert relerr(running.A, A) <= 1e-14 and relerr(running.G, G) <= 1e-14


@pytest.mark.parametrize("mode", ["plain", "pi", "exact"])
def test_solve_matvec_logdet(factors, rng, dtype, mode):
    A, G = factors
    damping = 0.3
    K = damped_kron(A, G, damping, mode)
    V = rng.standard_normal((DIM_OUT, DIM_IN))
    kfac = KFAC(A.astype(dtype), G.astype(dtype), damping=damping, damping_mode=mode)
    Y = kfac.solve(V.astype(dtype))
    assert Y.dtype == dtype and Y.shape == V.shape
    assert relerr(vec(Y), np.linalg.solve(K, vec(V))) <= RTOL[dtype]
    W = kfac.matvec(V.astype(dtype))
    assert W.dtype == dtype and relerr(vec(W), np.kron(A, G) @ vec(V)) <= RTOL[dtype]
    sign, logdet = np.linalg.slogdet(K)
    assert sign == 1 and abs(kfac.logdet() - logdet) <= RTOL[dtype] * abs(logdet)


def test_exact_solves_sylvester_form(factors, rng):
    A, G = factors
    V = rng.standard_normal((DIM_OUT, DIM_IN))
    Y = KFAC(A, G, damping=0.2, damping_mode="exact").solve(V)
    assert relerr(G @ Y @ A + 0.2 * Y, V) <= 1e-12


def test_batched_and_linear_operator(factors, rng):
    A, G = factors
    kfac = KFAC(A, G, damping=0.1)
    K_inv = np.linalg.inv(damped_kron(A, G, 0.1, "pi"))
    V = rng.standard_normal((4, DIM_OUT, DIM_IN))
    Y = kfac.solve(V)
    assert Y.shape == V.shape
    assert relerr(np.stack([vec(y) for y in Y]), np.stack([K_inv @ vec(v) for v in V])) <= 1e-10
    op = kfac.as_linear_operator()
    assert op.shape == (DIM_IN * DIM_OUT,) * 2
    x = vec(V[0])
    assert relerr(op.matvec(x), K_inv @ x) <= 1e-10
    X = np.stack([vec(v) for v in V], axis=1)
    assert relerr(op.matmat(X), K_inv @ X) <= 1e-10


def test_update_recomputes(factors, rng):
    A, G = factors
    kfac = KFAC(A, G, damping=0.1, damping_mode="plain")
    V = rng.standard_normal((DIM_OUT, DIM_IN))
    kfac.solve(V)
    A2, G2 = spd_matrix(rng, 4), spd_matrix(rng, 2)
    assert kfac.update(A2, G2) is kfac
    V2 = rng.standard_normal((2, 4))
    K = damped_kron(A2, G2, 0.1, "plain")
    assert relerr(vec(kfac.solve(V2)), np.linalg.solve(K, vec(V2))) <= 1e-10
    assert abs(kfac.logdet() - np.linalg.slogdet(K)[1]) <= 1e-10 * abs(np.linalg.slogdet(K)[1])


def test_torch_in_torch_out(factors, rng):
    torch = pytest.importorskip("torch")
    A, G = factors
    V = rng.standard_normal((DIM_OUT, DIM_IN)).astype(np.float32)
    kfac = KFAC(torch.from_numpy(A.astype(np.float32)), torch.from_numpy(G), damping=0.1)
    assert kfac.dtype == np.float64  # float32 with float64 -> float64
    kfac32 = KFAC(
        torch.from_numpy(A.astype(np.float32)), torch.from_numpy(G.astype(np.float32)), damping=0.1
    )
    Y = kfac32.solve(torch.from_numpy(V))
    assert isinstance(Y, torch.Tensor) and Y.dtype == torch.float32
    assert relerr(Y.numpy(), KFAC(A, G, damping=0.1).solve(V.astype(np.float64))) <= 1e-4
    assert isinstance(kfac32.solve(V), torch.Tensor)  # NumPy V: the factors' type


def test_inputs_not_modified(factors, rng):
    A, G = factors
    A = np.asfortranarray(A)  # non-contiguous in C order
    V = rng.standard_normal((DIM_IN, DIM_OUT)).T
    for M in (A, G, V):
        M.flags.writeable = False
    copies = [M.copy() for M in (A, G, V)]
    for mode in ("plain", "pi", "exact"):
        kfac = KFAC(A, G, damping=0.1, damping_mode=mode)
        kfac.solve(V), kfac.matvec(V), kfac.logdet()
    for M, copy in zip((A, G, V), copies, strict=True):
        np.testing.assert_array_equal(M, copy)


def test_bad_input(factors, rng):
    A, G = factors
    V = rng.standard_normal((DIM_OUT, DIM_IN))
    with pytest.raises(ValueError, match="A must be square"):
        KFAC(A[:, :4], G, damping=0.1)
    with pytest.raises(ValueError, match="G must be symmetric"):
        KFAC(A, G + np.triu(np.ones_like(G), 1), damping=0.1)
    with pytest.raises(ValueError, match="damping must be >= 0"):
        KFAC(A, G, damping=-0.1)
    with pytest.raises(ValueError, match="damping_mode must be one of"):
        KFAC(A, G, damping=0.1, damping_mode="tikhonov")
    with pytest.raises(ValueError, match=r"V must have shape \(3, 5\)"):
        KFAC(A, G, damping=0.1).solve(V.T)
    with pytest.raises(ValueError, match="activations and grad_outputs must have the same"):
        kfac_factors(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="columns"):
        KFACFactors(2, 2).update(np.ones((3, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="decay must be"):
        KFACFactors(2, 2, decay=1.5)
    indefinite = np.diag([1.0, -1.0, 2.0, 1.0, 1.0])
    for mode in ("plain", "pi", "exact"):
        kfac = KFAC(indefinite, G, damping=0.0, damping_mode=mode)
        with pytest.raises(LinAlgError, match="increase damping"):
            kfac.solve(V)


def test_zero_damping_on_spd_factors(factors, rng):
    A, G = factors
    V = rng.standard_normal((DIM_OUT, DIM_IN))
    for mode in ("plain", "pi", "exact"):
        Y = KFAC(A, G, damping=0.0, damping_mode=mode).solve(V)
        assert relerr(G @ Y @ A, V) <= 1e-10
