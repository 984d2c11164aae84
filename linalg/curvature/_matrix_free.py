"""Inverse-Hessian vector products from a Hessian-vector product alone.

Both routines take ``hvp``, any callable ``v -> H v`` in the caller's array
type (a PyTorch double-backward closure works unchanged: it receives and
returns torch tensors), and solve ``(H + damping I) x = v``: :func:`ihvp_cg`
by conjugate gradients, :func:`ihvp_lissa` by the truncated Neumann series
of LiSSA. The damping term is added in the caller's array type, inside the
callable, so no vector makes an extra trip through NumPy.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from linalg._core.namespace import to_numpy
from linalg._core.operators import Operator
from linalg._core.results import ConvergenceWarning, LinAlgError, SolveResult
from linalg._core.validate import (
    as_float_array,
    check_bool,
    check_callable,
    check_int,
    check_real,
    float_input,
)
from linalg.solvers import cg
from linalg.solvers._common import callback_caller, column_norms, finish, prepare_system

__all__ = ["ihvp_cg", "ihvp_lissa"]

# A convergent LiSSA recursion has ||x_j|| <= (j + 1) ||v||; past this many
# times ||v|| (or (depth + 1) ||v||, if larger) it has certainly diverged.
_DIVERGED = 1e8


def _check_hvp_and_v(hvp: Any, v: Any, damping: Any, *, anywhere: bool = False) -> float:
    """Validate what both routines share, naming the arguments; return ``damping``.
    With ``anywhere``, ``v`` may be device data (CuPy, a GPU tensor)."""
    check_callable(hvp, "hvp", allow_none=False)
    damping = check_real(damping, "damping", low=0.0)
    if anywhere:
        float_input(v, "v", ndim=(1, 2))
    else:
        as_float_array(to_numpy(v, "v"), "v", ndim=(1, 2))
    return damping


def _damped(hvp: Callable, damping: float) -> Callable:
    """``u -> H u + damping u``, computed in ``u``'s own array type."""

    def apply(u: Any) -> Any:
        hu = hvp(u)
        shape = getattr(hu, "shape", None)
        if shape is None or tuple(shape) != tuple(u.shape):
            raise ValueError(
                f"hvp returned {type(hu).__name__} of shape {shape} for a vector of shape "
                f"{tuple(u.shape)}; it must return H v, an array shaped like v"
            )
        return hu if damping == 0.0 else hu + damping * u

    return apply


def ihvp_cg(
    hvp: Callable,
    v: Any,
    *,
    damping: float,
    rtol: float = 1e-6,
    maxiter: int | None = None,
    M: Any = None,
    callback: Callable | None = None,
    warn: bool = True,
    engine: str | None = None,
) -> SolveResult:
    """Solve ``(H + damping I) x = v`` by conjugate gradients on a Hessian-vector product.

    Parameters
    ----------
    hvp : callable
        ``u -> H u`` for a symmetric ``H`` of size ``d``. It receives vectors
        of shape ``(d,)`` in ``v``'s array type (torch tensors for a torch
        ``v``) and must return the same type and shape.
    v : array_like, shape (d,) or (d, k)
        Right-hand side(s); NumPy, or torch / JAX tensors on the CPU. A CuPy
        array or GPU tensor is solved on its device by :func:`linalg.solvers.cg`'s
        device iteration: ``hvp`` then receives vectors on that device.
    damping : float
        ``λ >= 0``; ``H + λ I`` must be positive definite.
    rtol : float
        Column ``j`` has converged when ``||v_j - (H + λI) x_j|| <= rtol ||v_j||``.
    maxiter : int, optional
        Iteration limit (default ``10 d``).
    M : array_like, sparse matrix, LinearOperator, callable or Operator, optional
        Preconditioner, an SPD approximation of ``(H + λ I)⁻¹``.
    callback : callable, optional
        Called after every iteration with the current iterate.
    warn : bool
        Emit :class:`linalg.ConvergenceWarning` if a column did not converge.
    engine : {"auto", "reference", "numba"}, optional
        Engine of :func:`linalg.solvers.cg`'s vector updates.

    Returns
    -------
    SolveResult
        :func:`linalg.solvers.cg`'s result: ``x`` in ``v``'s array type,
        ``residual_norm`` is ``||v - (H + λ I) x||``.

    Raises
    ------
    linalg.LinAlgError
        If ``H + λ I`` is found not positive definite (raise ``damping``), or
        ``hvp`` returns NaN or Inf.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.curvature import ihvp_cg
    >>> H = np.array([[2.0, 1.0], [1.0, -0.5]])  # indefinite
    >>> res = ihvp_cg(lambda u: H @ u, np.ones(2), damping=1.0, rtol=1e-12)
    >>> bool(np.allclose(res.x, np.linalg.solve(H + np.eye(2), np.ones(2))))
    True
    """
    damping = _check_hvp_and_v(hvp, v, damping, anywhere=True)
    try:
        return cg(
            _damped(hvp, damping),
            v,
            rtol=rtol,
            maxiter=maxiter,
            M=M,
            callback=callback,
            warn=warn,
            engine=engine,
        )
    except LinAlgError as exc:
        # cg names its operator A; a non-finite product or an indefinite M stays as it is
        if "A is not positive definite" not in str(exc):
            raise
        raise LinAlgError(
            f"ihvp_cg: H + damping I is not positive definite; increase damping "
            f"(damping = {damping:g} now; {exc})"
        ) from exc


