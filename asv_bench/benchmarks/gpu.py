"""GPU benchmarks: the targets of the GPU-engines issue, each beside its floor.

Every class needs CuPy and a CUDA device: without them ``setup`` raises
``NotImplementedError`` and asv skips the class. Each result is synchronized
with the device before the timer stops. The floors are measured in the same
run, on the same arrays:

- ``copy``: ``cupy.copyto`` of an array the operation must read, one read and
  one write of it. A method that reads ``B`` bytes once runs at half the
  copy's time if it reaches the copy's bandwidth, so "at least 50% of the
  memory bandwidth" reads as a time ratio to the copy: ``<= 1`` for one pass
  (CountSketch), ``<= 2`` for two passes (a Sinkhorn iteration reads ``K`` and
  ``Kᵀ``; a DenseIHVP solve reads ``G`` twice).
- ``host-numpy``: the same call of linalg on host NumPy arrays (``randomized_svd``,
  ``cg``, ``ichol``), named as a peer so that the ratio tables divide by it.

Classes:

- ``SinkhornIteration``: one log-domain Sinkhorn iteration at n = m = 10,000
  in float32 — the two fused log-sum-exp half-steps of ``cuda/ot.cu`` (the
  ``ot.kernels`` CuPy engine) — against ``copy`` of ``K``.
- ``CountSketchDevice``: CountSketch of a 10⁷ × 100 float32 CuPy array to
  2,000 rows (``cuda/sketch.cu``), against ``copy`` of the array.
- ``RandomizedSVDDevice``: ``randomized_svd`` of a 20,000 × 20,000 float32
  matrix (k = 50, default options) on CuPy against ``numpy`` on the host CPU.
- ``DenseIHVPDevice``: ``DenseIHVP.solve`` of one vector with m = 256
  gradients of d = 10⁷ float32 on CuPy, against ``copy`` of the gradients.
- ``GaussianSketchDevice``: Gaussian ``S @ A`` of a 10⁶ × 200 float32 CuPy
  array, entries drawn on the GPU, against ``gemm`` with ``S`` drawn before
  (no target: how much the device draw costs).
- ``BlockCGDevice``: 100 iterations of ``cg`` with 16 right-hand sides, dense
  8,192² float32, on CuPy against NumPy on the host (no target).
- ``IncompleteCholeskyDevice``: one IC(0) application on a 10⁶-unknown 2-D
  Laplacian, level-scheduled on CuPy against cupyx's cuSPARSE triangular
  solves and the Numba sweeps on the host (no target).
"""

import numpy as np


