"""Rank-one Cholesky kernels (update, downdate, delete-first, append) against
numpy.linalg.cholesky of the modified matrix, and the engines against each other."""

from __future__ import annotations

import numpy as np
import pytest

import linalg.curvature._sliding  # noqa: F401  (registers the kernels)
from linalg._core.engines import select
from linalg._core.namespace import NUMPY

from conftest import spd_matrix

SIZES = [1, 2, 3, 17, 60]
RTOL = 1e-12


def kernels(engine: str):
    return select("curvature.cholesky_update", engine=engine, kind=NUMPY, dtype=np.float64).load()


def upper(C: np.ndarray) -> np.ndarray:
    """The upper Cholesky factor R, C = Rᵀ R, C-contiguous."""
    return np.ascontiguousarray(np.linalg.cholesky(C).T)


def assert_factor(R: np.ndarray, C: np.ndarray) -> None:
    """R is the (unique, positive-diagonal) upper factor of C, to RTOL relative."""
    expected = upper(C)
    assert np.array_equal(np.tril(R, -1), np.zeros_like(R))
    assert np.abs(R - expected).max() <= RTOL * np.abs(expected).max()


def problem(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """An SPD matrix with a spread spectrum and scale, and a random vector."""
    return 3.0 * spd_matrix(rng, n, cond=1e3), rng.standard_normal(n)


@pytest.mark.parametrize("n", SIZES)
def test_update(n, engine, rng):
    C, x = problem(rng, n)
    R = upper(C)
    x_before = x.copy()
    kernels(engine).update(R, x)
    assert_factor(R, C + np.outer(x, x))
    assert np.array_equal(x, x_before)


@pytest.mark.parametrize("n", SIZES)
def test_downdate(n, engine, rng):
    C, x = problem(rng, n)
    R = upper(C)
    # scale x so that ‖R⁻ᵀ x‖ = 0.9: C - x xᵀ is positive definite, not far from singular
    x *= 0.9 / np.linalg.norm(np.linalg.solve(R.T, x))
    x_before = x.copy()
    assert kernels(engine).downdate(R, x) is True
    assert_factor(R, C - np.outer(x, x))
    assert np.array_equal(x, x_before)


@pytest.mark.parametrize("n", SIZES)
def test_downdate_refuses_an_indefinite_result_and_leaves_R(n, engine, rng):
    C, x = problem(rng, n)
    R = upper(C)
    x *= 1.1 / np.linalg.norm(np.linalg.solve(R.T, x))  # C - x xᵀ has a negative eigenvalue
    R_before = R.copy()
    assert kernels(engine).downdate(R, x) is False
    assert np.array_equal(R, R_before)


@pytest.mark.parametrize("n", SIZES[1:])
def test_delete_first(n, engine, rng):
    C, _ = problem(rng, n)
    R = upper(C)
    kernels(engine).delete_first(R)
    assert_factor(R[:-1, :-1], C[1:, 1:])
    assert not R[-1].any() and not R[:, -1].any()


def test_delete_first_of_1x1_leaves_zero(engine):
    R = np.array([[2.0]])
    kernels(engine).delete_first(R)
    assert R[0, 0] == 0.0


@pytest.mark.parametrize("n", SIZES)
def test_append(n, engine, rng):
    C, _ = problem(rng, n)
    R = np.full((n, n), np.nan)  # garbage outside the leading block must be overwritten
    R[: n - 1, : n - 1] = upper(C[:-1, :-1])
    column = C[:, -1].copy()
    d2 = kernels(engine).append(R, column)
    assert_factor(R, C)
    assert d2 == pytest.approx(upper(C)[-1, -1] ** 2, rel=1e-10)
    assert np.array_equal(column, C[:, -1])


@pytest.mark.parametrize("n", [1, 2, 17])
def test_append_reports_a_breakdown(n, engine, rng):
    C, _ = problem(rng, n)
    R = np.zeros((n, n))
    R[: n - 1, : n - 1] = upper(C[:-1, :-1])
    column = C[:, -1].copy()
    column[-1] = column[:-1] @ np.linalg.solve(C[:-1, :-1], column[:-1]) - 1.0  # Schur = -1
    d2 = kernels(engine).append(R, column)
    assert d2 == pytest.approx(-1.0, abs=1e-8 * np.abs(C).max())
    assert R[-1, -1] == 0.0


def test_delete_then_append_slides_a_window(engine, rng):
    """The sliding-window use: drop the oldest row/column, append a new one, repeatedly."""
    n, steps = 12, 30
    B = rng.standard_normal((n + steps, 40))
    full = B @ B.T + 0.5 * np.eye(n + steps)
    k = kernels(engine)
    R = upper(full[:n, :n])
    for start in range(1, steps + 1):
        k.delete_first(R)
        k.append(R, full[start : start + n, start + n - 1].copy())
        assert_factor(R, full[start : start + n, start : start + n])


@pytest.mark.parametrize("operation", ["update", "downdate", "delete_first", "append"])
def test_numba_agrees_with_reference(operation, rng):
    pytest.importorskip("numba")
    n = 40
    C, x = problem(rng, n)
    R0 = upper(C)
    x *= 0.5 / np.linalg.norm(np.linalg.solve(R0.T, x))
    results = []
    for engine in ("reference", "numba"):
        R = R0.copy()
        k = kernels(engine)
        if operation == "append":
            R[:, -1] = R[-1] = 0.0
            k.append(R, C[:, -1].copy())
        elif operation == "delete_first":
            k.delete_first(R)
        else:
            getattr(k, operation)(R, x.copy())
        results.append(R)
    np.testing.assert_allclose(results[1], results[0], rtol=0, atol=1e-13 * np.abs(R0).max())


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("n", SIZES)
def test_solve(n, k, engine, rng):
    C, _ = problem(rng, n)
    R = upper(C)
    B = rng.standard_normal((n, k))
    B_before, R_before = B.copy(), R.copy()
    X = kernels(engine).solve(R, B)
    np.testing.assert_allclose(C @ X, B, rtol=1e-9, atol=1e-9 * np.abs(B).max())
    np.testing.assert_allclose(X, np.linalg.solve(C, B), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(B, B_before)
    np.testing.assert_array_equal(R, R_before)
