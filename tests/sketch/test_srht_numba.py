"""The fused Numba kernels of the sketches: SRHT (Hadamard) and the hashed sparse sketches.

Each is checked against the NumPy reference path (and against ``S.todense()``),
on shapes that exercise the kernels' edges: ``n`` not a power of two (zero
padding), column blocks ``S[:, a:b]``, one column, views, read-only and
float32 inputs, and the serial and threaded builds.
"""

from __future__ import annotations

import numpy as np
import pytest

from linalg.sketch import countsketch, sparse_sign
from linalg.sketch._srht import srht

from conftest import HAVE_NUMBA

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="Numba is not installed")

# (n, d): n not a power of two; d from the smallest taking the fast path to near N.
SHAPES = [(1000, 40), (1000, 300), (777, 500), (5000, 64), (3000, 3000), (40_000, 100)]


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def _pair(d: int, n: int, **options):
    numba = srht(d, n, transform="hadamard", rng=3, engine="numba", **options)
    reference = srht(d, n, transform="hadamard", rng=3, engine="reference", **options)
    return numba, reference


@pytest.mark.parametrize(("n", "d"), SHAPES)
@pytest.mark.parametrize("k", [1, 6])
def test_hadamard_kernel_equals_reference(n, d, k):
    S, R = _pair(d, n)
    assert S._fast_pays()
    A = np.random.default_rng(n + d).standard_normal((n, k))
    A0 = A.copy()
    ours = S @ A
    assert _relative(ours, R @ A) < 1e-12
    assert _relative(ours, S.todense() @ A) < 1e-12
    np.testing.assert_array_equal(A, A0)


@pytest.mark.parametrize(("a", "b"), [(0, 3000), (1234, 5000), (2048, 4096), (100, 4900)])
def test_hadamard_kernel_on_column_blocks(a, b):
    """A block S[:, a:b] is rows a..b-1 of the padded matrix: other rows are zero."""
    S, R = _pair(200, 5000)
    A = np.random.default_rng(1).standard_normal((5000, 4))
    assert S[:, a:b]._fast_pays()
    ours = S[:, a:b] @ A[a:b]
    assert _relative(ours, R[:, a:b] @ A[a:b]) < 1e-12
    assert _relative(ours, S.todense()[:, a:b] @ A[a:b]) < 1e-12


def test_hadamard_kernel_views_and_read_only():
    S, R = _pair(300, 3000)
    big = np.random.default_rng(2).standard_normal((6000, 8))
    big.flags.writeable = False
    before = big.copy()
    for A in (big[::2], big[:3000, 1:7], np.asfortranarray(big[:3000]), big[3000:]):
        assert _relative(S @ A, R @ A) < 1e-12
    np.testing.assert_array_equal(big, before)


def test_hadamard_kernel_reads_no_row_past_a():
    """The padding rows n..N-1 are zeros written by the kernel, never rows read past A."""
    S, R = _pair(400, 3000)
    big = np.full((3100, 5), np.nan)
    big[:3000] = np.random.default_rng(3).standard_normal((3000, 5))
    ours = S @ big[:3000]  # C-contiguous view: the kernel sees the NaN rows' memory after it
    assert np.isfinite(ours).all()
    assert _relative(ours, R @ big[:3000]) < 1e-12


def test_hadamard_kernel_float32():
    S, R = _pair(300, 3000, dtype=np.float32)
    A = np.random.default_rng(4).standard_normal((3000, 5))
    ours = S @ A.astype(np.float32)
    assert ours.dtype == np.float32
    exact = srht(300, 3000, transform="hadamard", rng=3).todense() @ A
    assert _relative(ours, exact) < 1e-5
    assert _relative(ours, R @ A.astype(np.float32)) < 1e-5


@pytest.mark.parametrize(("P", "L", "parts"), [(1, 7, 3), (64, 3, 5), (256, 1, 2), (1024, 2, 1)])
def test_hadamard_kernel_splits_and_builds(P, L, parts):
    """Any split N = P Q (d below and above P), chunk length and part count: the same
    product; the serial and threaded builds agree bit for bit."""
    from linalg.sketch import _srht_numba

    n, d, N = 1500, 100, 2048
    S = srht(d, n, transform="hadamard", rng=9)
    A = np.random.default_rng(5).standard_normal((n, 3))
    Q = N // P
    high, low = np.divmod(S.rows, Q)
    weights = S._row_weights()
    arguments = (A, S._signs(0, n), 0, Q, P, L, high, low, weights, parts)
    serial = _srht_numba._apply.serial(*arguments)
    np.testing.assert_array_equal(serial, _srht_numba._apply.threaded(*arguments))
    assert _relative(serial, S.todense() @ A) < 1e-12


SPARSE = {
    "countsketch": countsketch,
    "sparse_sign": lambda d, n, **kw: sparse_sign(d, n, nnz_per_col=8, **kw),
}


@pytest.mark.parametrize("kind", sorted(SPARSE))
@pytest.mark.parametrize(("a", "b"), [(0, 70_000), (1023, 68_001), (5, 2000)])
def test_sparse_fused_kernel_equals_reference(kind, a, b):
    """Hashes drawn inside the product (chunks of columns, threaded parts) give the
    reference's S; the product equals the reference's, F-ordered and float32 too."""
    S = SPARSE[kind](60, 70_000, rng=6, engine="numba")[:, a:b]
    R = SPARSE[kind](60, 70_000, rng=6, engine="reference")[:, a:b]
    A = np.random.default_rng(7).standard_normal((b - a, 3))
    expected = R @ A
    assert _relative(S @ A, expected) < 1e-12
    assert _relative(S @ np.asfortranarray(A), expected) < 1e-12
    single = SPARSE[kind](60, 70_000, rng=6, engine="numba", dtype=np.float32)[:, a:b]
    ours = single @ A.astype(np.float32)
    assert ours.dtype == np.float32 and _relative(ours, expected) < 1e-5
    np.testing.assert_array_equal(S.todense(), R.todense())