def _cupy():
    """CuPy, if it is installed and sees a CUDA device; else the benchmark is skipped."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
    except Exception as exc:
        raise NotImplementedError(f"needs CuPy and a CUDA device: {exc}") from exc
    return cupy


def _synchronize():
    import cupy

    cupy.cuda.Device().synchronize()


class _OnDevice:
    number = 1
    repeat = (5, 20, 60.0)
    warmup_time = 0.0
    timeout = 600


class SinkhornIteration(_OnDevice):
    """One Sinkhorn iteration (two passes over K), n = m = 10,000, float32."""

    params = (["linalg", "copy"],)
    param_names = ("impl",)
    N = 10_000

    def setup(self, impl):
        cupy = _cupy()
        from linalg.ot._cupy import CUPY_KERNELS

        self.kernels = CUPY_KERNELS
        rng = cupy.random.default_rng(0)
        self.K = rng.random((1, self.N, self.N), dtype=cupy.float32) * 10
        self.KT = cupy.ascontiguousarray(self.K.transpose(0, 2, 1))
        self.u = cupy.zeros((1, self.N), dtype=cupy.float32)
        self.v = cupy.zeros((1, self.N), dtype=cupy.float32)
        self.members = cupy.arange(1, dtype=cupy.int64)
        self.target = cupy.empty_like(self.K) if impl == "copy" else None
        self.time_iteration(impl)  # compiles the kernels outside the timings

    def time_iteration(self, impl):
        if impl == "copy":
            _cupy().copyto(self.target, self.K)
        else:
            self.kernels.lse(self.K, self.v, self.members, self.u)
            self.kernels.lse(self.KT, self.u, self.members, self.v)
        _synchronize()


class CountSketchDevice(_OnDevice):
    """CountSketch of a 10⁷ × 100 float32 CuPy array to 2,000 rows."""

    params = (["linalg", "copy"],)
    param_names = ("impl",)
    ROWS, COLUMNS, SKETCH_ROWS = 10_000_000, 100, 2_000

    def setup(self, impl):
        cupy = _cupy()
        from linalg.sketch import countsketch

        self.A = cupy.random.default_rng(0).standard_normal(
            (self.ROWS, self.COLUMNS), dtype=cupy.float32
        )
        self.S = countsketch(self.SKETCH_ROWS, self.ROWS, rng=0, dtype=np.float32)
        self.target = cupy.empty_like(self.A) if impl == "copy" else None
        self.time_sketch(impl)

    def time_sketch(self, impl):
        if impl == "copy":
            _cupy().copyto(self.target, self.A)
        else:
            self.S @ self.A
        _synchronize()


class RandomizedSVDDevice(_OnDevice):
    """randomized_svd, k = 50, of a 20,000 × 20,000 float32 matrix: CuPy against NumPy."""

    params = (["linalg-cupy", "host-numpy"],)
    param_names = ("impl",)
    N, K = 20_000, 50
    repeat = (3, 5, 300.0)

    def setup(self, impl):
        cupy = _cupy()
        gen = cupy.random.default_rng(0)
        # A decaying spectrum: a product of a Gaussian matrix with a diagonal scaling.
        scale = cupy.asarray(0.99 ** np.arange(self.N), dtype=cupy.float32)
        A = gen.standard_normal((self.N, self.N), dtype=cupy.float32) * scale
        self.A = A if impl == "linalg-cupy" else cupy.asnumpy(A)

    def time_randomized_svd(self, impl):
        from linalg.svd import randomized_svd

        randomized_svd(self.A, self.K, rng=0)
        if impl == "linalg-cupy":
            _synchronize()


class DenseIHVPDevice(_OnDevice):
    """DenseIHVP.solve of one vector, m = 256 gradients of d = 10⁷, float32."""

    params = (["linalg", "copy"],)
    param_names = ("impl",)
    M, D = 256, 10_000_000

    def setup(self, impl):
        cupy = _cupy()
        from linalg.curvature import DenseIHVP

        gen = cupy.random.default_rng(0)
        self.G = gen.standard_normal((self.M, self.D), dtype=cupy.float32)
        self.v = gen.standard_normal(self.D, dtype=cupy.float32)
        self.ihvp = DenseIHVP(self.G, damping=1e-2) if impl == "linalg" else None
        self.target = cupy.empty_like(self.G) if impl == "copy" else None

    def time_solve(self, impl):
        if impl == "copy":
            _cupy().copyto(self.target, self.G)
        else:
            self.ihvp.solve(self.v)
        _synchronize()


class GaussianSketchDevice(_OnDevice):
    """Gaussian ``S @ A`` of a 10⁶ × 200 float32 CuPy array to 400 rows, the entries
    drawn on the GPU block by block, against the GEMM with ``S`` drawn beforehand."""

    params = (["linalg", "gemm"],)
    param_names = ("impl",)
    ROWS, COLUMNS, SKETCH_ROWS = 1_000_000, 200, 400

    def setup(self, impl):
        cupy = _cupy()
        from linalg._core.namespace import placement_of
        from linalg.sketch import gaussian

        self.A = cupy.random.default_rng(0).standard_normal(
            (self.ROWS, self.COLUMNS), dtype=cupy.float32
        )
        self.S = gaussian(self.SKETCH_ROWS, self.ROWS, rng=0, dtype=np.float32)
        self.dense = self.S.dense_on(placement_of(self.A)) if impl == "gemm" else None
        self.time_sketch(impl)  # compiles the fill kernel outside the timings

    def time_sketch(self, impl):
        if impl == "gemm":
            self.dense @ self.A
        else:
            self.S @ self.A
        _synchronize()


class BlockCGDevice(_OnDevice):
    """100 iterations of ``cg`` with 16 right-hand sides on a dense SPD 8,192² float32
    matrix: CuPy (the host reads residuals every 10 iterations) against NumPy."""

    params = (["linalg-cupy", "host-numpy"],)
    param_names = ("impl",)
    N, RHS, ITERATIONS = 8_192, 16, 100

    def setup(self, impl):
        cupy = _cupy()
        gen = cupy.random.default_rng(0)
        X = gen.standard_normal((self.N, self.N), dtype=cupy.float32) / np.float32(self.N**0.5)
        A = X @ X.T + cupy.eye(self.N, dtype=cupy.float32)
        B = gen.standard_normal((self.N, self.RHS), dtype=cupy.float32)
        self.A, self.B = (A, B) if impl == "linalg-cupy" else (cupy.asnumpy(A), cupy.asnumpy(B))

    def time_cg(self, impl):
        from linalg.solvers import cg

        # rtol = 0: every column runs all the iterations (no convergence to wait for).
        cg(self.A, self.B, rtol=0.0, maxiter=self.ITERATIONS, check_every=10, warn=False)
        if impl == "linalg-cupy":
            _synchronize()


class IncompleteCholeskyDevice(_OnDevice):
    """One application of IC(0) (a forward and a backward sweep) for the 5-point
    Laplacian on a 1,000 × 1,000 grid (10⁶ unknowns, 1,999 levels per sweep), one
    float64 right-hand side: the level-scheduled sweeps on CuPy, cupyx's
    ``spsolve_triangular`` (cuSPARSE) on the same factor, and the Numba sweeps on
    the host CPU (no target: whether level scheduling pays on a GPU)."""

    params = (["linalg-cupy", "cupyx", "host-numpy"],)
    param_names = ("impl",)
    P = 1_000

    def setup(self, impl):
        cupy = _cupy()
        import scipy.sparse as sp

        from linalg.solvers import ichol

        T = sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(self.P, self.P))
        eye = sp.eye_array(self.P)
        A = (sp.kron(eye, T) + sp.kron(T, eye)).tocsr()
        r = np.random.default_rng(0).standard_normal(A.shape[0])
        if impl == "host-numpy":
            self.M, self.r = ichol(A), r
            return
        self.r = cupy.asarray(r)
        self.M = ichol(A, like=self.r)
        if impl == "cupyx":
            import cupyx.scipy.sparse as csp

            self.L = csp.csr_matrix(sp.csr_matrix(self.M.L))
            self.LT = csp.csr_matrix(sp.csr_matrix(self.M.L.T))

    def time_solve(self, impl):
        if impl == "cupyx":
            from cupyx.scipy.sparse.linalg import spsolve_triangular

            y = spsolve_triangular(self.L, self.r, lower=True)
            spsolve_triangular(self.LT, y, lower=False)
        else:
            self.M.solve(self.r)
        if impl != "host-numpy":
            _synchronize()
