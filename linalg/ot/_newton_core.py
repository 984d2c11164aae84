"""Newton steps on the entropic dual, shared by the dense and the sparse Newton solvers.

The Hessian of ``D / ε`` in ``(u, v)`` is ``−[[diag(r), P], [Pᵀ, diag(c)]]``
with ``r = P1``, ``c = Pᵀ1``. The Newton system is solved for ``dv`` through
the Schur complement ``S = diag(c) − Pᵀ diag(1/r) P`` (``du`` follows from
the first block row), by preconditioned CG with the Jacobi preconditioner.
``S 1 = 0``: the dual is invariant along ``(1, −1)``. That direction is
removed by fixing the last coordinate, ``dv_m = 0``: CG runs on the leading
``(m − 1) × (m − 1)`` block, which is positive definite. A sparse solver
passes a sparsified ``P`` for the off-diagonal blocks (the diagonal blocks
keep the exact ``r`` and ``c``), which makes ``S`` itself definite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from linalg._core.operators import Operator
from linalg._core.results import LinAlgError
from linalg.ot._dual import dual_value
from linalg.ot._sinkhorn import LogSinkhorn
from linalg.solvers import DiagonalOperator, cg

__all__ = ["NewtonRun"]

ARMIJO = 1e-4  # sufficient increase, as a fraction of the first-order increase
SHRINK = 0.5  # backtracking factor
MIN_STEP = 1.0 / 2**30  # a line search that needs a smaller step has failed


@dataclass
class Point:
    """The plan and marginals at the current potentials."""

    P: np.ndarray
    r: np.ndarray
    c: np.ndarray
    error: float
    dual: float


class SchurComplement(Operator):
    """``S = diag(c) − Bᵀ diag(1/r) B`` on its first ``m − 1`` coordinates (``dv_m = 0``)."""

    def __init__(self, B: Any, w: np.ndarray, c: np.ndarray) -> None:
        super().__init__((c.size - 1, c.size - 1), c.dtype)
        self.B, self.w, self.c = B, w, c

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        Z = np.zeros((self.c.size, X.shape[1]), dtype=X.dtype)
        Z[:-1] = X
        Y = self.B @ Z
        Y *= self.w[:, None]
        return (self.c[:, None] * Z - self.B.T @ Y)[:-1]

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return self._matmat(x[:, None])[:, 0]

    _rmatmat = _matmat
    _rmatvec = _matvec


def _weighted_square_sums(B: Any, w: np.ndarray) -> np.ndarray:
    """``Σ_i w_i B_ij²`` per column, for a dense array or a SciPy sparse matrix."""
    if isinstance(B, np.ndarray):
        return np.einsum("ij,ij,i->j", B, B, w)
    return np.asarray(B.multiply(B).T @ w)


class NewtonRun:
    """Newton steps with a line search on the dual, on a :class:`LogSinkhorn`'s potentials.

    Parameters
    ----------
    sinkhorn : LogSinkhorn
        Holds the (single) problem and the potentials, updated in place;
        its iterations are the fall-back when a Newton step fails.
    offdiagonal : callable
        ``(P, r) -> B``: the matrix standing for ``P`` in the Hessian's
        off-diagonal blocks (``P`` itself, or a sparse approximation).
    on_failure : callable
        Called with the reason when a step fails (to make ``B`` denser).
    cg_maxiter : int
        CG iteration limit per Newton system.
    check_every : int
        Sinkhorn iterations run on a failed step.
    """

    def __init__(
        self,
        sinkhorn: LogSinkhorn,
        offdiagonal: Callable[[np.ndarray, np.ndarray], Any],
        on_failure: Callable[[str], None],
        *,
        cg_maxiter: int,
        check_every: int,
    ) -> None:
        self.sk = sinkhorn
        self.offdiagonal, self.on_failure = offdiagonal, on_failure
        self.cg_maxiter, self.check_every = cg_maxiter, check_every
        self.a, self.b = sinkhorn.problem.a[0, :], sinkhorn.problem.b[0, :]
        self.n_newton = 0
        self.n_sinkhorn = 0
        self.failures: list[dict[str, Any]] = []
        self.history: dict[str, list] = {
            key: [] for key in ("dual", "marginal_error", "step", "cg_iterations", "nnz", "seconds")
        }

    def evaluate(self) -> Point:
        u, v = self.sk.u[0], self.sk.v[0]
        P = self.sk.kernels.plan(self.sk.K[0], u, v)
        r, c = P.sum(axis=1), P.sum(axis=0)
        error = float(np.abs(r - self.a).sum() + np.abs(c - self.b).sum())
        dual = self.sk.reg * dual_value(u, v, self.a, self.b, float(r.sum()))
        return Point(P, r, c, error, dual)

    def _record(self, point: Point, step: float, cg_iterations: int, nnz: int) -> None:
        values = (point.dual, point.error, step, cg_iterations, nnz, self.sk.elapsed())
        for key, value in zip(self.history, values, strict=True):
            self.history[key].append(value)

    def direction(self, point: Point, B: Any) -> tuple[np.ndarray, np.ndarray, int]:
        """Solve the Newton system; ``dv_m = 0``."""
        ga, gb = self.a - point.r, self.b - point.c
        w = 1.0 / point.r
        dv = np.zeros_like(gb)
        iterations = 0
        if gb.size > 1:
            rhs = gb - B.T @ (w * ga)
            diagonal = point.c - _weighted_square_sums(B, w)
            diagonal = np.maximum(diagonal, np.finfo(diagonal.dtype).eps * point.c)
            rtol = float(np.clip(point.error, 1e-12, 0.1))
            solve = cg(
                SchurComplement(B, w, point.c),
                rhs[:-1],
                M=DiagonalOperator(1.0 / diagonal[:-1]),
                rtol=rtol,
                maxiter=self.cg_maxiter,
                warn=False,
            )
            dv[:-1] = solve.x
            iterations = int(solve.n_iter)
        du = w * (ga - B @ dv)
        return du, dv, iterations

    def line_search(self, point: Point, du: Any, dv: Any) -> float | None:
        """Armijo backtracking on the dual; the step, or None if none increases it enough.

        The increase ``D(x + t d) − D(x)`` is evaluated as
        ``ε (t (⟨a, du⟩ + ⟨b, dv⟩) − Σ P_ij expm1(t (du_i + dv_j)))``: the
        difference of the two duals without their cancellation, so the test
        stays meaningful at marginal errors near rounding.
        """
        slope, linear = self.slopes(point, du, dv)
        if not slope > 0.0:
            return None
        step = 1.0
        while step >= MIN_STEP:
            if self.gain(point, du, dv, step, linear) >= ARMIJO * step * slope:
                return step
            step *= SHRINK
        return None

    def slopes(self, point: Point, du: np.ndarray, dv: np.ndarray) -> tuple[float, float]:
        """The dual's first-order increase along ``(du, dv)`` and ``⟨a, du⟩ + ⟨b, dv⟩``."""
        slope = float(np.dot(self.a - point.r, du) + np.dot(self.b - point.c, dv))
        return slope, float(np.dot(self.a, du) + np.dot(self.b, dv))

    def gain(
        self, point: Point, du: np.ndarray, dv: np.ndarray, step: float, linear: float
    ) -> float:
        """``(D(x + t d) − D(x)) / ε`` at ``t = step`` (NaN where it overflows)."""
        with np.errstate(over="ignore", invalid="ignore"):
            E = np.expm1(step * (du[:, None] + dv[None, :]))
            E *= point.P
            return step * linear - float(E.sum())

    def _fall_back(self, reason: str, remaining: int) -> Point:
        self.failures.append({"newton_step": self.n_newton, "reason": reason})
        self.on_failure(reason)
        out = self.sk.run(
            np.zeros(1, dtype=np.int64),
            tol=0.0,
            maxiter=min(self.check_every, remaining),
            check_every=self.check_every,
        )
        self.n_sinkhorn += int(out["n_iter"][0])
        return self.evaluate()

    def offdiagonal_block(self, point: Point) -> tuple[Any, int]:
        """The matrix standing for ``P`` in the Hessian, and how many entries it keeps."""
        B = self.offdiagonal(point.P, point.r)
        return B, int(B.nnz) if hasattr(B, "nnz") else B.size

    def underflowed(self, point: Point) -> bool:
        """Whether a row or column of the plan has no mass left (no Newton system)."""
        return not ((point.r > 0).all() and (point.c > 0).all())

    def advance(self, step: float, du: Any, dv: Any) -> None:
        """Move the potentials by ``step`` along ``(du, dv)``."""
        self.sk.u[0] += self.sk.u.dtype.type(step) * du
        self.sk.v[0] += self.sk.v.dtype.type(step) * dv

    def run(self, *, tol: float, budget: int) -> Point:
        """Newton steps until the marginal error is ``<= tol`` or the Newton steps and
        Sinkhorn iterations of this run reach ``budget``."""
        point = self.evaluate()
        self._record(point, 0.0, 0, 0)
        while point.error > tol and (remaining := budget - self.n_newton - self.n_sinkhorn) > 0:
            B, nnz = self.offdiagonal_block(point)
            if self.underflowed(point):
                point = self._fall_back("a row or column of the plan underflowed", remaining)
                continue
            try:
                du, dv, iterations = self.direction(point, B)
            except LinAlgError as exc:
                point = self._fall_back(f"CG broke down: {exc}", remaining)
                continue
            step = self.line_search(point, du, dv)
            if step is None:
                point = self._fall_back("the line search found no increase of the dual", remaining)
                continue
            self.advance(step, du, dv)
            self.n_newton += 1
            point = self.evaluate()
            self._record(point, step, iterations, nnz)
        return point

    def history_arrays(self) -> dict[str, np.ndarray]:
        return {key: np.asarray(value) for key, value in self.history.items()}
