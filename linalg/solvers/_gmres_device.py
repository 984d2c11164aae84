"""Restarted GMRES on data that lives off the host (CuPy, GPU tensors).

The host solver (``_gmres.py``) runs one column after another. Here the ``k``
columns run their cycles in lockstep on ``(n, k)`` blocks: the Krylov basis
is a list of blocks on the device, every entry of the Hessenberg matrix and
every Givens rotation is a float64 device array of shape ``(k,)``, and the
host's in-cycle tests (a vanishing column, a happy breakdown, the estimate
meeting the target, the cycle's length) run on the device at every
iteration. A column whose cycle ends is frozen: its next basis vector is
divided by infinity, so it becomes zeros. Its answer is therefore the host's,
whatever ``check_every`` is: that only sets how often the host asks whether
every column has ended its cycle.

At the end of a cycle the host receives the rotated Hessenberg matrices,
solves each column's small triangular system with LAPACK, and sends back the
``restart × k`` coefficients that combine the basis into the update; the true
residual ``B - A X`` follows on the device and its norms come to the host,
which makes the host solver's tests between cycles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular

from linalg._core.namespace import numpy_dtype
from linalg._core.results import SolveResult
from linalg.solvers._common import check_residual_finite
from linalg.solvers._device import (
    DeviceSystem,
    check_engine,
    column_dots,
    column_norms,
    fetch,
    prepare,
    scaled,
)
from linalg.solvers._gmres import gmres_result

__all__ = ["device_gmres"]


@dataclass
class _Columns:
    """The host's account of every column, across cycles."""

    rnorm: np.ndarray  # the true residual norm of the current x
    reasons: list[str | None] = field(init=False)
    histories: list[list[float]] = field(init=False)
    total: np.ndarray = field(init=False)  # inner iterations so far
    cycles: np.ndarray = field(init=False)
    previous: np.ndarray = field(init=False)  # the true residual norm a cycle ago

    def __post_init__(self) -> None:
        k = self.rnorm.size
        self.reasons = [None] * k
        self.histories = [[float(r)] for r in self.rnorm]
        self.total = np.zeros(k, dtype=np.int64)
        self.cycles = np.zeros(k, dtype=np.int64)
        self.previous = np.full(k, np.inf)

    @property
    def active(self) -> np.ndarray:
        return np.array([reason is None for reason in self.reasons])

    def test(self, targets: np.ndarray, maxiter: int) -> None:
        """The host solver's tests before each cycle."""
        for j in np.flatnonzero(self.active):
            check_residual_finite(self.rnorm[j], int(self.total[j]), "gmres")
            if self.rnorm[j] <= targets[j]:
                self.reasons[j] = "converged"
            elif self.rnorm[j] >= self.previous[j]:
                self.reasons[j] = "stagnated"
            elif self.total[j] >= maxiter:
                self.reasons[j] = "maxiter"


@dataclass
class _Cycle:
    """One cycle's outcome: the basis (device) and, on the host, per column the
    steps taken, the basis vectors used, the estimates, and the update's
    coefficients in the basis."""

    basis: list[Any]
    steps: np.ndarray
    used: np.ndarray
    estimates: np.ndarray
    coefficients: np.ndarray


def device_gmres(
    A: Any,
    b: Any,
    *,
    x0: Any,
    restart: int,
    rtol: float,
    atol: float,
    maxiter: int | None,
    M: Any,
    callback: Callable | None,
    check_every: int,
    warn: bool,
    engine: str | None,
) -> SolveResult:
    """:func:`~linalg.solvers.gmres` for ``b`` off the host (options already checked)."""
    check_engine(engine, "gmres", b)
    system = prepare(A, b, x0, M)
    xp, B = system.xp, system.B
    n = B.shape[0]
    maxiter = 10 * n if maxiter is None else maxiter
    size = min(restart, n)
    X = system.start()
    R = B if system.X0 is None else system.residual(X)
    bnorm, rnorm = fetch(xp, column_norms(xp, B), column_norms(xp, R))
    targets = np.maximum(rtol * bnorm, atol)
    columns = _Columns(rnorm)
    while True:
        columns.test(targets, maxiter)
        active = columns.active
        if not active.any():
            break
        sizes = np.minimum(size, maxiter - columns.total)
        cycle = _cycle(system, R, columns.rnorm, active, sizes, targets, check_every)
        columns.total += np.where(active, cycle.steps, 0)
        columns.cycles += active
        for j in np.flatnonzero(active):
            columns.histories[j] += cycle.estimates[: cycle.steps[j], j].tolist()
            if cycle.used[j] == 0:  # A M annihilated the residual's Krylov space
                columns.reasons[j] = "stagnated"
        X = X + _update(system, cycle)
        R = system.residual(X)
        moved = active & (cycle.used > 0)
        rnorm = fetch(xp, column_norms(xp, R))[0]
        columns.previous = np.where(moved, columns.rnorm, columns.previous)
        columns.rnorm = np.where(moved, rnorm, columns.rnorm)
        if callback is not None:
            callback(system.caller_shape(X))
    info = {"engine": "reference", "restart": restart}
    outcome = (columns.reasons, columns.total, columns.rnorm, columns.histories, columns.cycles)
    return gmres_result(system, X, *outcome, info, warn)


