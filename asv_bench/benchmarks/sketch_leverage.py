"""Leverage and ridge leverage scores: sketched / recursive against exact.

`impl` is the implementation measured:

- ``"linalg-sketch"``: :func:`linalg.sketch.leverage_scores` with
  ``method="sketch"`` (sparse sign sketch of ``20 p`` rows, pivoted QR of the
  sketch, row norms of ``A R⁻¹``);
- ``"exact-qr"``: the same function with ``method="exact"`` (SciPy's pivoted,
  rank-revealing QR, ``Q`` formed), the exact peer;
- ``"numpy-qr"``: row norms of ``Q`` from :func:`numpy.linalg.qr` (Householder
  QR without pivoting: the plain exact computation a user would write; it
  assumes full column rank).

Neither SciPy nor scikit-learn has a public leverage-score or ridge-leverage
routine, so the exact factorizations above are the peers. For ridge leverage
scores the peer is the exact eigendecomposition of the kernel matrix.
"""

import numpy as np

from linalg.sketch import leverage_scores, rbf_kernel, ridge_leverage_scores

ROWS, COLUMNS = 1_000_000, 50
POINTS, GAMMA, LAM = 4000, 0.2, 0.1


def student_rows(n, p, seed=0):
    """Coherent rows: Student-t entries with 2 degrees of freedom."""
    return np.random.default_rng(seed).standard_t(2, size=(n, p))


def _leverage(impl, A):
    if impl == "linalg-sketch":
        return leverage_scores(A, method="sketch", rng=0)
    if impl == "exact-qr":
        return leverage_scores(A, method="exact")
    Q = np.linalg.qr(A)[0]
    return np.einsum("ij,ij->i", Q, Q)


class LeverageScores:
    """1,000,000 x 50 float64 Student-t (df = 2) rows."""

    params = (["linalg-sketch", "exact-qr", "numpy-qr"],)
    param_names = ("impl",)
    number = 1
    repeat = (1, 3, 120.0)
    warmup_time = 0.0
    timeout = 900

    def setup(self, impl):
        self.A = student_rows(ROWS, COLUMNS)
        leverage_scores(self.A[:2000], method="sketch", rng=0)  # compile the Numba kernels

    def time_leverage_scores(self, impl):
        _leverage(impl, self.A)


class LeverageAccuracy:
    """Worst ratio max_i max(ℓ̃_i / ℓ_i, ℓ_i / ℓ̃_i) on 100,000 x 50 Student-t rows."""

    params = (["linalg-sketch"],)
    param_names = ("impl",)
    number = 1
    repeat = 1

    def setup(self, impl):
        self.A = student_rows(100_000, COLUMNS, seed=1)
        self.exact = leverage_scores(self.A, method="exact")

    def track_worst_ratio(self, impl):
        ratio = _leverage(impl, self.A) / self.exact
        return float(max(ratio.max(), 1.0 / ratio.min()))

    track_worst_ratio.unit = "ratio"


class RidgeLeverageScores:
    """4,000 points in 3-D (two clusters), RBF kernel (gamma 0.2), lambda 0.1."""

    params = (["linalg-recursive", "exact-eigh"],)
    param_names = ("impl",)
    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0.0
    timeout = 600

    def setup(self, impl):
        g = np.random.default_rng(0)
        self.X = np.concatenate(
            [g.standard_normal((POINTS - 200, 3)), 6.0 + 0.3 * g.standard_normal((200, 3))]
        )
        self.kernel = rbf_kernel(GAMMA)

    def _scores(self, impl):
        method = "recursive" if impl == "linalg-recursive" else "exact"
        return ridge_leverage_scores(self.X, LAM, kernel=self.kernel, method=method, rng=0)

    def time_ridge_leverage_scores(self, impl):
        self._scores(impl)

    def track_effective_dimension(self, impl):
        return float(self._scores(impl).sum())

    track_effective_dimension.unit = "d_eff"
