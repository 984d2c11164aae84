"""Options shared by the OT solvers: tolerances, warm starts, engines, results."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from linalg._core.engines import select
from linalg._core.namespace import NUMPY, to_caller, to_numpy
from linalg._core.results import ConvergenceWarning
from linalg._core.validate import as_float_array, check_bool, check_int, check_real, float_input
from linalg.ot._problem import Problem
from linalg.ot._result import OTResult

# Default L1 marginal tolerance by dtype: float32 sums of n entries carry ~n eps.
DEFAULT_TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-9}


def check_common(
    problem: Problem, *, tol: Any, maxiter: Any, check_every: Any, warn: Any, engine: Any
) -> tuple[float, Any]:
    """Validate the options every solver takes; return ``tol`` and the engine's implementation."""
    tol = DEFAULT_TOL[problem.dtype] if tol is None else check_real(tol, "tol", low=0.0)
    check_int(maxiter, "maxiter", low=1)
    check_int(check_every, "check_every", low=1)
    check_bool(warn, "warn")
    if problem.on_device:  # the device solver picks its half-step itself
        return tol, None
    impl = select("ot.kernels", engine=engine, kind=NUMPY, dtype=problem.dtype)
    return tol, impl


def initial_potentials(problem: Problem, init: Any) -> tuple[Any, Any]:
    """Scaled potentials ``(u, v)``, ``(batch, n)`` and ``(batch, m)``: zeros or ``init / reg``."""
    a, b, xp = problem.a, problem.b, problem.xp
    if init is None:
        return xp.zeros_like(a), xp.zeros_like(b)
    if not isinstance(init, tuple | list) or len(init) != 2:
        raise TypeError(f"init must be a pair (f, g) of potentials, got {type(init).__name__}")
    scaled = []
    for name, value, like in (("init[0]", init[0], a), ("init[1]", init[1], b)):
        if problem.on_device:
            x = xp.astype(float_input(value, name, finite=False)[0], like.dtype, copy=False)
        else:
            x = as_float_array(to_numpy(value, name), name, dtype=problem.dtype, finite=False)
        if bool(xp.any(xp.isnan(x))) or bool(xp.any(x == xp.inf)):
            raise ValueError(f"{name} contains NaN or +Inf; potentials must be finite or -inf")
        shape = tuple(like.shape) if problem.batched else tuple(like.shape[1:])
        if tuple(x.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
        scaled.append(xp.reshape(x, tuple(like.shape)) / problem.reg)
    return scaled[0], scaled[1]


def make_result(
    problem: Problem,
    u: np.ndarray,
    v: np.ndarray,
    *,
    error: np.ndarray,
    tol: float,
    n_iter: np.ndarray,
    n_newton: int,
    history: dict[str, np.ndarray],
    info: dict[str, Any],
    warn: bool,
    solver: str,
) -> OTResult:
    """Assemble an :class:`OTResult` (unbatching a single problem) and warn if not converged."""
    converged = error <= tol
    if warn and not converged.all():
        worst = float(np.max(error))
        warnings.warn(
            f"{solver} did not converge: L1 marginal error {worst:.3g} > tol {tol:.3g} after "
            f"{int(np.max(n_iter))} iterations and {n_newton} Newton steps; raise maxiter, "
            "or loosen tol",
            ConvergenceWarning,
            stacklevel=3,
        )
    reg = problem.reg
    scale = reg if problem.on_device else problem.dtype.type(reg)
    f, g = u * scale, v * scale
    C = problem.C
    if not problem.batched:
        f, g, C = f[0, ...], g[0, ...], C[0, ...]
        converged, error, n_iter = bool(converged[0]), float(error[0]), int(n_iter[0])
    return OTResult(
        f=to_caller(f, problem.kind),
        g=to_caller(g, problem.kind),
        converged=converged,
        n_iter=n_iter,
        n_newton=n_newton,
        marginal_error=error,
        history=history,
        info={"reg": reg, **info},
        C=C,
        reg=reg,
        kind=problem.kind,
    )
