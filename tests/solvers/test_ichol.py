"""Incomplete Cholesky IC(0) / MIC(0): factors against dense computations, engines
against each other, the preconditioning effect on CG, breakdown and bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import cg

import linalg.solvers._ichol as ichol_module
from linalg._core.results import LinAlgError
from linalg.solvers import IncompleteCholesky, ichol

from conftest import HAVE_NUMBA, poisson2d

# Kershaw's matrix: SPD, but IC(0) meets a negative pivot in its last row.
KERSHAW = np.array(
    [[3.0, -2.0, 0.0, 2.0], [-2.0, 3.0, -2.0, 0.0], [0.0, -2.0, 3.0, -2.0], [2.0, 0.0, -2.0, 3.0]]
)


def pattern_tol(A: sp.sparray) -> float:
    """Absolute tolerance on entries of L Lᵀ - A, keyed by A's dtype."""
    scale = 1e-12 if A.dtype == np.float64 else 50 * np.finfo(np.float32).eps
    return scale * float(np.abs(A.data).max())


def mask_of(A: sp.sparray) -> sp.csr_array:
    """Ones on the stored entries of A."""
    mask = sp.csr_array(A, dtype=np.float64, copy=True)
    mask.data[:] = 1.0
    return mask


def product(M: IncompleteCholesky) -> sp.csr_array:
    """L Lᵀ in float64."""
    L = M.L.astype(np.float64)
    return (L @ L.T).tocsr()


def assert_matches_on_pattern(M: IncompleteCholesky, target: sp.sparray, tol: float) -> None:
    difference = (product(M) - target.astype(np.float64)).multiply(mask_of(target))
    assert np.abs(difference.toarray()).max() <= tol


def dominant_matrix(rng: np.random.Generator, n: int, density: float) -> sp.csr_array:
    """A random sparse symmetric, strictly diagonally dominant matrix (no IC(0) breakdown)."""
    B = sp.random_array((n, n), density=density, rng=rng, format="csr")
    B.data = rng.uniform(-1.0, 1.0, B.nnz)
    B = sp.triu(B, k=1)
    B = (B + B.T).tocsr()
    return (B + sp.diags_array(np.abs(B).sum(axis=1) + 1.0)).tocsr()


def cg_iterations(A: sp.sparray, b: np.ndarray, M=None) -> int:
    count = [0]

    def callback(_):
        count[0] += 1

    _, info = cg(A, b, rtol=1e-8, maxiter=2000, M=M, callback=callback)
    assert info == 0
    return count[0]


# --- factors against dense computations ---------------------------------------------


@pytest.mark.parametrize("problem", ["poisson", "random"])
def test_ic0_reproduces_A_on_its_pattern(problem, engine, dtype, rng):
    A = poisson2d(9) if problem == "poisson" else dominant_matrix(rng, 60, 0.08)
    A = A.astype(dtype)
    M = ichol(A, engine=engine)
    assert M.L.dtype == dtype and M.dtype == dtype and M.engine == engine
    assert (M.shift, M.n_restarts, M.modified) == (0.0, 0, False)
    assert_matches_on_pattern(M, A, pattern_tol(A))
    expected_pattern = mask_of(sp.tril(A)).toarray()
    assert np.array_equal(mask_of(M.L).toarray(), expected_pattern)


def test_tridiagonal_ic0_is_the_exact_cholesky_factor(engine, rng):
    n = 30
    off = rng.uniform(-1.0, 1.0, n - 1)
    A = sp.diags_array([off, 2.5 + rng.uniform(size=n), off], offsets=[-1, 0, 1]).tocsr()
    M = ichol(A, engine=engine)
    exact = np.linalg.cholesky(A.toarray())
    np.testing.assert_allclose(M.L.toarray(), exact, rtol=1e-13, atol=1e-14)


