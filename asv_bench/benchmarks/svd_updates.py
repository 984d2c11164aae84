"""Truncated-SVD updates against recomputation (issue 6, "Updates").

The matrix: 40,000 x 8,000 sparse, density 5e-4 (160,000 non-zeros), half
of them sparse N(0, 1) noise at random positions and half a planted rank-8
part made of sparse factors: component ``i`` is ``σᵢ aᵢ bᵢᵀ`` with ``aᵢ``
non-zero on 250 random rows and ``bᵢ`` on 40 random columns (unit-norm
Gaussian entries), ``σᵢ = 60, 55, ..., 25``. So the planted part is exactly
rank 8 and exactly sparse. The first 20,000 rows give the starting rank-64
SVD (``scipy.sparse.linalg.svds``, PROPACK, not timed); the other 20,000
rows arrive in 100 batches of 200, and each ``impl`` follows them:

- ``"linalg"``: :class:`TruncatedSVD` with ``method="sparse"`` (what
  ``"auto"`` picks for sparse batches);
- ``"zha_simon"``: the same class with the dense Zha–Simon method;
- ``"scipy"``: ``svds(A[:rows], k=64, solver="propack")`` recomputed after
  every batch. 100 recomputations take too long for a benchmark, so only
  the recomputations after ``SCIPY_BATCHES`` (5) evenly spaced batches
  (the 1st, 25th, 50th, 75th and 100th) are run: ``time_updates`` is the
  time of those five, and ``track_total_seconds`` scales it by ``100 / 5``
  to estimate the total (the cost of svds grows with the rows, and the five
  spread over the range, so the estimate is about the mean). Compare
  impls by ``track_total_seconds``; for ``"linalg"`` and ``"zha_simon"`` it
  is the measured time of all 100 batches.

``track_sigma_error`` is the largest relative error of the 64 singular
values reached after the last batch against ``svds`` of the final matrix
(for ``"scipy"`` it is 0 by construction: the recomputation is the
reference).
"""

import itertools
import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

M, N, K, RANK = 40_000, 8_000, 64, 8
START, BATCHES = 20_000, 100
SCIPY_BATCHES = 5


def planted_sparse(m, n, *, nnz_noise, rank, rows_per_factor, cols_per_factor, seed):
    """Sparse noise plus a rank-``rank`` part with sparse factors (CSR)."""
    rng = np.random.default_rng(seed)
    noise = sp.coo_array(
        (
            rng.standard_normal(nnz_noise),
            (rng.integers(0, m, nnz_noise), rng.integers(0, n, nnz_noise)),
        ),
        shape=(m, n),
    )
    sigmas = np.linspace(60.0, 25.0, rank)
    parts = [noise.tocsr()]
    for sigma in sigmas:
        a = sp.csr_array(
            (
                rng.standard_normal(rows_per_factor),
                (rng.choice(m, rows_per_factor, replace=False), np.zeros(rows_per_factor, int)),
            ),
            shape=(m, 1),
        )
        b = sp.csr_array(
            (
                rng.standard_normal(cols_per_factor),
                (rng.choice(n, cols_per_factor, replace=False), np.zeros(cols_per_factor, int)),
            ),
            shape=(n, 1),
        )
        a = a / sp.linalg.norm(a)
        b = b / sp.linalg.norm(b)
        parts.append(sigma * (a @ b.T))
    return sum(parts[1:], parts[0]).tocsr()


def problem():
    """The benchmark matrix, its starting rank-K SVD and the row batches."""
    A = planted_sparse(
        M, N, nnz_noise=80_000, rank=RANK, rows_per_factor=250, cols_per_factor=40, seed=0
    )
    U, s, Vt = _svds(A[:START])
    edges = np.linspace(START, M, BATCHES + 1).astype(int)
    batches = [A[i:j] for i, j in itertools.pairwise(edges)]
    return A, (U, s, Vt), batches


def _svds(A):
    U, s, Vt = svds(A, k=K, solver="propack", random_state=0)
    order = np.argsort(s)[::-1]
    return U[:, order], s[order], Vt[order]


def max_relative_error(s, reference):
    return float(np.max(np.abs(np.sort(s)[::-1] - reference) / reference))


def follow(impl, A, start, batches):
    """Apply every batch with ``impl``; return the final singular values."""
    if impl == "scipy":
        picks = np.linspace(0, len(batches) - 1, SCIPY_BATCHES).astype(int)
        s = None
        for b in picks:
            rows = START + sum(batch.shape[0] for batch in batches[: b + 1])
            s = _svds(A[:rows])[1]
        return s
    from linalg.svd._truncated import TruncatedSVD

    tsvd = TruncatedSVD(*start, method="sparse" if impl == "linalg" else "zha_simon")
    for batch in batches:
        tsvd.add_rows(batch)
    return np.asarray(tsvd.s)


class SparseRowUpdates:
    """Append 20,000 rows in 100 batches to a rank-64 SVD of a 20,000 x 8,000 matrix."""

    params = (["linalg", "zha_simon", "scipy"],)
    param_names = ("impl",)
    number = 1
    repeat = 1
    warmup_time = 0.0
    timeout = 1800

    def setup_cache(self):
        A, start, batches = problem()
        return A, start, batches, _svds(A)[1]

    def time_updates(self, cache, impl):
        A, start, batches, _ = cache
        follow(impl, A, start, batches)

    def track_total_seconds(self, cache, impl):
        A, start, batches, _ = cache
        began = time.perf_counter()
        follow(impl, A, start, batches)
        elapsed = time.perf_counter() - began
        return elapsed * (BATCHES / SCIPY_BATCHES if impl == "scipy" else 1.0)

    track_total_seconds.unit = "seconds"

    def track_sigma_error(self, cache, impl):
        A, start, batches, reference = cache
        if impl == "scipy":
            return max_relative_error(_svds(A)[1], reference)
        return max_relative_error(follow(impl, A, start, batches), reference)

    track_sigma_error.unit = "relative error"