def ihvp_lissa(
    hvp: Callable,
    v: Any,
    *,
    damping: float,
    scale: float,
    depth: int,
    repeats: int = 1,
    rtol: float = 1e-6,
    callback: Callable | None = None,
    warn: bool = True,
) -> SolveResult:
    """Approximate ``(H + damping I)⁻¹ v`` by LiSSA, a truncated Neumann series.

    With ``A = H + λ I`` and ``s = scale``, the recursion
    ``x_0 = v``, ``x_{j+1} = v + (I - A / s) x_j`` converges to ``s A⁻¹ v``
    when every eigenvalue of ``A`` lies in ``(0, s]``, and ``x_j / s`` is
    returned (Agarwal, Bullins and Hazan, JMLR 2017; used for influence
    functions by Koh and Liang, ICML 2017). Each step multiplies the error by
    at most ``1 - λ_min(A) / s``.

    Parameters
    ----------
    hvp : callable
        ``u -> H u``, called with vectors of shape ``(d,)`` in ``v``'s array
        type. It may be stochastic (a mini-batch Hessian drawing its own batch
        on every call); ``repeats`` then averages independent recursions.
    v : array_like, shape (d,) or (d, k)
        Right-hand side(s); NumPy, or torch / JAX tensors on the CPU.
    damping : float
        ``λ >= 0``; ``H + λ I`` must be positive definite.
    scale : float
        ``s > 0``, at least the largest eigenvalue of ``H + λ I``.
    depth : int
        The most recursion steps; each costs ``repeats`` products per column.
    repeats : int
        Independent recursions, run side by side and averaged.
    rtol : float
        A column stops once the relative size of the last update of the
        (averaged) iterate, ``||x_{j+1} - x_j|| / ||x_{j+1}||``, is at most
        ``rtol``. Its remaining error is then about ``rtol s / λ_min(A)``
        relative.
    callback : callable, optional
        Called after every step with the current estimate of ``A⁻¹ v``.
    warn : bool
        Emit :class:`linalg.ConvergenceWarning` if a column did not meet
        ``rtol`` within ``depth`` steps.

    Returns
    -------
    SolveResult
        ``x`` in ``v``'s array type; ``converged``; ``n_iter``, the steps
        taken; ``residual_norm``, the last relative update size; ``history``,
        the relative update sizes (the first, ``x_0 = v``, counts as 1),
        shape ``(n_iter + 1,)`` or ``(max n_iter + 1, k)``; ``info``.

    Raises
    ------
    linalg.LinAlgError
        If the recursion diverges (``||x_j||`` exceeds ``1e8 ||v||``):
        ``scale`` is below the largest eigenvalue of ``H + λ I``, or
        ``H + λ I`` is not positive definite; or ``hvp`` returns NaN or Inf.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.curvature import ihvp_lissa
    >>> H = np.diag([1.0, 2.0, 4.0])
    >>> res = ihvp_lissa(lambda u: H @ u, np.ones(3), damping=0.5, scale=5.0,
    ...                  depth=500, rtol=1e-12)
    >>> res.converged, bool(np.allclose(res.x, 1.0 / np.array([1.5, 2.5, 4.5])))
    (True, True)
    """
    damping = _check_hvp_and_v(hvp, v, damping)
    scale = check_real(scale, "scale", low=0.0, low_inclusive=False)
    depth = check_int(depth, "depth", low=1)
    repeats = check_int(repeats, "repeats", low=1)
    rtol = check_real(rtol, "rtol", low=0.0)
    check_callable(callback, "callback")
    check_bool(warn, "warn")
    system = prepare_system(_damped(hvp, damping), v)
    report = callback_caller(callback, system)
    X, converged, n_iter, update, history = _recursion(
        system.A, system.B, scale=scale, depth=depth, repeats=repeats, rtol=rtol, report=report
    )
    if warn and not converged.all():
        warnings.warn(
            f"ihvp_lissa did not converge in depth={depth} steps (relative update "
            f"{float(update.max()):.3g} > rtol={rtol:g}); increase depth, or lower scale "
            "towards the largest eigenvalue of H + damping I",
            ConvergenceWarning,
            stacklevel=2,
        )
    info = {"scale": scale, "repeats": repeats}
    return finish(
        system,
        X,
        converged=converged,
        n_iter=n_iter,
        residual_norm=update,
        history=history,
        info=info,
        warn=False,
        solver="ihvp_lissa",
    )