def test_explicit_zeros_widen_the_pattern(engine):
    """Stored zeros are part of the pattern: a full pattern gives the exact factor."""
    rows, cols = np.indices(KERSHAW.shape).reshape(2, -1)
    A = sp.csr_array((KERSHAW[rows, cols], (rows, cols)), shape=KERSHAW.shape)
    assert A.nnz == 16
    M = ichol(A, engine=engine)
    assert M.n_restarts == 0 and M.L.nnz == 10
    np.testing.assert_allclose(M.L.toarray(), np.linalg.cholesky(KERSHAW), rtol=1e-13)


def test_mic0_preserves_row_sums(engine, dtype):
    A = poisson2d(10, dtype=dtype)
    M = ichol(A, modified=True, engine=engine)
    assert M.modified and M.n_restarts == 0
    ones = np.ones(A.shape[0])
    tol = pattern_tol(A) * 10
    np.testing.assert_allclose(product(M) @ ones, A.astype(np.float64) @ ones, atol=tol)
    off_diagonal = A - sp.diags_array(A.diagonal())
    mask = mask_of(off_diagonal)
    difference = (product(M) - off_diagonal).multiply(mask)
    assert np.abs(difference.toarray()).max() <= tol
    # The dropped fill made the pivots smaller than IC(0)'s.
    assert np.all(M.L.diagonal() <= ichol(A, engine=engine).L.diagonal())


def test_mic0_equals_ic0_when_nothing_is_dropped(engine):
    A = sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(8, 8))
    plain, modified = ichol(A, engine=engine), ichol(A, modified=True, engine=engine)
    np.testing.assert_allclose(plain.L.toarray(), modified.L.toarray(), rtol=1e-14)


# --- solves -------------------------------------------------------------------------


