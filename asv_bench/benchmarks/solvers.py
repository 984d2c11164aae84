"""Krylov solvers against SciPy on the 2-D Poisson problem.

`impl` is the implementation measured, so one ``asv run --python=same``
gives every ratio side by side:

- ``"linalg"``: :func:`linalg.solvers.cg` (auto engine: Numba when installed);
- ``"linalg+ichol"`` / ``"linalg+mic"``: the same with an IC(0) / MIC(0)
  preconditioner, the factorization included in the time;
- ``"scipy"``: :func:`scipy.sparse.linalg.cg` without a preconditioner
  (SciPy has no incomplete Cholesky); with 16 right-hand sides, 16 calls.
"""

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from linalg.solvers import cg, ichol

GRID = 512
RTOL = 1e-8


def poisson2d(n):
    T = sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(n, n))
    eye = sp.eye_array(n)
    return (sp.kron(T, eye) + sp.kron(eye, T)).tocsr()


def _warm_up():
    """Compile the Numba kernels outside the timed region: the serial builds on a
    small grid, the threaded ones on a grid above their row threshold."""
    for grid in (8, 200):
        A = poisson2d(grid)
        ones = np.ones(A.shape[0])
        cg(A, ones, maxiter=2, warn=False)
        cg(A, np.ones((A.shape[0], 2)), maxiter=2, warn=False)
        cg(A, ones, M=ichol(A), maxiter=2, warn=False)
        cg(A, ones, M=ichol(A, modified=True), maxiter=2, warn=False)


def _run(impl, A, B):
    """Solve A X = B with ``impl``; return (X, iterations per column)."""
    if impl == "scipy":
        columns, iterations = [], []
        for b in B.T:
            count = [0]

            def tick(_x, count=count):
                count[0] += 1

            x, info = spla.cg(A, b, rtol=RTOL, maxiter=10 * A.shape[0], callback=tick)
            assert info == 0
            columns.append(x)
            iterations.append(count[0])
        return np.stack(columns, axis=1), np.array(iterations)
    M = None
    if impl == "linalg+ichol":
        M = ichol(A)
    elif impl == "linalg+mic":
        M = ichol(A, modified=True)
    result = cg(A, B, rtol=RTOL, M=M)
    return result.x, result.n_iter


class CGPoisson:
    """One right-hand side, 512 x 512 grid (262,144 unknowns), float64, rtol 1e-8."""

    params = (["linalg", "linalg+ichol", "linalg+mic", "scipy"],)
    param_names = ("impl",)
    number = 1
    repeat = (3, 5, 60.0)
    warmup_time = 0.0
    timeout = 600

    def setup(self, impl):
        _warm_up()
        self.A = poisson2d(GRID)
        self.B = np.ones((self.A.shape[0], 1)) / GRID

    def time_solve(self, impl):
        _run(impl, self.A, self.B)

    def track_iterations(self, impl):
        return int(_run(impl, self.A, self.B)[1][0])

    track_iterations.unit = "iterations"

    def track_relative_residual(self, impl):
        X, _ = _run(impl, self.A, self.B)
        return float(np.linalg.norm(self.B - self.A @ X) / np.linalg.norm(self.B))

    track_relative_residual.unit = "relative residual"


class CGManyRightHandSides:
    """16 right-hand sides on the same matrix: one block solve against 16 SciPy calls."""

    params = (["linalg", "scipy"],)
    param_names = ("impl",)
    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0.0
    timeout = 900

    def setup(self, impl):
        _warm_up()
        self.A = poisson2d(GRID)
        rng = np.random.default_rng(0)
        self.B = rng.standard_normal((self.A.shape[0], 16))

    def time_solve(self, impl):
        _run(impl, self.A, self.B)

    def track_total_iterations(self, impl):
        return int(_run(impl, self.A, self.B)[1].sum())

    track_total_iterations.unit = "iterations"
