"""cg on data computed through its own array-API namespace (the device iteration).

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. Each answer is
judged by its residual, recomputed here in float64, and against the host
solver: the recurrences are the same, so with ``check_every=1`` every column
takes the same number of iterations.
"""

from __future__ import annotations

import numpy as np
import pytest

from linalg import ConvergenceWarning, LinAlgError
from linalg.solvers import cg

from conftest import RTOL, spd_matrix


def relative_residuals(A: np.ndarray, X: np.ndarray, B: np.ndarray) -> np.ndarray:
    A64, X64, B64 = (np.asarray(M, dtype=np.float64) for M in (A, X, B))
    R = B64 - A64 @ X64
    return np.linalg.norm(R, axis=0) / np.linalg.norm(B64, axis=0)


def test_equals_host_solver(namespace, rng, dtype):
    to_array, to_numpy = namespace
    A = spd_matrix(rng, 60, cond=1e3).astype(dtype)
    B = rng.standard_normal((60, 4)).astype(dtype)
    B[:, 2] *= 1e-3  # columns converge at different iterations
    rtol = 10 * RTOL[np.dtype(dtype)]
    result = cg(to_array(A), to_array(B), rtol=rtol)
    host = cg(A, B, rtol=rtol, engine="reference")
    X = to_numpy(result.x)
    assert type(result.x) is type(to_array(B)) and X.dtype == dtype
    assert result.converged.all()
    # The same recurrences: the same iteration counts where the arithmetic is NumPy's
    # (array_api_strict). Another BLAS rounds products differently, and here (more
    # iterations than n: convergence is shaped by rounding) that moves a column's
    # stop by a few iterations; within 10% of the host's count.
    same_arithmetic = type(to_array(B)).__module__.startswith("array_api_strict")
    slack = 0 if same_arithmetic else np.ceil(0.1 * host.n_iter)
    assert (np.abs(result.n_iter - host.n_iter) <= slack).all()
    assert (relative_residuals(A, X, B) <= 2 * rtol).all()
    assert np.abs(X - host.x).max() <= 1e3 * RTOL[np.dtype(dtype)] * np.abs(host.x).max()
    assert result.history.shape == (result.n_iter.max() + 1, 4)
    assert result.info["engine"] == "reference"


def test_vector_preconditioner_x0_and_check_every(namespace, rng):
    to_array, to_numpy = namespace
    A = spd_matrix(rng, 80, cond=1e4)
    b = rng.standard_normal(80)
    M = np.diag(1.0 / np.diag(A))
    x0 = 0.1 * rng.standard_normal(80)
    result = cg(to_array(A), to_array(b), x0=to_array(x0), M=to_array(M), rtol=1e-10, check_every=7)
    host = cg(A, b, x0=x0, M=M, rtol=1e-10, engine="reference")
    x = to_numpy(result.x)
    assert x.shape == (80,) and result.converged
    assert relative_residuals(A, x[:, None], b[:, None])[0] <= 1e-10
    assert result.n_iter % 7 == 0 and 0 <= result.n_iter - host.n_iter < 7


def test_callable_operator(namespace, rng):
    to_array, to_numpy = namespace
    A = spd_matrix(rng, 30)
    device_A = to_array(A)
    seen = []

    def matvec(v):
        seen.append(type(v))
        return device_A @ v

    b = rng.standard_normal(30)
    result = cg(matvec, to_array(b), rtol=1e-12)
    assert result.converged and set(seen) == {type(device_A)}
    assert relative_residuals(A, to_numpy(result.x)[:, None], b[:, None])[0] <= 1e-12


def test_not_converged_warns(namespace, rng):
    to_array, _ = namespace
    A = spd_matrix(rng, 50, cond=1e6)
    with pytest.warns(ConvergenceWarning, match="cg did not converge"):
        result = cg(to_array(A), to_array(rng.standard_normal(50)), rtol=1e-12, maxiter=5)
    assert not result.converged and result.n_iter == 5


def test_errors(namespace, rng):
    to_array, _ = namespace
    A = spd_matrix(rng, 10)
    with pytest.raises(LinAlgError, match="not positive definite"):
        cg(to_array(-A), to_array(np.ones(10)))
    with pytest.raises(TypeError, match="inputs live in different places"):
        cg(A, to_array(np.ones(10)))
    with pytest.raises(ValueError, match=r"b has 10 rows but A has shape \(9, 9\)"):
        cg(to_array(np.eye(9)), to_array(np.ones(10)))
    with pytest.raises(ValueError, match="b contains NaN"):
        cg(to_array(A), to_array(np.full(10, np.nan)))
    with pytest.raises(TypeError, match="engine 'numba' has no cg"):
        cg(to_array(A), to_array(np.ones(10)), engine="numba")


def test_ihvp_cg_on_device_vectors(namespace, rng):
    from linalg.curvature import ihvp_cg

    to_array, to_numpy = namespace
    H = spd_matrix(rng, 25, cond=50.0)
    H_device, seen = to_array(H), []

    def hvp(u):
        seen.append(type(u))
        return H_device @ u

    v = rng.standard_normal(25)
    result = ihvp_cg(hvp, to_array(v), damping=0.5, rtol=1e-12)
    assert result.converged and set(seen) == {type(H_device)}
    x = to_numpy(result.x)
    np.testing.assert_allclose((H + 0.5 * np.eye(25)) @ x, v, rtol=1e-10, atol=1e-10)
    with pytest.raises(LinAlgError, match="H \\+ damping I is not positive definite"):
        ihvp_cg(lambda u: -(H_device @ u), to_array(v), damping=0.0)


def test_jacobi_operator_preconditioner(namespace, rng):
    """The device Jacobi operator (an Operator whose products take device blocks)
    preconditions the device iteration as its host twin does the host's."""
    from linalg.solvers import jacobi

    to_array, to_numpy = namespace
    d = np.geomspace(1.0, 30.0, 60)
    A = d[:, None] * spd_matrix(rng, 60, cond=10.0) * d
    B = rng.standard_normal((60, 3))
    result = cg(to_array(A), to_array(B), M=jacobi(to_array(A)), rtol=1e-10)
    host = cg(A, B, M=jacobi(A), rtol=1e-10, engine="reference")
    plain = cg(A, B, rtol=1e-10, engine="reference")
    assert result.converged.all() and np.array_equal(result.n_iter, host.n_iter)
    assert (result.n_iter < plain.n_iter).all()
    X = to_numpy(result.x)
    assert (relative_residuals(A, X, B) <= 1e-10).all()
    np.testing.assert_allclose(X, np.linalg.solve(A, B), rtol=1e-6)