def test_solve_against_dense(engine, dtype, rng):
    A = dominant_matrix(rng, 40, 0.1).astype(dtype)
    M = ichol(A, engine=engine)
    L = M.L.toarray().astype(np.float64)
    R = rng.standard_normal((40, 3)).astype(dtype)
    Z = M.solve(R)
    assert Z.shape == R.shape and Z.dtype == dtype
    expected = np.linalg.solve(L @ L.T, R.astype(np.float64))
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(Z, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def test_many_right_hand_sides_equal_single_solves(engine, rng):
    A = poisson2d(8)
    M = ichol(A, engine=engine)
    R = rng.standard_normal((64, 5))
    Z = M.solve(R)
    for j in range(5):
        np.testing.assert_allclose(Z[:, j], M.solve(R[:, j]), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(M.matmat(R), Z, rtol=1e-14)
    np.testing.assert_allclose(M.rmatmat(R), Z, rtol=1e-14)
    np.testing.assert_allclose(M.matvec(R[:, 0]), Z[:, 0], rtol=1e-14)
    np.testing.assert_allclose(M.rmatvec(R[:, 0]), Z[:, 0], rtol=1e-14)
    op = M.as_linear_operator()
    np.testing.assert_allclose(op @ R, Z, rtol=1e-14)
    np.testing.assert_allclose(op.rmatvec(R[:, 1]), Z[:, 1], rtol=1e-14)


def test_solve_takes_non_contiguous_read_only_and_wider_input(engine, rng):
    M = ichol(poisson2d(6, dtype=np.float32), engine=engine)
    R = rng.standard_normal((36, 6))
    R.flags.writeable = False
    Z = M.solve(R[:, ::2])
    assert Z.dtype == np.float64  # float64 right-hand sides are not rounded to float32
    np.testing.assert_allclose(Z, M.solve(np.ascontiguousarray(R[:, ::2])), rtol=1e-15)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize("modified", [False, True])
def test_numba_agrees_with_reference(dtype, modified, rng):
    A = (poisson2d(12) + 0.3 * dominant_matrix(rng, 144, 0.02)).astype(dtype)
    reference = ichol(A, modified=modified, engine="reference")
    fast = ichol(A, modified=modified, engine="numba")
    assert (fast.shift, fast.n_restarts) == (reference.shift, reference.n_restarts)
    assert np.array_equal(fast.L.indptr, reference.L.indptr)
    assert np.array_equal(fast.L.indices, reference.L.indices)
    rtol = 1e-13 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(fast.L.data, reference.L.data, rtol=rtol)
    R = rng.standard_normal((144, 4)).astype(dtype)
    expected = reference.solve(R)
    np.testing.assert_allclose(fast.solve(R), expected, rtol=rtol, atol=rtol * 10)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
def test_numba_agrees_with_reference_after_breakdown():
    reference = ichol(KERSHAW, engine="reference")
    fast = ichol(KERSHAW, engine="numba")
    assert (fast.shift, fast.n_restarts) == (reference.shift, reference.n_restarts)
    np.testing.assert_allclose(fast.L.toarray(), reference.L.toarray(), rtol=1e-14)


# --- preconditioning effect ---------------------------------------------------------


def test_preconditioned_cg_needs_fewer_iterations(engine, rng):
    """On a 64 x 64 Poisson grid: about 200 iterations, 66 with IC(0), 35 with MIC(0)."""
    A = poisson2d(64)
    b = rng.standard_normal(A.shape[0])
    plain = cg_iterations(A, b)
    ic = cg_iterations(A, b, ichol(A, engine=engine).as_linear_operator())
    mic = cg_iterations(A, b, ichol(A, modified=True, engine=engine).as_linear_operator())
    assert ic <= plain / 2.5
    assert mic <= 0.7 * ic


def test_mic0_iterations_grow_more_slowly_than_ic0(engine, rng):
    """Halving h: IC(0) iterations grow like 1/h, MIC(0) iterations like 1/sqrt(h)."""
    counts = {}
    for n in (32, 64):
        A = poisson2d(n)
        b = rng.standard_normal(A.shape[0])
        for modified in (False, True):
            M = ichol(A, modified=modified, engine=engine).as_linear_operator()
            counts[n, modified] = cg_iterations(A, b, M)
    ic_growth = counts[64, False] / counts[32, False]
    mic_growth = counts[64, True] / counts[32, True]
    assert ic_growth > 1.6
    assert mic_growth < 1.6


# --- breakdown and shifts -----------------------------------------------------------


def test_breakdown_is_cured_by_a_shift(engine):
    assert np.linalg.eigvalsh(KERSHAW).min() > 0.1  # SPD
    M = ichol(sp.csr_array(KERSHAW), engine=engine)
    assert M.n_restarts >= 1
    assert M.shift == pytest.approx(1e-3 * 2 ** (M.n_restarts - 1))
    shifted = sp.csr_array(KERSHAW + M.shift * np.diag(np.diag(KERSHAW)))
    assert_matches_on_pattern(M, shifted, 1e-12)
    assert np.array_equal(mask_of(M.L).toarray(), np.tril(KERSHAW != 0))
    # One step smaller and it breaks down again: the shift reported is the first that worked.
    assert_breaks_down(KERSHAW, shift=M.shift / 2, engine=engine)


def assert_breaks_down(A, *, shift: float, engine: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ichol_module, "_MAX_TRIES", 1)
        with pytest.raises(LinAlgError, match="broke down at row 3"):
            ichol(A, shift=shift, engine=engine)


def test_given_shift_is_used_when_it_suffices(engine):
    M = ichol(KERSHAW, shift=1.0, engine=engine)
    assert (M.shift, M.n_restarts) == (1.0, 0)
    shifted = sp.csr_array(KERSHAW + np.diag(np.diag(KERSHAW)))
    assert_matches_on_pattern(M, shifted, 1e-12)


def test_shift_on_a_good_matrix_factors_the_shifted_matrix(engine):
    A = poisson2d(5)
    M = ichol(A, shift=0.5, engine=engine)
    assert (M.shift, M.n_restarts) == (0.5, 0)
    assert_matches_on_pattern(M, A + 0.5 * sp.diags_array(A.diagonal()), 1e-12)


def test_breakdown_on_every_try_raises(engine):
    assert_breaks_down(KERSHAW, shift=0.0, engine=engine)


# --- input types and the bad-input contract -----------------------------------------


@pytest.mark.parametrize(
    "convert",
    [
        np.asarray,
        sp.csr_array,
        sp.csc_array,
        sp.coo_array,
        sp.lil_array,
        sp.dia_array,
        sp.csr_matrix,
        lambda A: sp.csr_array(A.astype(np.int32)),
    ],
    ids=["dense", "csr", "csc", "coo", "lil", "dia", "csr_matrix", "csr-int32"],
)
def test_input_formats_give_the_same_factor(convert):
    A = (4 * np.eye(6) - np.eye(6, k=1) - np.eye(6, k=-1)).astype(np.int64)
    M = ichol(convert(A), engine="reference")
    assert M.dtype == np.float64 and isinstance(M.L, sp.csr_array)
    np.testing.assert_allclose(M.L.toarray(), np.linalg.cholesky(A), rtol=1e-14)


def messy_inputs(A: sp.csr_array) -> list:
    """A as read-only COO and CSR with shuffled indices and a duplicate entry."""
    coo = A.tocoo()
    order = np.random.default_rng(1).permutation(coo.nnz)
    rows, cols, data = coo.row[order], coo.col[order], coo.data[order].copy()
    first = np.flatnonzero((rows == 0) & (cols == 0))[0]
    data[first] -= 1.0  # a_00 stored as two entries, a_00 - 1 and 1
    rows, cols, data = np.append(rows, 0), np.append(cols, 0), np.append(data, 1.0)
    messy_coo = sp.coo_array((data, (rows, cols)), shape=A.shape)
    by_row = np.argsort(rows, kind="stable")
    indptr = np.searchsorted(rows[by_row], np.arange(A.shape[0] + 1))
    messy_csr = sp.csr_array((data[by_row], cols[by_row], indptr), shape=A.shape)
    for array in (data, rows, cols, messy_csr.data, messy_csr.indices, messy_csr.indptr):
        array.flags.writeable = False
    return [messy_coo, messy_csr]


def test_inputs_are_not_modified_and_read_only_inputs_work(engine):
    A = poisson2d(5)
    expected = ichol(A, engine=engine).L.toarray()
    for matrix in messy_inputs(A):
        assert not matrix.has_canonical_format
        before = [array.copy() for array in _arrays_of(matrix)]
        np.testing.assert_allclose(ichol(matrix, engine=engine).L.toarray(), expected)
        for array, old in zip(_arrays_of(matrix), before, strict=True):
            assert np.array_equal(array, old)
    padded = np.zeros((50, 50))
    padded[::2, ::2] = A.toarray()
    view = padded[::2, ::2]  # non-contiguous
    view.flags.writeable = False
    np.testing.assert_allclose(ichol(view, engine=engine).L.toarray(), expected)


def _arrays_of(matrix) -> tuple[np.ndarray, ...]:
    if matrix.format == "coo":
        return (matrix.data, matrix.row, matrix.col)
    return (matrix.data, matrix.indices, matrix.indptr)


@pytest.mark.parametrize(
    ("A", "error", "match"),
    [
        (np.ones((3, 4)), ValueError, "A must be square"),
        (sp.csr_array(np.ones((3, 4))), ValueError, "A must be square"),
        (np.ones(3), ValueError, "A must be 2-D"),
        (np.ones((0, 0)), ValueError, "A is empty"),
        (sp.csr_array((0, 0)), ValueError, "A is empty"),
        (np.diag([1.0, np.nan]), ValueError, "A contains NaN"),
        (sp.csr_array(np.diag([1.0, np.inf])), ValueError, "A contains Inf"),
        (np.array([[2.0, 1.0], [0.5, 2.0]]), ValueError, "A must be symmetric"),
        (sp.csr_array(np.eye(2) + np.eye(2, k=1)), ValueError, "A must be symmetric"),
        (np.eye(2) + 0j, TypeError, "A is complex"),
        (sp.csr_array(np.eye(2) + 0j), TypeError, "A is complex"),
        (np.diag([1.0, 0.0]), ValueError, r"A must have a positive diagonal; A\[1, 1\]"),
        (np.diag([1.0, -2.0, 1.0]), ValueError, r"positive diagonal; A\[1, 1\]"),
        (np.array([["a"]], dtype=object), TypeError, "A must be a numeric array"),
    ],
)
def test_bad_matrix(A, error, match):
    with pytest.raises(error, match=match):
        ichol(A)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"shift": -0.1}, ValueError, "shift must be >= 0"),
        ({"shift": np.nan}, ValueError, "shift must be finite"),
        ({"shift": "1"}, TypeError, "shift must be a real number"),
        ({"modified": 1}, TypeError, "modified must be True or False"),
        ({"modified": None}, TypeError, "modified must be True or False"),
        ({"engine": "fast"}, ValueError, "engine must be"),
        ({"engine": "cupy"}, TypeError, "engine 'cupy' has no implementation"),
    ],
)
def test_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        ichol(poisson2d(3), **kwargs)


