"""Sinkhorn–Newton: Newton's method on the entropic dual, Hessian applied matrix-free."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from linalg._core.validate import check_int
from linalg.ot._newton_core import NewtonRun
from linalg.ot._newton_device import DeviceNewtonRun, restrict_on_device, spread
from linalg.ot._options import check_common, initial_potentials, make_result
from linalg.ot._problem import Problem, expand, prepare_problem, restrict_to_support
from linalg.ot._result import OTResult
from linalg.ot._sinkhorn import LogSinkhorn
from linalg.ot._sinkhorn_device import DeviceSinkhorn

__all__ = ["sinkhorn_newton"]


def solve_newton(
    problem: Problem,
    init: Any,
    impl: Any,
    *,
    tol: float,
    maxiter: int,
    check_every: int,
    cg_maxiter: int | None,
    warn: bool,
    solver: str,
    warmup: Any,
    offdiagonal: Any,
    on_failure: Any,
    info: dict[str, Any],
    engine: str | None = None,
) -> OTResult:
    """Shared driver: restrict to the support, warm up, run Newton, expand, assemble.

    ``warmup(sinkhorn) -> (iterations, record)`` runs the Sinkhorn phase and
    ``maxiter`` bounds Sinkhorn iterations plus Newton steps. Device problems
    (``impl`` is None there) run :class:`DeviceSinkhorn` and
    :class:`DeviceNewtonRun` with the ``engine`` the caller named.
    """
    u, v = initial_potentials(problem, init)
    if problem.on_device:
        xp = problem.xp
        reduced, rows, cols = restrict_on_device(problem)
        if rows is not None:
            u, v = xp.take(u, rows, axis=1), xp.take(v, cols, axis=1)
        sk = DeviceSinkhorn(reduced, u, v, engine)
        run_class, engine = DeviceNewtonRun, sk.engine
    else:
        reduced, rows, cols = restrict_to_support(problem)
        sk = LogSinkhorn(impl.load(), reduced, u[:, rows].copy(), v[:, cols].copy())
        run_class, engine = NewtonRun, impl.engine
    warm_iterations, warm_record = warmup(sk)
    cg_limit = reduced.b.shape[1] if cg_maxiter is None else cg_maxiter
    newton = run_class(sk, offdiagonal, on_failure, cg_maxiter=cg_limit, check_every=check_every)
    newton.run(tol=tol, budget=maxiter - warm_iterations)
    history = newton.history_arrays() | warm_record
    if problem.on_device:
        u_full = spread(xp, sk.u, None if rows is None else problem.a[0, :] > 0)
        v_full = spread(xp, sk.v, None if cols is None else problem.b[0, :] > 0)
    else:
        u_full = expand(sk.u[0], rows, problem.a.shape[1])
        v_full = expand(sk.v[0], cols, problem.b.shape[1])
    return make_result(
        problem,
        u_full,
        v_full,
        error=sk.errors(),
        tol=tol,
        n_iter=np.array([warm_iterations + newton.n_sinkhorn]),
        n_newton=newton.n_newton,
        history=history,
        info={"engine": engine, "fallbacks": newton.failures, **info},
        warn=warn,
        solver=solver,
    )


def sinkhorn_newton(
    a: Any,
    b: Any,
    C: Any,
    reg: float,
    *,
    tol: float | None = None,
    maxiter: int = 200,
    init: Any = None,
    normalize: bool = False,
    cg_maxiter: int | None = None,
    check_every: int = 10,
    warn: bool = True,
    engine: str | None = None,
) -> OTResult:
    """Entropic optimal transport by Newton's method on the dual (Sinkhorn–Newton).

    Each step solves the Newton system of the dual with the Hessian applied
    matrix-free (two products with the plan per CG iteration), by CG with a
    Jacobi preconditioner on the Schur complement, and takes an Armijo
    backtracking step along it, so the dual increases at every step.
    Locally quadratic convergence, at ``O(n m)`` per CG iteration.

    Parameters
    ----------
    a, b : array_like, shape (n,) and (m,)
        Non-negative marginals with equal totals.
    C : array_like, shape (n, m)
        Finite cost matrix.
    reg : float
        Entropic regularization ``ε > 0``.
    tol : float, optional
        Stop when the L1 error of both marginals is ``<= tol`` (default
        1e-9 in float64, 1e-5 in float32).
    maxiter : int
        Limit on Newton steps plus Sinkhorn iterations (one to start, and
        ``check_every`` per failed step).
    init : pair of array_like, optional
        Warm start ``(f, g)``.
    normalize : bool
        Rescale ``a`` and ``b`` to unit mass instead of requiring equal totals.
    cg_maxiter : int, optional
        CG iterations per Newton system (default ``m``).
    check_every : int
        Sinkhorn iterations run when a Newton step fails; on device data
        also the CG iterations between two of its convergence tests.
    warn : bool
        Emit :class:`linalg.ConvergenceWarning` if not converged.
    engine : {"auto", "reference", "numba", "cupy"}, optional
        Engine for the plan and log-sum-exp passes. CuPy arrays, GPU tensors
        and arrays of other array-API libraries are solved on their device:
        the Sinkhorn iterations are :func:`sinkhorn`'s device ones ("cupy":
        the fused passes of ``cuda/ot.cu``, "auto" for CuPy arrays; or
        "reference"), and the plan, its marginals, the Newton system (CG on
        the Schur complement, two products with the dense plan per
        iteration) and the line search stay on the device in the data's own
        namespace. The host reads a few scalars per Newton step: the error
        and dual once, the CG residuals every ``check_every`` iterations,
        the line search once per trial step. Results are in the caller's
        array type.

    Returns
    -------
    OTResult
        ``history`` has one entry per Newton step (entry 0 is the start):
        ``"dual"`` (non-decreasing), ``"marginal_error"``, ``"step"`` (the
        line-search step), ``"cg_iterations"``, ``"nnz"`` (entries of the
        plan in the Hessian), ``"seconds"`` (since the iterations started).
        ``info["fallbacks"]`` lists failed steps.

    Raises
    ------
    ValueError
        Negative marginals, totals that differ (unless ``normalize=True``),
        NaN or Inf in ``C``, ``reg <= 0``, shapes that do not match.

    Notes
    -----
    In ``u = f / reg``, ``v = g / reg`` the Newton system is
    ``[[diag(r), P], [Pᵀ, diag(c)]] (du, dv) = (a − r, b − c)`` with
    ``r = P1``, ``c = Pᵀ1``; ``du`` is eliminated, and the Schur complement
    ``diag(c) − Pᵀ diag(1/r) P`` is solved by CG to relative residual
    ``min(0.1, error)``. The null direction ``(1, −1)`` of the dual is
    removed by fixing ``g_m``: every step has ``dv_m = 0``. Zero-mass
    entries of ``a`` and ``b`` are removed before solving (their potentials
    are ``-inf``). The line search tests the dual's increase in a form free
    of cancellation (see ``history["dual"]`` for the values). A step that
    fails (no increase, CG breakdown) is replaced by ``check_every``
    Sinkhorn iterations and recorded in ``info["fallbacks"]``.

    References
    ----------
    .. [1] C. Brauer, C. Clason, D. Lorenz and B. Wirth, "A Sinkhorn–Newton
       method for entropic optimal transport", arXiv:1710.06635, 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.ot import sinkhorn_newton
    >>> x = np.linspace(0.0, 1.0, 6)
    >>> C = (x[:, None] - x[None, :]) ** 2
    >>> a = np.full(6, 1 / 6)
    >>> res = sinkhorn_newton(a, a, C, 0.01)
    >>> res.converged, bool(np.all(np.diff(res.history["dual"]) >= 0))
    (True, True)
    """
    problem = prepare_problem(a, b, C, reg, normalize=normalize, batched=False, anywhere=True)
    tol, impl = check_common(
        problem, tol=tol, maxiter=maxiter, check_every=check_every, warn=warn, engine=engine
    )
    check_int(cg_maxiter, "cg_maxiter", low=1, allow_none=True)

    def one_sinkhorn_iteration(sk: LogSinkhorn) -> tuple[int, dict]:
        sk.run(np.zeros(1, dtype=np.int64), tol=0.0, maxiter=1, check_every=1)
        return 1, {}

    return solve_newton(
        problem,
        init,
        impl,
        tol=tol,
        maxiter=maxiter,
        check_every=check_every,
        cg_maxiter=cg_maxiter,
        warn=warn,
        solver="sinkhorn_newton",
        warmup=one_sinkhorn_iteration,
        offdiagonal=(lambda P, r: (P, math.prod(P.shape))) if problem.on_device else lambda P, r: P,
        on_failure=lambda reason: None,
        info={},
        engine=engine,
    )
