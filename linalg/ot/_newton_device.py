"""Newton steps on the entropic dual for data that lives off the host (CuPy, GPU tensors).

The host Newton solvers (``_newton_core.py``) build the plan with the engine's
kernels, solve the Newton system by CG on NumPy arrays, and sparsify the plan
into a SciPy CSR matrix. Here every ``n × m`` and every length-``n`` or ``m``
quantity stays a device array of the data's own array-API namespace: the plan
``P``, its row and column sums, the Schur complement's products (two dense
matrix-vector products with the plan per CG iteration, by
:func:`linalg.solvers.cg`'s device iteration) and the line search's
``expm1`` sums. The Sinkhorn warm-up and fall-back iterations are
:class:`~linalg.ot._sinkhorn_device.DeviceSinkhorn`'s.

The host reads scalars only, at decisions. Per Newton step:

- 1 read at each evaluation of the plan: the marginal error, the dual and
  whether a row or column underflowed, together;
- the CG solve (:func:`linalg.solvers.cg`'s device iteration, which tests
  convergence every ``check_every`` iterations, the Newton call's
  ``check_every``): today 2 reads to start, 3 at each test and 2 at the end;
- 1 read of the line search's slope, then 1 per trial step (usually one);
- :func:`~linalg.ot.sinkhorn_newton_sparse` only: 1 read of the number of
  entries the sparsified plan keeps.

A single problem is solved on the support of ``a`` and ``b``, as on the host:
the support's indices are found once (``nonzero``, one read), the problem is
gathered onto it with ``take``, and the potentials are spread back with a
gather too (``-inf`` off the support), so no scatter is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from linalg._core.namespace import to_host
from linalg.ot._newton_core import NewtonRun, Point
from linalg.ot._problem import Problem
from linalg.solvers import cg

__all__ = ["DeviceNewtonRun", "device_plan", "restrict_on_device", "spread"]


@dataclass
class DevicePoint(Point):
    """A :class:`Point` on the device, with the underflow test read along with the error."""

    positive: bool = True


def device_plan(sinkhorn: Any) -> Any:
    """The dense plan ``exp(u_i + v_j − K_ij)`` of a single device problem, ``(n, m)``."""
    xp = sinkhorn.xp
    return xp.exp(sinkhorn.u[0, :, None] + sinkhorn.v[0, None, :] - sinkhorn.K[0, ...])


def restrict_on_device(problem: Problem) -> tuple[Problem, Any, Any]:
    """The single problem on the support of ``a`` and ``b``, and the support's indices.

    The indices are ``None`` where the support is everything (nothing to gather).
    """
    xp, a, b = problem.xp, problem.a, problem.b
    rows, cols = xp.nonzero(a[0, :] > 0)[0], xp.nonzero(b[0, :] > 0)[0]
    if rows.shape[0] == a.shape[1] and cols.shape[0] == b.shape[1]:
        return problem, None, None
    C = xp.take(xp.take(problem.C, rows, axis=1), cols, axis=2)
    reduced = Problem(
        xp.take(a, rows, axis=1),
        xp.take(b, cols, axis=1),
        C,
        problem.reg,
        problem.kind,
        problem.batched,
        xp,
    )
    return reduced, rows, cols


def spread(xp: Any, x: Any, support: Any) -> Any:
    """``x`` ``(1, k)`` on the ``True`` entries of ``support`` ``(size,)``, ``-inf`` elsewhere.

    A gather: entry ``j`` of the support reads ``x[rank of j in the support]``.
    """
    if support is None:
        return x
    rank = xp.cumulative_sum(xp.astype(support, xp.int64)) - 1
    picked = xp.take(x, xp.clip(rank, 0, None), axis=1)
    return xp.where(support[None, :], picked, -xp.inf)


class DeviceNewtonRun(NewtonRun):
    """:class:`NewtonRun` on a :class:`~linalg.ot._sinkhorn_device.DeviceSinkhorn`.

    ``offdiagonal(P, r)`` returns the matrix standing for ``P`` in the
    Hessian (``P`` itself, or the plan with its dropped entries set to zero)
    and how many entries it keeps, as a Python int.
    """

    def __init__(self, sinkhorn: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(sinkhorn, *args, **kwargs)
        self.xp = sinkhorn.xp

    def evaluate(self) -> DevicePoint:
        xp = self.xp
        u, v, a, b = self.sk.u[0, :], self.sk.v[0, :], self.a, self.b
        P = device_plan(self.sk)
        r, c = xp.sum(P, axis=1), xp.sum(P, axis=0)
        summary = xp.stack(
            [
                xp.sum(xp.abs(r - a)) + xp.sum(xp.abs(c - b)),
                xp.sum(u * a) + xp.sum(v * b),
                xp.sum(r),
                xp.min(r),
                xp.min(c),
            ]
        )
        error, linear, mass, low_r, low_c = (float(x) for x in to_host(summary))
        dual = self.sk.reg * (linear - mass)
        return DevicePoint(P, r, c, error, dual, positive=low_r > 0 and low_c > 0)

    def offdiagonal_block(self, point: Point) -> tuple[Any, int]:
        return self.offdiagonal(point.P, point.r)

    def underflowed(self, point: DevicePoint) -> bool:
        return not point.positive

    def advance(self, step: float, du: Any, dv: Any) -> None:
        self.sk.u = self.sk.u + step * du[None, :]
        self.sk.v = self.sk.v + step * dv[None, :]

    def direction(self, point: Point, B: Any) -> tuple[Any, Any, int]:
        """Solve the Newton system; ``dv_m = 0`` (see :mod:`linalg.ot._newton_core`)."""
        xp = self.xp
        ga, gb = self.a - point.r, self.b - point.c
        w = 1.0 / point.r
        m = gb.shape[0]
        dv, iterations = xp.zeros_like(gb), 0
        if m > 1:
            lead = B[:, :-1]  # the columns of the unknowns: dv_m = 0
            c = point.c[:-1]
            rhs = gb[:-1] - lead.T @ (w * ga)
            diagonal = c - xp.sum(lead * lead * w[:, None], axis=0)
            eps = float(np.finfo(self.sk.problem.dtype).eps)
            diagonal = xp.maximum(diagonal, eps * c)
            solve = cg(
                lambda x: c * x - lead.T @ (w * (lead @ x)),
                rhs,
                M=lambda x: x / diagonal,
                rtol=float(np.clip(point.error, 1e-12, 0.1)),
                maxiter=self.cg_maxiter,
                check_every=self.check_every,
                warn=False,
            )
            dv = xp.concat([solve.x, dv[-1:]])
            iterations = int(solve.n_iter)
        du = w * (ga - B @ dv)
        return du, dv, iterations

    def slopes(self, point: Point, du: Any, dv: Any) -> tuple[float, float]:
        xp, a, b = self.xp, self.a, self.b
        both = xp.stack(
            [
                xp.sum((a - point.r) * du) + xp.sum((b - point.c) * dv),
                xp.sum(a * du) + xp.sum(b * dv),
            ]
        )
        slope, linear = (float(x) for x in to_host(both))
        return slope, linear

    def gain(self, point: Point, du: Any, dv: Any, step: float, linear: float) -> float:
        xp = self.xp
        with np.errstate(over="ignore", invalid="ignore"):  # libraries that compute with NumPy
            E = xp.expm1(step * (du[:, None] + dv[None, :])) * point.P
            return step * linear - float(to_host(xp.sum(E)))
