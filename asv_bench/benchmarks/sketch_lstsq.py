"""Sketch-and-precondition least squares against SciPy.

`impl` is the implementation measured:

- dense, condition number 1e8: ``"linalg"`` is
  :func:`linalg.sketch.sketched_lstsq` (CountSketch, oversampling 4, default
  ``rtol``); ``"scipy"`` is :func:`scipy.linalg.lstsq` (default driver, gelsd);
- sparse, condition number 1e6: ``"linalg"`` as above; ``"scipy-lsqr"`` is
  :func:`scipy.sparse.linalg.lsqr` without a preconditioner, with
  ``atol = btol = 1e-12`` and ``conlim = 1e16``: on this problem (condition
  1e6, LSQR losing orthogonality) ``1e-10`` leaves its residual 1.6e-7 above
  the optimum and ``1e-12`` brings it within the target 1e-8 (measured at
  20,000 × 100; see ``track_residual_ratio``). It takes over 10⁴ iterations,
  so it is timed once.

The dense problems have a known optimal residual: ``A = U diag(s) Vᵀ`` with
orthonormal ``U`` (DCT columns, rows permuted and sign-flipped), ``V`` the
orthonormal DCT, and ``b = A x + r`` with ``r ⊥ range(A)``. The sparse
problem's optimum is computed once in ``setup`` by ``sketched_lstsq`` at
``rtol=1e-14``. ``track_residual_ratio`` is ``||A x - b|| / optimum - 1``
(the targets need it below 1e-8).
"""

import numpy as np
import scipy.fft
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from linalg.sketch._lstsq import sketched_lstsq

DENSE_KAPPA = 1e8
SPARSE_KAPPA = 1e6
LSQR_TOL = 1e-12
LSQR_CONLIM = 1e16


def dense_problem(m, n, kappa=DENSE_KAPPA, seed=0):
    """``(A, b, optimal residual norm)`` with ``cond(A) = kappa``."""
    gen = np.random.default_rng(seed)
    U = scipy.fft.idct(np.eye(m, n), axis=0, norm="ortho")
    U = U[gen.permutation(m)] * gen.choice([-1.0, 1.0], size=(m, 1))
    A = scipy.fft.dct(U * np.geomspace(1.0, 1.0 / kappa, n), axis=1, norm="ortho")
    r = gen.standard_normal(m)
    r -= U @ (U.T @ r)
    b = A @ gen.standard_normal(n) + r
    return np.ascontiguousarray(A), b, float(np.linalg.norm(r))


def sparse_problem(m, n, nnz, kappa=SPARSE_KAPPA, seed=0):
    """``(A, b)``: ``nnz`` random normal entries, columns scaled from 1 to ``1/kappa``."""
    gen = np.random.default_rng(seed)
    rows = np.repeat(np.arange(m), nnz // m)
    cols = gen.integers(0, n, size=rows.size)
    G = sp.csr_array((gen.standard_normal(rows.size), (rows, cols)), shape=(m, n))
    A = (G @ sp.diags_array(np.geomspace(1.0, 1.0 / kappa, n))).tocsr()
    return A, gen.standard_normal(m)


def _warm_up():
    """Compile the sketch kernels outside the timed region."""
    A, b, _ = dense_problem(500, 20)
    sketched_lstsq(A, b, rng=0)
    sketched_lstsq(sp.csr_array(A), b, rng=0)


class _Runs:
    """Shared by the dense and sparse classes: one solve, and what it reached.

    The tracks solve again; unpreconditioned LSQR on the sparse problem takes
    over 10⁴ iterations (minutes), so its tracks are skipped.
    """

    def _solve(self, impl):
        raise NotImplementedError

    def time_solve(self, *params):
        self._solve(params[0])

    def _tracked(self, impl):
        if impl == "scipy-lsqr":
            raise NotImplementedError("too slow to solve again for a track")
        return self._solve(impl)

    def track_residual_ratio(self, *params):
        x, _ = self._tracked(params[0])
        return float(np.linalg.norm(self.A @ x - self.b) / self.optimum - 1.0)

    track_residual_ratio.unit = "||Ax - b|| / optimum - 1"

    def track_iterations(self, *params):
        return self._tracked(params[0])[1]

    track_iterations.unit = "iterations"


class DenseLstsq(_Runs):
    """Dense ``m × n``, float64, condition number 1e8."""

    params = (["linalg", "scipy"], [(40_000, 500), (200_000, 1_000)])
    param_names = ("impl", "shape")
    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0.0
    timeout = 900

    def setup(self, impl, shape):
        _warm_up()
        self.A, self.b, self.optimum = dense_problem(*shape)

    def _solve(self, impl):
        if impl == "scipy":
            return sla.lstsq(self.A, self.b)[0], 0
        res = sketched_lstsq(self.A, self.b, rng=0)
        return res.x, res.n_iter


class SparseLstsq(_Runs):
    """Sparse 1,000,000 × 500 with 10⁷ non-zeros, float64, condition number about 1e6."""

    params = (["linalg", "scipy-lsqr"],)
    param_names = ("impl",)
    shape = (1_000_000, 500, 10_000_000)
    number = 1
    repeat = 1
    warmup_time = 0.0
    timeout = 3600

    def setup(self, impl):
        _warm_up()
        self.A, self.b = sparse_problem(*self.shape)
        reference = sketched_lstsq(self.A, self.b, rtol=1e-14, oversampling=8, rng=1)
        self.optimum = reference.residual_norm

    def _solve(self, impl):
        if impl == "scipy-lsqr":
            out = spla.lsqr(
                self.A, self.b, atol=LSQR_TOL, btol=LSQR_TOL, conlim=LSQR_CONLIM, iter_lim=100_000
            )
            return out[0], int(out[2])
        res = sketched_lstsq(self.A, self.b, rng=0)
        return res.x, res.n_iter