def _recursion(
    A: Operator,
    V: np.ndarray,
    *,
    scale: float,
    depth: int,
    repeats: int,
    rtol: float,
    report: Callable | None,
) -> tuple[np.ndarray, ...]:
    """Run ``repeats`` LiSSA recursions per column of ``V``; columns stop on their own."""
    k = V.shape[1]
    v_norm = column_norms(V)
    limit = max(_DIVERGED, depth + 1.0) * v_norm
    X = np.repeat(V[None], repeats, axis=0)  # (repeats, d, k), x_0 = v
    update = np.where(v_norm > 0, 1.0, 0.0)
    converged = update <= rtol
    n_iter = np.zeros(k, dtype=np.int64)
    history = [update.copy()]
    active = np.flatnonzero(~converged)
    for step in range(1, depth + 1):
        if not active.size:
            break
        Va = V[:, active]
        U = np.stack([Va - _product(A, Xr, step) / scale for Xr in X[:, :, active]])
        Xa = X[:, :, active] + U
        X[:, :, active] = Xa
        _check_bounded(Xa, limit[active], step, scale)
        x_norm = column_norms(Xa.mean(axis=0))
        u_norm = column_norms(U.mean(axis=0))
        update[active] = u_norm / np.maximum(x_norm, np.finfo(np.float64).tiny)
        n_iter[active] = step
        history.append(update.copy())
        if report is not None:
            report(X.mean(axis=0) / scale)
        done = update[active] <= rtol
        converged[active[done]] = True
        active = active[~done]
    return X.mean(axis=0) / scale, converged, n_iter, update, np.array(history)


def _product(A: Operator, X: np.ndarray, step: int) -> np.ndarray:
    out = A.matmat(np.ascontiguousarray(X))
    if not np.isfinite(out).all():
        raise LinAlgError(f"ihvp_lissa: hvp returned NaN or Inf at step {step}")
    return out


def _check_bounded(X: np.ndarray, limit: np.ndarray, step: int, scale: float) -> None:
    """Raise if any recursion (any repeat, any column) has outgrown ``limit``."""
    norms = np.sqrt(np.einsum("rij,rij->rj", X, X, dtype=np.float64))
    if (norms > limit).any():
        raise LinAlgError(
            f"ihvp_lissa: the recursion diverged at step {step} (||x|| grew past "
            f"{_DIVERGED:g} ||v||); scale = {scale:g} is too small: it must exceed the "
            "largest eigenvalue of H + damping I (and H + damping I must be positive definite)"
        )
