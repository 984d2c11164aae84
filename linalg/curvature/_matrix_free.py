"""Inverse-Hessian vector products from a Hessian-vector product alone.

Both routines take ``hvp``, any callable ``v -> H v`` in the caller's array
type (a PyTorch double-backward closure works unchanged: it receives and
returns torch tensors), and solve ``(H + damping I) x = v``: :func:`ihvp_cg`
by conjugate gradients, :func:`ihvp_lissa` by the truncated Neumann series
of LiSSA. The damping term is added in the caller's array type, inside the
callable, so no vector makes an extra trip through NumPy. Device data (a
CuPy array, a GPU tensor, an array of another array-API library) is solved
where it lives, through its own namespace: ``hvp`` then receives vectors on
that device.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from linalg._core.namespace import array_kind, device_of, namespace_of
from linalg._core.results import ConvergenceWarning, LinAlgError, SolveResult
from linalg._core.validate import (
    check_bool,
    check_callable,
    check_int,
    check_real,
    float_input,
)
from linalg.curvature._callables import checked_product
from linalg.solvers import cg
from linalg.solvers._common import callback_caller, finish, prepare_system
from linalg.solvers._device import column_norms, fetch, prepare

__all__ = ["ihvp_cg", "ihvp_lissa"]

# A convergent LiSSA recursion has ||x_j|| <= (j + 1) ||v||; past this many
# times ||v|| (or (depth + 1) ||v||, if larger) it has certainly diverged.
_DIVERGED = 1e8
# The floor of ||x|| in the relative update size ||x_{j+1} - x_j|| / ||x_{j+1}||.
_TINY = float(np.finfo(np.float64).tiny)


def _check_hvp_and_v(hvp: Any, v: Any, damping: Any) -> float:
    """Validate what both routines share, naming the arguments; return ``damping``.
    ``v`` may be host or device data (CuPy, a GPU tensor)."""
    check_callable(hvp, "hvp", allow_none=False)
    damping = check_real(damping, "damping", low=0.0)
    float_input(v, "v", ndim=(1, 2))
    return damping


def _damped(hvp: Callable, damping: float) -> Callable:
    """``u -> H u + damping u``, computed in ``u``'s own array type."""

    def apply(u: Any) -> Any:
        remedy = "pass an hvp that computes on v's device, or move v to the host"
        hu = checked_product(hvp(u), u, "hvp", remedy=remedy)
        return hu if damping == 0.0 else hu + damping * u

    return apply