def _cycle(
    system: DeviceSystem,
    R: Any,
    rnorm: np.ndarray,
    active: np.ndarray,
    sizes: np.ndarray,
    targets: np.ndarray,
    check_every: int,
) -> _Cycle:
    """One Arnoldi cycle from ``R`` for the ``active`` columns, each up to its size."""
    xp, A, M, device = system.xp, system.A, system.M, system.device
    dtype, k = R.dtype, R.shape[1]
    zeros = xp.zeros(k, dtype=xp.float64, device=device)
    infinity = zeros + np.inf
    in_cycle = xp.asarray(active, device=device)
    size, target = xp.asarray(sizes, device=device), xp.asarray(targets, device=device)
    breakdown = float(np.finfo(numpy_dtype(dtype)).eps)
    beta = xp.asarray(rnorm, device=device)
    V = [R / xp.astype(xp.where(in_cycle, beta, infinity), dtype)]
    g, hessenberg, rotations, estimates = [beta], [], [], []
    steps = used = xp.zeros(k, dtype=xp.int64, device=device)
    finite = xp.ones(k, dtype=xp.bool, device=device)
    for j in range(int(sizes[active].max())):
        if j > 0 and j % check_every == 0 and not bool(xp.any(in_cycle)):  # synchronizes
            break
        W = A.matmat(V[j] if M is None else M.matmat(V[j]))
        scale = column_norms(xp, W)
        h = []
        for Vi in V:  # modified Gram–Schmidt
            h.append(column_dots(xp, W, Vi))
            W = W - scaled(xp, Vi, h[-1])
        h_next = column_norms(xp, W)
        for i, (c, s) in enumerate(rotations):
            h[i], h[i + 1] = c * h[i] + s * h[i + 1], c * h[i + 1] - s * h[i]
        gamma = xp.hypot(h[j], h_next)
        turned = gamma > 0.0  # else the column vanishes: the projected matrix is singular
        finite = finite & (xp.isfinite(gamma) | ~in_cycle)
        safe = xp.where(turned & in_cycle, gamma, infinity)
        c, s = h[j] / safe, h_next / safe
        rotations.append((c, s))
        h[j] = xp.where(turned, gamma, h[j])
        hessenberg.append(h)
        g_j = g[j]
        g[j] = xp.where(turned, c * g_j, g_j)
        g.append(xp.where(turned, -s * g_j, zeros))
        finite = finite & (xp.isfinite(g[j + 1]) | ~in_cycle)
        estimates.append(xp.abs(xp.where(turned, g[j + 1], g[j])))
        steps = xp.where(in_cycle, j + 1, steps)
        used = xp.where(in_cycle, steps - xp.astype(~turned, xp.int64), used)
        happy = h_next <= breakdown * scale  # A M has an invariant subspace
        ends = ~turned | happy | (xp.abs(g[j + 1]) <= target) | (j + 1 >= size)
        in_cycle = in_cycle & ~ends
        V.append(W / xp.astype(xp.where(in_cycle, h_next, infinity), dtype))
    m = len(hessenberg)
    upper = [column + [zeros] * (m - len(column)) for column in hessenberg]
    H = xp.stack([xp.stack(column) for column in upper], axis=1)  # (m, m, k)
    H, g, estimates, steps, used, finite = fetch(
        xp, H, xp.stack(g[:m]), xp.stack(estimates), steps, used, finite
    )
    steps, used = steps.astype(np.int64), used.astype(np.int64)
    if not finite.all():
        last = int(steps.max())
        check_residual_finite(np.nan, last, "gmres", at_or_before=True)
    coefficients = np.zeros((m, k))
    for j in np.flatnonzero(active & (used > 0)):
        u = used[j]
        coefficients[:u, j] = solve_triangular(H[:u, :u, j], g[:u, j])
    return _Cycle(V[:m], steps, used, estimates, coefficients)


def _update(system: DeviceSystem, cycle: _Cycle) -> Any:
    """``M V y`` per column: the cycle's correction (zero where no vector was used)."""
    xp = system.xp
    dtype = numpy_dtype(system.B.dtype)
    Y = xp.asarray(cycle.coefficients.astype(dtype), device=system.device)
    dX = cycle.basis[0] * Y[0, :]
    for i in range(1, int(cycle.used.max())):
        dX = dX + cycle.basis[i] * Y[i, :]
    return dX if system.M is None else system.M.matmat(dX)
