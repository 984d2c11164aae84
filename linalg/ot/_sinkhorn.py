"""Log-domain Sinkhorn, batched, with an optional ε-scaling schedule."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from linalg._core.validate import check_int, check_real
from linalg.ot._dual import marginal_errors
from linalg.ot._options import check_common, initial_potentials, make_result
from linalg.ot._problem import Problem, expand, prepare_problem, restrict_to_support, safe_log
from linalg.ot._result import OTResult
from linalg.ot._sinkhorn_device import DeviceSinkhorn

__all__ = ["LogSinkhorn", "sinkhorn"]

# Each stage of an ε-scaling schedule but the last stops at this marginal error.
STAGE_TOL = 1e-3


class LogSinkhorn:
    """Log-domain Sinkhorn iterations on scaled potentials, resumable.

    One iteration is ``u = log a − lse_j(v_j − K_ij)`` then
    ``v = log b − lse_i(u_i − K_ij)``, with ``K = C / ε``. At a check the
    column log-sum-exp of the second half-step gives the column marginals of
    the current plan for free (its rows are exact after the first half-step),
    so the check costs no extra pass; a member that passes stops *before* its
    ``v`` update, in the state the error was measured on.
    """

    def __init__(self, kernels: Any, problem: Problem, u: np.ndarray, v: np.ndarray) -> None:
        self.kernels, self.problem = kernels, problem
        self.loga, self.logb = safe_log(problem.a), safe_log(problem.b)
        self.u, self.v = u, v
        self.reg = problem.reg
        self._scale(problem.reg)
        self._rows, self._cols = np.empty_like(u), np.empty_like(v)
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the iterations started (for the histories)."""
        return time.perf_counter() - self.started

    def _scale(self, reg: float) -> None:
        dtype = self.problem.dtype
        self.u *= dtype.type(self.reg / reg)
        self.v *= dtype.type(self.reg / reg)
        self.reg = reg
        self.K = self.problem.C / dtype.type(reg)
        self.KT = np.ascontiguousarray(np.swapaxes(self.K, 1, 2))

    def set_reg(self, reg: float) -> None:
        """Move to regularization ``reg``, keeping the unscaled potentials ``f, g``."""
        if reg != self.reg:
            self._scale(reg)

    def errors(self) -> np.ndarray:
        """L1 error of both marginals of every member, recomputed from the potentials."""
        p = self.problem
        return marginal_errors(self.kernels, self.K, self.KT, self.u, self.v, p.a, p.b)

    def run(
        self,
        members: np.ndarray,
        *,
        tol: float,
        maxiter: int,
        check_every: int,
        stop: Callable[[int, float], bool] | None = None,
    ) -> dict[str, np.ndarray]:
        """Iterate ``members`` until each one's error is ``<= tol`` or ``maxiter``.

        ``stop(iteration, error)``, for a single member, is asked at each
        check and ends the run when it returns True. Returns the iterations
        per member, whether each converged, and the checks' record.
        """
        size = self.u.shape[0]
        n_iter = np.zeros(size, dtype=np.int64)
        converged = np.zeros(size, dtype=bool)
        error = np.full(size, np.inf)
        checks, errors, seconds = [], [], []
        active = np.asarray(members, dtype=np.int64)
        lse = self.kernels.lse
        for iteration in range(1, maxiter + 1):
            lse(self.K, self.v, active, self._rows)
            self.u[active] = self.loga[active] - self._rows[active]
            lse(self.KT, self.u, active, self._cols)
            n_iter[active] = iteration
            if iteration % check_every == 0 or iteration == maxiter:
                with np.errstate(invalid="ignore"):
                    mass = np.exp(self.v[active] + self._cols[active])
                measured = np.abs(mass - self.problem.b[active]).sum(axis=1)
                error[active] = measured
                checks.append(iteration)
                errors.append(error.copy())
                seconds.append(self.elapsed())
                done = measured <= tol
                converged[active[done]] = True
                halt = stop is not None and stop(iteration, float(measured[0]))
                active = active[~done]
                if halt or not active.size:
                    break
            self.v[active] = self.logb[active] - self._cols[active]
        return {
            "n_iter": n_iter,
            "converged": converged,
            "iteration": np.array(checks, dtype=np.int64),
            "marginal_error": np.array(errors).reshape(len(errors), size),
            "seconds": np.array(seconds),
        }


