"""MINRES on data that lives off the host (CuPy, GPU tensors), all columns at once.

The host solver (``_minres.py``) runs one column after another. Here the ``k``
columns iterate together on ``(n, k)`` blocks: one product of ``A`` (and of
``M``) with a block per iteration, and every Lanczos and Givens scalar of the
host's recurrence kept as a float64 device array of shape ``(k,)``. A column
that stops is frozen by masking: its ``x`` no longer changes, and its
divisions are by infinity, so its Lanczos vectors become zeros.

Where the host decides at once, so does the device, without the host: a
column whose projected matrix looks singular, or whose Lanczos process breaks
down (``beta = 0``), stops by itself. The host looks only every
``check_every`` iterations (and at ``maxiter``), in one transfer of ``O(k)``
numbers: it raises on NaN or an indefinite ``M``, and a column whose residual
estimate meets its goal gets the host's true-residual check (one more product
with ``A``, on those columns only, and a second transfer). The host solver
applies its estimate test only every ``check_every`` iterations too, so a
column takes the same iterations on both, where the rounding allows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from linalg._core.namespace import numpy_dtype
from linalg._core.results import SolveResult
from linalg.solvers._common import check_residual_finite
from linalg.solvers._device import (
    BlockOperator,
    DeviceSystem,
    check_engine,
    column_dots,
    column_norms,
    fetch,
    prepare,
    scaled,
)
from linalg.solvers._minres import check_spd, minres_result

__all__ = ["device_minres"]

RUNNING, SINGULAR, BREAKDOWN = 0, 1, 2


@dataclass
class _HostView:
    """What the host knows of every column between its looks."""

    targets: np.ndarray
    checked: np.ndarray  # the last true residual norm (at first: the initial one)
    goal: np.ndarray  # the estimate's goal: the target, tightened after a failed check
    reasons: list[str | None]
    true_norm: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.true_norm = np.full(self.targets.shape, np.nan)

    @property
    def active(self) -> np.ndarray:
        return np.array([reason is None for reason in self.reasons])

    def stop(self, j: int, reason: str, rnorm: float = np.nan) -> None:
        self.reasons[j] = reason
        self.true_norm[j] = rnorm


def device_minres(
    A: Any,
    b: Any,
    *,
    x0: Any,
    shift: float,
    rtol: float,
    atol: float,
    maxiter: int | None,
    M: Any,
    callback: Callable | None,
    check_every: int,
    warn: bool,
    engine: str | None,
) -> SolveResult:
    """:func:`~linalg.solvers.minres` for ``b`` off the host (options already checked)."""
    check_engine(engine, "minres", b)
    system = prepare(A, b, x0, M)
    op = system.A if shift == 0.0 else system.A.shifted(shift)
    maxiter = 5 * system.B.shape[0] if maxiter is None else maxiter
    targets = np.maximum(rtol * fetch(system.xp, column_norms(system.xp, system.B))[0], atol)
    outcome = _iterate(
        system, op, targets=targets, maxiter=maxiter, check_every=check_every, callback=callback
    )
    return minres_result(system, *outcome, "reference", warn)


def _iterate(
    system: DeviceSystem,
    A: BlockOperator,
    *,
    targets: np.ndarray,
    maxiter: int,
    check_every: int,
    callback: Callable | None,
) -> tuple[Any, list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Preconditioned MINRES on every column of ``system.B`` with the operator ``A``.

    Returns ``(X, stop reasons, n_iter, true residual norms, estimate history)``,
    ``X`` on the device and the rest on the host.
    """
    xp, M, B = system.xp, system.M, system.B
    dtype, k, device = B.dtype, B.shape[1], system.device
    X = system.start()
    R = B if system.X0 is None else system.residual(X, A)
    rnorm = column_norms(xp, R)
    Y = R if M is None else M.matmat(R)
    beta2 = column_dots(xp, R, Y)
    rnorm0, beta2_0 = fetch(xp, rnorm, beta2)
    check_residual_finite(rnorm0, 0, "minres")
    view = _HostView(targets, rnorm0, targets.copy(), [None] * k)
    for j in np.flatnonzero(rnorm0 <= targets):
        view.stop(j, "converged", rnorm0[j])
    check_spd(np.where(view.active, beta2_0, 0.0), "at iteration 0")

    zeros = xp.zeros(k, dtype=xp.float64, device=device)
    infinity = zeros + np.inf
    running = xp.asarray(view.active, device=device)
    code = xp.zeros(k, dtype=xp.int64, device=device)
    n_iter = xp.zeros(k, dtype=xp.int64, device=device)
    beta, old_beta = xp.sqrt(xp.maximum(beta2, zeros)), zeros
    R1, R2 = xp.zeros_like(R), R
    W1, W2 = xp.zeros_like(R), xp.zeros_like(R)
    res = None if M is None else R
    phibar, cs, sn, dbar, eps = beta, zeros - 1.0, zeros, zeros, zeros
    gmax, gmin = zeros, infinity
    condlim = 1.0 / float(np.finfo(numpy_dtype(dtype)).eps)
    finite, spd_worst = xp.ones(k, dtype=xp.bool, device=device), infinity
    estimate, history = rnorm, [rnorm]

    def frozen(divisor: Any) -> Any:
        """A divisor, infinite in stopped columns (their vectors become zeros)."""
        return xp.where(running, divisor, infinity)

    for iteration in range(1, maxiter + 1):
        if not view.active.any():
            break
        # Lanczos: A v_k = beta_{k+1} q_{k+1} + alpha_k q_k + beta_k q_{k-1}.
        V = Y / xp.astype(frozen(beta), dtype)
        Y = A.matmat(V)
        if iteration > 1:
            Y = Y - scaled(xp, R1, beta / frozen(old_beta))
        alpha = column_dots(xp, V, Y)
        Y = Y - scaled(xp, R2, alpha / frozen(beta))
        R1, R2 = R2, Y
        Y = R2 if M is None else M.matmat(R2)
        beta2 = column_dots(xp, R2, Y)
        spd_worst = xp.minimum(spd_worst, xp.where(running, beta2, infinity))
        old_beta, beta = beta, xp.sqrt(xp.maximum(beta2, zeros))
        # QR of the tridiagonal matrix: old rotations, then a new one.
        old_eps = eps
        delta, gbar = cs * dbar + sn * alpha, sn * dbar - cs * alpha
        eps, dbar = sn * beta, -cs * beta
        gamma = xp.hypot(gbar, beta)
        finite = finite & (xp.isfinite(gamma) | ~running)
        gmax, gmin = xp.maximum(gmax, gamma), xp.minimum(gmin, gamma)
        singular = running & (gmax >= condlim * gmin)  # Paige & Saunders' Acond
        code = xp.where(singular, SINGULAR, code)
        running = running & ~singular
        gamma = frozen(gamma)
        cs, sn = gbar / gamma, beta / gamma
        phi, phibar = cs * phibar, sn * phibar
        W1, W2 = (V - scaled(xp, W2, old_eps) - scaled(xp, W1, delta)) / xp.astype(gamma, dtype), W1
        X = xp.where(running, X + scaled(xp, W1, phi), X)
        if res is None:
            new_estimate = phibar
        else:
            positive = beta > 0.0
            coef = xp.where(positive, phibar * cs / xp.where(positive, beta, infinity), zeros)
            res = scaled(xp, res, sn * sn) - scaled(xp, R2, coef)
            new_estimate = column_norms(xp, res)
        estimate = xp.where(running, new_estimate, estimate)
        history.append(estimate)
        finite = finite & (xp.isfinite(estimate) | ~running)
        n_iter = n_iter + xp.astype(running, xp.int64)
        breakdown = running & (beta == 0.0)  # stops after the host's look at its estimate
        code = xp.where(breakdown, BREAKDOWN, code)
        running = running & ~breakdown
        if callback is not None:
            callback(system.caller_shape(X))
        if iteration % check_every == 0 or iteration == maxiter:
            looked = fetch(xp, estimate, code, finite, spd_worst)  # the host synchronization
            _look(system, A, view, X, *looked, iteration)
            running = running & xp.asarray(view.active, device=device)
    for j in np.flatnonzero(view.active):
        view.stop(j, "maxiter")
    missing = np.flatnonzero(np.isnan(view.true_norm))
    view.true_norm[missing] = _true_norms(system, A, X, missing)
    n_iter, history = fetch(xp, n_iter, xp.stack(history))
    n_iter = n_iter.astype(np.int64)
    return X, view.reasons, n_iter, view.true_norm, history[: int(n_iter.max()) + 1]


