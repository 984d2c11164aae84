"""Entropic optimal transport against POT's log-domain Sinkhorn.

`impl` is the implementation measured, so one ``asv run --python=same`` gives
every ratio side by side:

- ``"linalg-sns"``: :func:`linalg.ot.sinkhorn_newton_sparse` (auto engine);
- ``"linalg-sinkhorn"`` / ``"linalg"``: :func:`linalg.ot.sinkhorn` (auto engine:
  Numba when installed);
- ``"pot"``: ``ot.sinkhorn(..., method="sinkhorn_log")``, stopped on its own
  criterion (an L2 norm of one marginal) at ``tol / sqrt(m)``, which implies
  the L1 error of both marginals ``<= tol`` once the rows are exact.

Solvers that crawl (Sinkhorn at small ``reg``) run to an iteration cap; the
``track_marginal_error`` benchmarks report the L1 marginal error they reached.
"""

import warnings

import numpy as np

from linalg.ot import grid_cost, marginal_error, sinkhorn, sinkhorn_newton_sparse

try:
    import ot
except ImportError:  # POT is a benchmark peer only
    ot = None

RANDOM_N = 500
RANDOM_REG = 1 / 1200
RANDOM_TOL = 1e-9
GRID_TOL = 1e-8
# Iteration caps for the solvers that crawl: about a minute each on 2 cores.
CAPS = {"linalg-sinkhorn": 20_000, "pot": 2_000}


def random_case(n=RANDOM_N, seed=0):
    """The SNS paper's random case: costs uniform on [0, 1], uniform marginals."""
    C = np.random.default_rng(seed).uniform(size=(n, n))
    a = np.full(n, 1.0 / n)
    return a, a.copy(), C


def blob_image(seed, side=28):
    """A digit-like 28 x 28 histogram: three Gaussian strokes, faint pixels set to zero."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side]
    image = np.zeros((side, side))
    for _ in range(3):
        cx, cy = rng.uniform(side / 4, 3 * side / 4, 2)
        width = rng.uniform(2.0, 4.0)
        image += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * width**2))
    image[image < 0.05 * image.max()] = 0.0
    return (image / image.sum()).ravel()


def grid_case():
    C = grid_cost((28, 28))
    return blob_image(1), blob_image(2), C / C.max()


def solve(impl, a, b, C, reg, tol):
    """Run ``impl``; return the L1 marginal error reached and the solver's counts."""
    if impl == "pot":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # POT warns when it stops at its cap
            P = ot.sinkhorn(
                a,
                b,
                C,
                reg,
                method="sinkhorn_log",
                numItermax=CAPS["pot"],
                stopThr=tol / np.sqrt(b.size),
            )
        return marginal_error(P, a, b), {}
    if impl == "linalg-sns":
        res = sinkhorn_newton_sparse(a, b, C, reg, tol=tol, maxiter=10_000, warn=False)
    else:
        res = sinkhorn(a, b, C, reg, tol=tol, maxiter=CAPS["linalg-sinkhorn"], warn=False)
    counts = {
        "iterations": res.n_iter,
        "newton_steps": res.n_newton,
        "cg_iterations": int(np.sum(res.history.get("cg_iterations", 0))),
        "nnz": int(np.max(res.history.get("nnz", 0))),
    }
    return res.marginal_error, counts


def warm_up():
    """Compile the Numba kernels outside the timed region."""
    a, b, C = random_case(40)
    sinkhorn_newton_sparse(a, b, C, 1e-3, warn=False)
    sinkhorn(a, b, C, 1e-3, maxiter=20, warn=False)


class _Tracked:
    """Time to tolerance, and the error and counts reached (computed once, in setup_cache)."""

    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0.0
    timeout = 1200

    def case(self):
        raise NotImplementedError

    def _solve_all(self):
        """Every impl at every reg once. Each subclass defines its own ``setup_cache``
        calling this: asv keys caches by the defining source line, so one inherited
        ``setup_cache`` would be shared by all subclasses."""
        warm_up()
        out = {}
        for impl in self.params[0]:
            for reg in self.regs():
                a, b, C = self.case()
                out[impl, reg] = solve(impl, a, b, C, reg, self.tol)
        return out

    def setup(self, cache, impl, *reg):
        warm_up()
        self.problem = self.case()

    def _count(self, cache, impl, reg, key):
        return cache[impl, reg][1].get(key, float("nan"))


class OTRandomCase(_Tracked):
    """n = 500, C uniform on [0, 1], uniform marginals, reg = 1/1200, to L1 error 1e-9."""

    params = (["linalg-sns", "linalg-sinkhorn", "pot"],)
    param_names = ("impl",)
    tol = RANDOM_TOL

    def setup_cache(self):
        return self._solve_all()

    def case(self):
        return random_case()

    def regs(self):
        return [RANDOM_REG]

    def time_solve(self, cache, impl):
        solve(impl, *self.problem, RANDOM_REG, self.tol)

    def track_marginal_error(self, cache, impl):
        return float(cache[impl, RANDOM_REG][0])

    track_marginal_error.unit = "L1 marginal error"

    def track_iterations(self, cache, impl):
        return self._count(cache, impl, RANDOM_REG, "iterations")

    track_iterations.unit = "Sinkhorn iterations"

    def track_newton_steps(self, cache, impl):
        return self._count(cache, impl, RANDOM_REG, "newton_steps")

    track_newton_steps.unit = "Newton steps"

    def track_cg_iterations(self, cache, impl):
        return self._count(cache, impl, RANDOM_REG, "cg_iterations")

    track_cg_iterations.unit = "CG iterations"

    def track_nnz(self, cache, impl):
        return self._count(cache, impl, RANDOM_REG, "nnz")

    track_nnz.unit = "non-zeros kept"


class OTGrid(_Tracked):
    """28 x 28 digit-like histograms, squared Euclidean cost scaled to max 1, to L1 1e-8."""

    params = (["linalg-sns", "linalg-sinkhorn", "pot"], [1e-2, 1e-3])
    param_names = ("impl", "reg")
    tol = GRID_TOL

    def setup_cache(self):
        return self._solve_all()

    def case(self):
        return grid_case()

    def regs(self):
        return self.params[1]

    def time_solve(self, cache, impl, reg):
        solve(impl, *self.problem, reg, self.tol)

    def track_marginal_error(self, cache, impl, reg):
        return float(cache[impl, reg][0])

    track_marginal_error.unit = "L1 marginal error"

    def track_newton_steps(self, cache, impl, reg):
        return self._count(cache, impl, reg, "newton_steps")

    track_newton_steps.unit = "Newton steps"


class OTSinkhornIteration:
    """20 log-domain Sinkhorn iterations at n = m = 2000 (C uniform on [0, 1])."""

    params = (["linalg", "pot"], [RANDOM_REG, 0.05])
    param_names = ("impl", "reg")
    number = 1
    repeat = (3, 5, 60.0)
    warmup_time = 0.0
    timeout = 600

    def setup(self, impl, reg):
        warm_up()
        self.a, self.b, self.C = random_case(2000)

    def time_iterations(self, impl, reg):
        if impl == "pot":
            ot.sinkhorn(
                self.a,
                self.b,
                self.C,
                reg,
                method="sinkhorn_log",
                numItermax=20,
                stopThr=0.0,
                warn=False,
            )
        else:
            sinkhorn(self.a, self.b, self.C, reg, maxiter=20, check_every=20, warn=False)