def _system(A: Callable, v: Any) -> Any:
    """``A X = V`` validated where ``v`` lives: NumPy for host data (a
    :class:`~linalg.solvers._common.LinearSystem`), else ``v``'s namespace."""
    if array_kind(v).via_namespace:
        return prepare(A, v, None, None)
    return prepare_system(A, v)


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
    damping = _check_hvp_and_v(hvp, v, damping)
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
    check_every: int = 1,
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
        Right-hand side(s); NumPy, or torch / JAX tensors on the CPU. A CuPy
        array or GPU tensor (or an array of another array-API library) is
        solved where it lives, through its own namespace: ``hvp`` receives
        vectors on that device and must return them there (see Notes).
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
    check_every : int
        Test for convergence, divergence and NaN every this many steps (and
        at ``depth``): each test is a host synchronization on a device, and a
        column may then run up to ``check_every - 1`` steps past its
        tolerance.
    callback : callable, optional
        Called after every step with the current estimate of ``A⁻¹ v``, in
        ``v``'s array type and shape.
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
        Both are found at the next test, and the message says "at or before"
        that step when ``check_every > 1``.

    Notes
    -----
    One recursion runs for every column, NumPy or device data alike: the
    iterates stay in ``v``'s namespace, and the host looks only at the
    per-column update sizes and two flags (a NaN, a divergence), in one
    transfer per test. A column that has stopped leaves the block at that
    test, so ``hvp`` is called ``repeats`` times per step for every column
    still running, and no more.

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
    check_every = check_int(check_every, "check_every", low=1)
    check_callable(callback, "callback")
    check_bool(warn, "warn")
    system = _system(_damped(hvp, damping), v)
    recursion = _Recursion(system.A, system.B, scale=scale, repeats=repeats, depth=depth)
    X, converged, n_iter, update, history = recursion.run(
        rtol=rtol, check_every=check_every, report=callback_caller(callback, system)
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


class _Recursion:
    """``repeats`` LiSSA recursions per column of ``V``, in ``V``'s namespace.

    The recursions of the columns still running sit side by side in one
    block ``X`` of shape ``(d, repeats * a)`` (repeat ``r`` of the ``i``-th
    running column is column ``r a + i``), so a dense ``A`` makes one product
    per step. ``columns`` (host) numbers the running columns; the estimates
    of the stopped ones are kept in ``estimates``, one vector per column.
    """

    def __init__(self, A: Any, V: Any, *, scale: float, repeats: int, depth: int) -> None:
        self.A, self.scale, self.repeats, self.depth = A, scale, repeats, depth
        self.xp, self.device = namespace_of(V), device_of(V)
        (v_norm,) = fetch(self.xp, column_norms(self.xp, V))
        self.first_update = np.where(v_norm > 0, 1.0, 0.0)  # x_0 = v counts as 1
        self.estimates = [V[:, j] / scale for j in range(V.shape[1])]  # x_0 = v
        self.columns = np.arange(V.shape[1])
        self.X = self.V = self.xp.tile(V, (1, repeats))  # every repeat starts at v
        self.all_limits = max(_DIVERGED, depth + 1.0) * v_norm
        self.limits = self.xp.asarray(self.all_limits, device=self.device)

    def run(self, *, rtol: float, check_every: int, report: Callable | None) -> tuple:
        """Iterate until every column meets ``rtol`` or ``depth`` steps; return
        ``(X, converged, n_iter, update, history)`` (``X`` in ``V``'s namespace)."""
        xp = self.xp
        converged = self.first_update <= rtol
        n_iter = np.zeros(len(converged), dtype=np.int64)
        history = [self.first_update]
        self._keep(~converged)
        no = xp.asarray(False, device=self.device)
        nonfinite, diverged, pending, step = no, no, [], 0
        while self.columns.size and step < self.depth:
            step += 1
            U = self.V - self.A.matmat(self.X) / self.scale
            self.X = self.X + U
            nonfinite = nonfinite | ~xp.all(xp.isfinite(U))
            diverged = diverged | xp.any(self._by_repeat(column_norms(xp, self.X)) > self.limits)
            mean = self._mean(self.X)
            size = column_norms(xp, self._mean(U)) / xp.maximum(column_norms(xp, mean), _TINY)
            pending.append(size)
            if report is not None:
                report(self._estimate(mean))
            if step % check_every == 0 or step == self.depth:
                nonfinite_now, diverged_now, *sizes = fetch(xp, nonfinite, diverged, *pending)
                self._check(bool(nonfinite_now), bool(diverged_now), step, check_every)
                for row in sizes:
                    history.append(history[-1].copy())
                    history[-1][self.columns] = row
                n_iter[self.columns] = step
                done = sizes[-1] <= rtol
                converged[self.columns[done]] = True
                for i in np.flatnonzero(done):
                    self.estimates[self.columns[i]] = mean[:, i] / self.scale
                self._keep(~done)
                pending = []
        X = self._estimate(self._mean(self.X))
        return X, converged, n_iter, history[-1], np.array(history)

    def _keep(self, running: np.ndarray) -> None:
        """Keep the running columns flagged in ``running`` (a host mask over ``columns``)."""
        if running.all():
            return
        xp, a, kept = self.xp, self.columns.size, np.flatnonzero(running)
        self.columns = self.columns[kept]
        repeats = (np.arange(self.repeats)[:, None] * a + kept).ravel()
        repeats = xp.asarray(repeats, device=self.device)
        self.X, self.V = xp.take(self.X, repeats, axis=1), xp.take(self.V, repeats, axis=1)
        self.limits = xp.asarray(self.all_limits[self.columns], device=self.device)

    def _by_repeat(self, values: Any) -> Any:
        """``(repeats * a,)`` per-column values as ``(repeats, a)``."""
        return self.xp.reshape(values, (self.repeats, -1))

    def _mean(self, X: Any) -> Any:
        """The average over the repeats of ``X``, ``(d, repeats * a) -> (d, a)``."""
        if self.repeats == 1:
            return X
        return self.xp.mean(self.xp.reshape(X, (X.shape[0], self.repeats, -1)), axis=1)

    def _estimate(self, mean: Any) -> Any:
        """The ``(d, k)`` estimate of ``A⁻¹ V``: stopped columns as they stopped, the
        running ones from the average of their iterates, ``mean``."""
        estimates = list(self.estimates)
        for i, j in enumerate(self.columns):
            estimates[j] = mean[:, i] / self.scale
        return self.xp.stack(estimates, axis=1)

    def _check(self, nonfinite: bool, diverged: bool, step: int, check_every: int) -> None:
        """Raise if ``hvp`` returned NaN or Inf, or a recursion outgrew its limit."""
        when = "at" if check_every == 1 else "at or before"
        if nonfinite:
            raise LinAlgError(f"ihvp_lissa: hvp returned NaN or Inf {when} step {step}")
        if diverged:
            raise LinAlgError(
                f"ihvp_lissa: the recursion diverged {when} step {step} (||x|| grew past "
                f"{_DIVERGED:g} ||v||); scale = {self.scale:g} is too small: it must exceed the "
                "largest eigenvalue of H + damping I (and H + damping I must be positive definite)"
            )
