"""IC(0) / MIC(0) preconditioners whose solves run on device data (level-scheduled
sweeps through the data's array-API namespace).

array_api_strict and torch CPU (routed down the device path) stand in for a device
library in the default run; the same cases run on CuPy arrays and torch CUDA
tensors under ``-m gpu``. Every device solve is judged against the host solve of
the same factor and against a dense solve with ``L Lᵀ``; the level schedule
itself against a row-by-row computation of the levels.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from linalg.solvers import cg, ichol
from linalg.solvers._ichol_device import _levels_of

from conftest import RTOL, poisson2d


def random_spd(rng: np.random.Generator, n: int, density: float) -> sp.csr_array:
    """Sparse, symmetric, strictly diagonally dominant: irregular levels, no breakdown."""
    B = sp.random_array((n, n), density=density, rng=rng, format="csr")
    B = sp.triu(B, k=1)
    B = (B + B.T).tocsr()
    return (B + sp.diags_array(np.abs(B).sum(axis=1) + 1.0)).tocsr()


PROBLEMS = {
    "poisson": lambda rng: poisson2d(9),
    "random": lambda rng: random_spd(rng, 70, 0.08),
    "tridiagonal": lambda rng: sp.diags_array(
        [-1.0, 2.5, -1.0], offsets=[-1, 0, 1], shape=(30, 30), format="csr"
    ),
    "diagonal": lambda rng: sp.diags_array(rng.uniform(1.0, 4.0, 25), format="csr"),
}


def dense_solve(M, R: np.ndarray) -> np.ndarray:
    """``(L Lᵀ)⁻¹ R`` by a dense solve in float64."""
    L = M.L.toarray().astype(np.float64)
    return np.linalg.solve(L @ L.T, R.astype(np.float64))


@pytest.mark.parametrize("modified", [False, True], ids=["ic0", "mic0"])
@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_device_solves_equal_the_host_and_a_dense_solve(namespace, problem, modified, dtype, rng):
    to_array, to_numpy = namespace
    A = PROBLEMS[problem](rng).astype(dtype)
    R = rng.standard_normal((A.shape[0], 3)).astype(dtype)
    host = ichol(A, modified=modified)
    device = ichol(A, modified=modified, like=to_array(R))
    R_device = to_array(R)
    Z = device.solve(R_device)
    assert type(Z) is type(R_device)
    z = device.matvec(R_device[:, 0])
    assert tuple(z.shape) == (A.shape[0],)
    Z, z = to_numpy(Z), to_numpy(z)
    assert Z.dtype == dtype and z.dtype == dtype
    np.testing.assert_allclose(
        Z, host.solve(R), rtol=RTOL[dtype], atol=RTOL[dtype] * np.abs(Z).max()
    )
    np.testing.assert_allclose(z, Z[:, 0], rtol=RTOL[dtype])
    exact = dense_solve(host, R)
    assert np.abs(Z - exact).max() <= RTOL[dtype] * np.abs(exact).max()
    np.testing.assert_array_equal(to_numpy(R_device), R)  # the input is untouched


def test_wider_right_hand_sides_give_the_wider_dtype(namespace, rng):
    to_array, to_numpy = namespace
    A = poisson2d(6, dtype=np.float32)
    R = rng.standard_normal((36, 2))
    M = ichol(A, like=to_array(R))
    Z = to_numpy(M.solve(to_array(R)))
    assert Z.dtype == np.float64
    np.testing.assert_allclose(Z, dense_solve(M, R), rtol=1e-10)


def test_ichol_of_device_data_factors_on_the_host_and_preconditions_cg(namespace, rng):
    """A device A: the same factor as the host's, and device CG with it needs far
    fewer iterations; the answer is judged by its residual, recomputed on the host."""
    to_array, to_numpy = namespace
    A = poisson2d(12)
    b = rng.standard_normal(A.shape[0])
    A_device = to_array(A.toarray())
    M = ichol(A_device, modified=True)
    host = ichol(A, modified=True)
    assert (M.L != host.L).nnz == 0 and M.shift == host.shift
    plain = cg(A_device, to_array(b), rtol=1e-10)
    preconditioned = cg(A_device, to_array(b), M=M, rtol=1e-10)
    assert preconditioned.converged
    assert preconditioned.n_iter < plain.n_iter / 2
    x = to_numpy(preconditioned.x)
    assert np.linalg.norm(b - A @ x) <= 1e-10 * np.linalg.norm(b) * 1.01
    host_run = cg(A, b, M=host, rtol=1e-10)
    assert abs(preconditioned.n_iter - host_run.n_iter) <= 1


def test_data_from_elsewhere_is_refused(namespace, rng):
    to_array, _ = namespace
    A = poisson2d(4)
    R = rng.standard_normal(16)
    device = ichol(A, like=to_array(R))
    with pytest.raises(TypeError, match="convert R to the array type of the factor"):
        device.solve(R)
    with pytest.raises(TypeError, match="convert R to the array type of the factor"):
        ichol(A).solve(to_array(R))
    with pytest.raises(TypeError, match="convert like to the array type of A"):
        ichol(to_array(A.toarray()), like=R)
    with pytest.raises(TypeError, match=r"as_linear_operator needs host solves.*on the device"):
        device.as_linear_operator()
    with pytest.raises(ValueError, match=r"R must have 16 rows"):
        device.solve(to_array(np.ones(15)))
    with pytest.raises(ValueError, match="R contains NaN"):
        device.solve(to_array(np.full(16, np.nan)))
    with pytest.raises(ValueError, match="A must have a positive diagonal"):
        ichol(to_array(-np.eye(3)))
    assert "solves on" in repr(device) and "solves on" not in repr(ichol(A))


def levels_row_by_row(T: sp.csr_array, forward: bool) -> np.ndarray:
    """Each row's level: one more than the highest level among the rows it reads."""
    n = T.shape[0]
    level = np.zeros(n, dtype=np.int64)
    for i in range(n) if forward else range(n - 1, -1, -1):
        read = T.indices[T.indptr[i] : T.indptr[i + 1]]
        level[i] = level[read].max() + 1 if read.size else 0
    return level


@pytest.mark.parametrize("forward", [True, False], ids=["lower", "upper"])
@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_levels_are_the_longest_paths(problem, forward, rng):
    A = PROBLEMS[problem](rng)
    T = sp.csr_array(sp.tril(A, k=-1) if forward else sp.triu(A, k=1))
    levels = _levels_of(T.indptr.astype(np.int64), T.indices.astype(np.int64), T.shape[0])
    expected = levels_row_by_row(T, forward)
    assert len(levels) == expected.max() + 1
    for number, rows in enumerate(levels):
        np.testing.assert_array_equal(rows, np.flatnonzero(expected == number))


def test_a_grid_has_two_p_minus_one_levels():
    T = sp.csr_array(sp.tril(poisson2d(7), k=-1))
    levels = _levels_of(T.indptr.astype(np.int64), T.indices.astype(np.int64), T.shape[0])
    assert len(levels) == 2 * 7 - 1