def _look(
    system: DeviceSystem,
    A: BlockOperator,
    view: _HostView,
    X: Any,
    estimates: np.ndarray,
    codes: np.ndarray,
    finite: np.ndarray,
    spd_worst: np.ndarray,
    iteration: int,
) -> None:
    """The host's look: errors first, then the host solver's tests on every active
    column, in its order (the estimate's test, then a breakdown)."""
    check_residual_finite(np.where(finite > 0, 0.0, np.nan), iteration, "minres", at_or_before=True)
    check_spd(spd_worst, f"at or before iteration {iteration}")
    active = view.active
    candidates = np.flatnonzero(active & (estimates <= view.goal) & (codes != SINGULAR))
    true = _true_norms(system, A, X, candidates)
    for j, rnorm in zip(candidates, true, strict=True):
        if rnorm <= view.targets[j]:
            view.stop(j, "converged", rnorm)
        elif rnorm >= view.checked[j]:
            view.stop(j, "stagnated", rnorm)
        else:
            view.goal[j] = estimates[j] * view.targets[j] / rnorm
            view.checked[j] = rnorm
    for j in np.flatnonzero(active & (codes != RUNNING)):
        if view.reasons[j] is None:
            view.stop(j, "singular" if codes[j] == SINGULAR else "stagnated")


def _true_norms(system: DeviceSystem, A: BlockOperator, X: Any, columns: np.ndarray) -> np.ndarray:
    """``||b_j - A x_j||`` for the given columns (none: no work, no transfer)."""
    xp = system.xp
    if columns.size == 0:
        return np.zeros(0)
    if columns.size == X.shape[1]:
        return fetch(xp, column_norms(xp, system.residual(X, A)))[0]
    index = xp.asarray(columns, device=system.device)
    Xj, Bj = xp.take(X, index, axis=1), xp.take(system.B, index, axis=1)
    return fetch(xp, column_norms(xp, Bj - A.matmat(Xj)))[0]
