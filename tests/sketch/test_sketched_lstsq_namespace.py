"""sketched_lstsq on data computed through its own array-API namespace.

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. The sketch and its
QR run on the device, the small triangular factor on the host, and LSQR on
the device: the answers are judged against the host path (same seed, same
sketch) and against numpy.linalg.lstsq.
"""

from __future__ import annotations

import numpy as np
import pytest

from linalg import ConvergenceWarning
from linalg.sketch import sketched_lstsq
from linalg.sketch._kinds import SKETCH_KINDS

from conftest import RTOL

DEVICE_KINDS = ["gaussian", "rademacher"]  # any device; the hashed kinds need CuPy or torch


def problem(rng: np.random.Generator, m: int = 600, n: int = 30, kappa: float = 1e6):
    """``A = U diag(s) Vᵀ`` with ``s`` log-spaced over [1/kappa, 1], and two right-hand
    sides far from the range of ``A``."""
    U, _ = np.linalg.qr(rng.standard_normal((m, n)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (U * np.geomspace(1.0, 1.0 / kappa, n)) @ V.T
    return A, A @ rng.standard_normal((n, 2)) + rng.standard_normal((m, 2))


def best_residual(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    return np.linalg.norm(A @ np.linalg.lstsq(A, B, rcond=None)[0] - B, axis=0)


@pytest.mark.parametrize("sketch", DEVICE_KINDS)
def test_equals_host_path_and_lstsq(sketch, namespace, rng, dtype):
    to_array, to_numpy = namespace
    A, B = problem(rng, kappa=1e6 if dtype == np.float64 else 1e2)
    A, B = A.astype(dtype), B.astype(dtype)
    result = sketched_lstsq(to_array(A), to_array(B), sketch=sketch, rng=7)
    host = sketched_lstsq(A, B, sketch=sketch, rng=7)
    X = to_numpy(result.x)
    assert type(result.x) is type(to_array(B)) and X.dtype == dtype and X.shape == (30, 2)
    assert result.converged.all() and (np.abs(result.n_iter - host.n_iter) <= 1).all()
    assert result.info.keys() == host.info.keys()
    assert result.info["preconditioner"] == host.info["preconditioner"] == "qr"
    best = best_residual(A, B)
    recomputed = np.linalg.norm(np.asarray(B, np.float64) - np.asarray(A, np.float64) @ X, axis=0)
    rtol = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}[np.dtype(dtype)]
    assert (recomputed <= best * (1 + rtol)).all()
    np.testing.assert_allclose(result.residual_norm, recomputed, rtol=1e-6)
    # x itself is only as accurate as κ(A) allows: compare on a well-conditioned A
    A, B = (Y.astype(dtype) for Y in problem(rng, kappa=10.0))
    result = sketched_lstsq(to_array(A), to_array(B), sketch=sketch, rng=7)
    host = sketched_lstsq(A, B, sketch=sketch, rng=7)
    exact = np.linalg.lstsq(A.astype(np.float64), B.astype(np.float64), rcond=None)[0]
    tolerance = RTOL[np.dtype(dtype)] * np.abs(exact).max()
    assert np.abs(to_numpy(result.x) - host.x).max() <= tolerance
    assert np.abs(to_numpy(result.x) - exact).max() <= tolerance


@pytest.mark.parametrize("sketch", sorted(set(SKETCH_KINDS) - set(DEVICE_KINDS)))
def test_other_kinds_compute_or_refuse_with_a_remedy(sketch, namespace, rng):
    """The kinds whose device path needs a particular library (CuPy or torch for the
    hashed kinds) give the host path's answer there, and elsewhere refuse, naming
    kinds that work."""
    to_array, to_numpy = namespace
    A, B = problem(rng, kappa=10.0)
    try:
        result = sketched_lstsq(to_array(A), to_array(B), sketch=sketch, rng=3)
    except TypeError as exc:
        assert type(to_array(A)).__module__.startswith("array_api_strict")
        assert f"the {sketch!r} sketch of A" in str(exc) and "'gaussian'" in str(exc)
        return
    exact = np.linalg.lstsq(A, B, rcond=None)[0]
    assert result.converged.all()
    assert (
        np.abs(to_numpy(result.x) - exact).max() <= RTOL[np.dtype(np.float64)] * np.abs(exact).max()
    )


def test_vector_rank_deficient_min_norm(namespace, rng):
    """A rank-deficient A takes the LSRN preconditioner: the minimum-norm solution."""
    to_array, to_numpy = namespace
    A, B = problem(rng, kappa=10.0)
    A[:, 5] = A[:, 4]  # rank n - 1
    b = B[:, 0]
    result = sketched_lstsq(to_array(A), to_array(b), sketch="gaussian", rng=1)
    assert result.info["preconditioner"] == "svd" and result.info["rank"] == 29
    x = to_numpy(result.x)
    assert x.shape == (30,) and result.converged and isinstance(result.residual_norm, float)
    np.testing.assert_allclose(x, np.linalg.pinv(A) @ b, rtol=1e-8, atol=1e-10)


def test_not_converged_warns(namespace, rng):
    to_array, _ = namespace
    A, B = problem(rng)
    with pytest.warns(ConvergenceWarning, match="sketched_lstsq did not converge after 1 LSQR"):
        result = sketched_lstsq(to_array(A), to_array(B), sketch="gaussian", rng=0, maxiter=1)
    assert not result.converged.any() and type(result.x) is type(to_array(B))


def test_bad_input_and_refusals(namespace, rng):
    to_array, _ = namespace
    A, B = problem(rng)
    dA, dB = to_array(A), to_array(B)
    with pytest.raises(TypeError, match="inputs live in different places"):
        sketched_lstsq(A, dB)
    with pytest.raises(ValueError, match="A contains NaN"):
        sketched_lstsq(to_array(np.full_like(A, np.nan)), dB)
    with pytest.raises(ValueError, match="b must have 600 rows"):
        sketched_lstsq(dA, to_array(B[:-1]))
    with pytest.raises(ValueError, match="A must have at least as many rows as columns"):
        sketched_lstsq(to_array(A.T), to_array(B[:30]))
    with pytest.raises(TypeError, match="A must be a dense array of the same library"):
        sketched_lstsq(lambda v: dA @ v, dB)


def test_inputs_unchanged(namespace, rng):
    to_array, to_numpy = namespace
    A, B = problem(rng)
    dA, dB = to_array(A), to_array(B)
    sketched_lstsq(dA, dB, sketch="rademacher", rng=0)
    assert np.array_equal(to_numpy(dA), A) and np.array_equal(to_numpy(dB), B)