def test_symmetry_is_judged_relative_to_the_scale_of_A():
    A = 1e6 * poisson2d(4).toarray()
    A[0, 1] *= 1 + 1e-14  # rounding-level asymmetry is accepted
    assert ichol(A).n_restarts == 0


def test_bad_right_hand_side(engine):
    M = ichol(poisson2d(3), engine=engine)
    with pytest.raises(ValueError, match="R must have 9 rows"):
        M.solve(np.ones(8))
    with pytest.raises(ValueError, match="R contains NaN"):
        M.solve(np.full(9, np.nan))
    with pytest.raises(ValueError, match="R must be 1-D or 2-D"):
        M.solve(np.ones((9, 1, 1)))


def test_factor_given_directly_is_validated():
    with pytest.raises(ValueError, match="L must be lower triangular"):
        IncompleteCholesky(sp.csr_array(np.ones((2, 2))))
    with pytest.raises(ValueError, match=r"L must have a positive diagonal; L\[1, 1\]"):
        IncompleteCholesky(sp.csr_array(np.array([[1.0, 0.0], [1.0, 0.0]])))
    with pytest.raises(TypeError, match=r"L must be a scipy\.sparse"):
        IncompleteCholesky(np.eye(2))
    M = IncompleteCholesky(sp.coo_array(np.array([[2.0, 0.0], [1.0, 1.0]])), engine="reference")
    np.testing.assert_allclose(M.solve(np.array([4.0, 3.0])), [0.5, 1.0])