def _schedule(eps_scaling: Any, problem: Problem) -> list[float]:
    """The regularizations to run, from large to ``reg`` (``reg`` last)."""
    reg, C, xp = problem.reg, problem.C, problem.xp
    if eps_scaling is None:
        return [reg]
    if isinstance(eps_scaling, int | np.integer) and not isinstance(eps_scaling, bool):
        stages = check_int(eps_scaling, "eps_scaling", low=1)
        start = max(float(xp.max(C)) - float(xp.min(C)), reg)
        return [*(float(e) for e in np.geomspace(start, reg, stages)[:-1]), reg]
    try:
        values = [check_real(e, "eps_scaling", low=reg, low_inclusive=False) for e in eps_scaling]
    except TypeError as exc:
        raise TypeError(
            "eps_scaling must be None, a number of stages, or a sequence of regularizations "
            f"larger than reg, got {eps_scaling!r}"
        ) from exc
    if any(later >= earlier for earlier, later in itertools.pairwise(values)):
        raise ValueError(f"eps_scaling must be decreasing, got {values}")
    return [*values, reg]


def sinkhorn(
    a: Any,
    b: Any,
    C: Any,
    reg: float,
    *,
    tol: float | None = None,
    maxiter: int = 10_000,
    eps_scaling: Any = None,
    init: Any = None,
    normalize: bool = False,
    check_every: int = 10,
    warn: bool = True,
    engine: str | None = None,
) -> OTResult:
    """Entropic optimal transport by log-domain Sinkhorn iterations.

    Solves ``min_P ⟨P, C⟩ + reg Σ P_ij (log P_ij − 1)`` over plans with
    marginals ``a`` and ``b`` by alternating exact maximization of the dual
    over ``f`` and ``g``, entirely in the log domain (log-sum-exp with the
    maximum subtracted): no underflow and no NaN at any ``reg``.

    Parameters
    ----------
    a, b : array_like, shape (n,) and (m,), or (batch, n) and (batch, m)
        Non-negative marginals with equal totals. Zero entries are allowed
        and get potential ``-inf`` (a single problem is solved on the
        support of ``a`` and ``b``; a batch carries the ``-inf`` along).
    C : array_like, shape (n, m) or (batch, n, m)
        Finite cost matrix, shared by the batch or one per member.
    reg : float
        Entropic regularization ``ε > 0``.
    tol : float, optional
        Stop when the L1 error of both marginals is ``<= tol`` (default
        1e-9 in float64, 1e-5 in float32).
    maxiter : int
        Iteration limit (all ε stages together).
    eps_scaling : int or sequence of float, optional
        ε-scaling: a number of stages (geometric from ``C.max() − C.min()``
        to ``reg``) or decreasing regularizations above ``reg``; each stage
        warm-starts the next, and stages before the last stop at marginal
        error ``1e-3``.
    init : pair of array_like, optional
        Warm start ``(f, g)``; only ``g`` matters, as the first half-step
        computes ``f``.
    normalize : bool
        Rescale ``a`` and ``b`` to unit mass instead of requiring equal totals.
    check_every : int
        Test for convergence every this many iterations (free: the error is
        a by-product of the half-step).
    warn : bool
        Emit :class:`linalg.ConvergenceWarning` when a member did not converge.
    engine : {"auto", "reference", "numba", "cupy"}, optional
        Engine for the log-sum-exp passes (see :func:`linalg.engines`).
        CuPy arrays, GPU tensors and arrays of other array-API libraries are
        solved on their device: "cupy" (the fused passes of ``cuda/ot.cu``,
        "auto" for CuPy arrays) or "reference" (log-sum-exp in the data's own
        library); every quantity stays there, zero-mass entries keep
        potential ``-inf`` instead of being cut away, and the host reads the
        marginal errors only at the checks.

    Returns
    -------
    OTResult
        Potentials ``f, g``, the lazily computed ``plan`` and ``cost``,
        ``converged``, ``n_iter``, ``marginal_error`` (recomputed from the
        returned potentials) and ``history``: at each check ``"iteration"``,
        ``"marginal_error"`` (one column per batch member) and ``"seconds"``
        since the iterations started.

    Raises
    ------
    ValueError
        Negative marginals, totals that differ (unless ``normalize=True``),
        NaN or Inf in ``C``, ``reg <= 0``, shapes that do not match.

    Notes
    -----
    With ``u = f / reg``, ``v = g / reg`` and ``K = C / reg``, iteration
    ``u_i = log a_i − lse_j(v_j − K_ij)``, ``v_j = log b_j − lse_i(u_i −
    K_ij)`` (Peyré and Cuturi 2019, Sec. 4.4). Convergence is linear with
    a rate that degrades like ``exp(−1/reg)``; for small ``reg`` use
    :func:`sinkhorn_newton_sparse`. The plan is ``exp((f_i + g_j − C_ij) /
    reg)``.

    References
    ----------
    .. [1] G. Peyré and M. Cuturi, "Computational Optimal Transport",
       Foundations and Trends in Machine Learning 11(5-6), 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.ot import sinkhorn
    >>> x = np.linspace(0.0, 1.0, 5)
    >>> C = (x[:, None] - x[None, :]) ** 2
    >>> a = np.full(5, 0.2)
    >>> res = sinkhorn(a, a, C, 0.05)
    >>> res.converged, bool(res.marginal_error <= 1e-9)
    (True, True)
    >>> np.allclose(res.plan.sum(axis=1), a)
    True
    """
    problem = prepare_problem(a, b, C, reg, normalize=normalize, batched=True, anywhere=True)
    tol, impl = check_common(
        problem, tol=tol, maxiter=maxiter, check_every=check_every, warn=warn, engine=engine
    )
    stages = _schedule(eps_scaling, problem)
    u, v = initial_potentials(problem, init)
    restricted = not problem.batched and not problem.on_device
    if problem.on_device:
        solver = DeviceSinkhorn(problem, u, v, engine)
    else:
        reduced = problem
        if restricted:  # a single problem runs on the support of a and b
            reduced, rows, cols = restrict_to_support(problem)
            u, v = u[:, rows].copy(), v[:, cols].copy()
        solver = LogSinkhorn(impl.load(), reduced, u, v)
    members = np.arange(u.shape[0])
    n_iter = np.zeros(u.shape[0], dtype=np.int64)
    record: dict[str, list[np.ndarray]] = {"iteration": [], "marginal_error": [], "seconds": []}
    for stage, eps in enumerate(stages):
        last = stage == len(stages) - 1
        budget = maxiter - int(n_iter.max())
        if budget < 1:
            break
        solver.set_reg(eps)
        out = solver.run(
            members,
            tol=tol if last else max(tol, STAGE_TOL),
            maxiter=budget,
            check_every=check_every,
        )
        record["iteration"].append(out["iteration"] + n_iter.max())
        record["marginal_error"].append(out["marginal_error"])
        record["seconds"].append(out["seconds"])
        n_iter += out["n_iter"]
    solver.set_reg(problem.reg)
    history = {key: np.concatenate(value) for key, value in record.items()}
    if not problem.batched:
        history["marginal_error"] = history["marginal_error"][:, 0]
    u, v = solver.u, solver.v
    if restricted:
        u, v = expand(u[0], rows, problem.a.shape[1]), expand(v[0], cols, problem.b.shape[1])
    return make_result(
        problem,
        u,
        v,
        error=solver.errors(),
        tol=tol,
        n_iter=n_iter,
        n_newton=0,
        history=history,
        info={"engine": solver.engine if problem.on_device else impl.engine, "stages": stages},
        warn=warn,
        solver="sinkhorn",
    )
