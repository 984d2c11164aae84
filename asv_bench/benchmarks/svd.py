"""Randomized SVD against scikit-learn and SciPy on planted spectra.

`impl` is the implementation measured, so one ``asv run --python=same`` gives
every ratio side by side (``asv_bench/ratios.py``):

- ``DenseRandomizedSVD``: a dense 10,000 × 2,000 float64 matrix with planted
  singular values ``σ_i = 0.95^i + 1e-3``, ``k = 50``. ``"linalg"`` is
  :func:`linalg.svd.randomized_svd` with its defaults (method ``"auto"``: block
  Krylov here, 3 iterations, 8 passes); ``"sklearn"`` is
  ``sklearn.utils.extmath.randomized_svd`` with its defaults (7 power
  iterations, 16 passes). ``track_max_relative_error`` is the largest
  ``|s_i - σ_i| / σ_i``: the time ratio counts only at equal or better error.
- ``SparseSVD``: a 100,000 × 10,000 CSR matrix, 10⁶ standard normal non-zeros
  at random positions (spectral norm about 13) plus a planted rank-20 part
  (20 constant 1,000 × 50 blocks on disjoint rows and columns, singular values
  100 down to 30, another 10⁶ non-zeros), ``k = 20``, to a
  maximum relative singular-value error of 1e-6: ``"linalg"`` is
  ``randomized_svd(method="lanczos")`` (stops when the residuals reach
  ``sqrt(eps) σ₁``), ``"propack"`` and ``"arpack"`` are
  ``scipy.sparse.linalg.svds`` with those solvers and default tolerances.
"""

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from linalg.svd import randomized_svd

DENSE_SHAPE = (10_000, 2_000)
DENSE_K = 50
SPARSE_SHAPE = (100_000, 10_000)
SPARSE_K = 20


def planted_dense(seed=0):
    """``Q₁ diag(σ) Q₂ᵀ`` with random orthonormal ``Q₁``, ``Q₂`` and ``σ_i = 0.95^i + 1e-3``."""
    m, n = DENSE_SHAPE
    rng = np.random.default_rng(seed)
    Q1, _ = np.linalg.qr(rng.standard_normal((m, n)))
    Q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
    sigma = 0.95 ** np.arange(n) + 1e-3
    return (Q1 * sigma) @ Q2.T, sigma


def planted_sparse(seed=0):
    """Sparse standard normal noise plus 20 constant blocks (rank 20, σ from 100 to 30)."""
    m, n = SPARSE_SHAPE
    rng = np.random.default_rng(seed)
    noise = sp.random_array((m, n), density=1e6 / (m * n), rng=rng, format="coo")
    noise.data = rng.standard_normal(noise.nnz)
    block_rows, block_cols = 1000, 50
    rows, cols, vals = [], [], []
    for i, value in enumerate(np.linspace(100.0, 30.0, SPARSE_K)):
        r = np.arange(i * block_rows, (i + 1) * block_rows)
        c = np.arange(i * block_cols, (i + 1) * block_cols)
        rr, cc = np.meshgrid(r, c, indexing="ij")
        rows.append(rr.ravel())
        cols.append(cc.ravel())
        vals.append(np.full(rr.size, value / np.sqrt(block_rows * block_cols)))
    planted = sp.coo_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m, n)
    )
    return (noise + planted).tocsr()


def _max_relative_error(s, reference):
    s = np.sort(np.asarray(s))[::-1][: reference.size]
    return float(np.max(np.abs(s - reference) / reference))


class DenseRandomizedSVD:
    """k = 50 of a dense 10,000 x 2,000 planted matrix, float64."""

    params = (["linalg", "sklearn"],)
    param_names = ("impl",)
    number = 1
    repeat = (3, 7, 60.0)
    warmup_time = 0.0
    timeout = 900

    def setup_cache(self):
        return planted_dense()

    def setup(self, cache, impl):
        self.A, sigma = cache
        self.reference = sigma[:DENSE_K]
        if impl == "sklearn":
            from sklearn.utils.extmath import randomized_svd as sklearn_randomized_svd

            self.run = lambda: sklearn_randomized_svd(self.A, DENSE_K, random_state=0)[1]
        else:
            self.run = lambda: randomized_svd(self.A, DENSE_K, rng=0).s

    def time_svd(self, cache, impl):
        self.run()

    def track_max_relative_error(self, cache, impl):
        return _max_relative_error(self.run(), self.reference)

    def track_passes(self, cache, impl):
        return randomized_svd(self.A, DENSE_K, rng=0).n_passes if impl == "linalg" else 16


class SparseSVD:
    """k = 20 of a sparse 100,000 x 10,000 matrix (2 x 10^6 non-zeros), to 1e-6."""

    params = (["linalg", "propack", "arpack"],)
    param_names = ("impl",)
    number = 1
    repeat = (3, 5, 120.0)
    warmup_time = 0.0
    timeout = 900

    def setup_cache(self):
        A = planted_sparse()
        reference = spla.svds(A, k=SPARSE_K, solver="propack", return_singular_vectors=False)
        return A, np.sort(reference)[::-1]

    def setup(self, cache, impl):
        self.A, self.reference = cache
        if impl == "linalg":
            # Warm the Numba random-number kernels the sketch draws with.
            randomized_svd(self.A[:2_000], SPARSE_K, method="lanczos", rng=0)
            self.run = lambda: randomized_svd(self.A, SPARSE_K, method="lanczos", rng=0).s
        else:
            self.run = lambda: spla.svds(
                self.A, k=SPARSE_K, solver=impl, return_singular_vectors="u", random_state=0
            )[1]

    def time_svd(self, cache, impl):
        self.run()

    def track_max_relative_error(self, cache, impl):
        return _max_relative_error(self.run(), self.reference)