def test_repr(engine):
    M = ichol(poisson2d(3), modified=True, engine=engine)
    assert repr(M) == (
        f"<9x9 IncompleteCholesky MIC(0) with nnz(L)=21, shift=0, n_restarts=0, "
        f"engine='{engine}', dtype=float64>"
    )


def test_importing_ichol_does_not_import_numba():
    code = "import sys, linalg.solvers._ichol; assert 'numba' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- properties ---------------------------------------------------------------------


@settings(max_examples=25)
@given(
    n=st.integers(1, 25),
    density=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**32 - 1),
    modified=st.booleans(),
)
def test_factor_properties_on_dominant_matrices(n, density, seed, modified):
    A = dominant_matrix(np.random.default_rng(seed), n, density)
    M = ichol(A, modified=modified, engine="reference")
    assert M.n_restarts == 0
    P = product(M)
    off_diagonal = A - sp.diags_array(A.diagonal())
    difference = (P - off_diagonal).multiply(mask_of(off_diagonal)) if off_diagonal.nnz else None
    if difference is not None:
        assert np.abs(difference.toarray()).max() <= 1e-12 * np.abs(A.data).max()
    ones = np.ones(n)
    if modified:
        np.testing.assert_allclose(P @ ones, A @ ones, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_allclose(P.diagonal(), A.diagonal(), rtol=1e-12)
