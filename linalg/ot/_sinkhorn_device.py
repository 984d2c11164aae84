"""Log-domain Sinkhorn on data that lives off the host (CuPy, GPU tensors).

The host solver (``_sinkhorn.py``) restricts a single problem to the support
of its marginals and iterates only the batch members still running, picking
them by index. Here every quantity stays on the device: zero-mass entries
keep potential ``-inf`` (as the host solver's batches do), every member takes
each half-step and a finished one is frozen by a mask, and the host reads the
marginal errors only at the checks, every ``check_every`` iterations. The
half-steps are the ``ot.kernels`` CuPy engine's fused passes (``cuda/ot.cu``)
for CuPy arrays, and a log-sum-exp in the data's array-API namespace for
other libraries. The recurrences are the host solver's: a member takes the
same number of iterations.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from linalg._core.dlpack import cupy_bridge
from linalg._core.engines import select
from linalg._core.namespace import device_of, to_host
from linalg.ot._problem import Problem

__all__ = ["DeviceSinkhorn"]


class DeviceSinkhorn:
    """Sinkhorn iterations of a (batched) device problem, resumable across ε stages.

    The interface of :class:`~linalg.ot._sinkhorn.LogSinkhorn` that
    :func:`~linalg.ot.sinkhorn` uses: :meth:`set_reg`, :meth:`run`,
    :meth:`errors`, and the scaled potentials ``u``, ``v``.
    """

    def __init__(self, problem: Problem, u: Any, v: Any, engine: str | None) -> None:
        self.problem, self.xp = problem, problem.xp
        self.engine, self._lse, self._rows_contiguous = _half_step(problem, engine)
        xp = self.xp
        self.loga, self.logb = _log(xp, problem.a), _log(xp, problem.b)
        self.u, self.v = u, v
        self.reg = problem.reg
        self._scale(problem.reg)
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def _scale(self, reg: float) -> None:
        self.u, self.v = self.u * (self.reg / reg), self.v * (self.reg / reg)
        self.reg = reg
        self.K = self.problem.C / reg
        self.KT = self._rows_contiguous(self.xp.permute_dims(self.K, (0, 2, 1)))

    def set_reg(self, reg: float) -> None:
        if reg != self.reg:
            self._scale(reg)

    def errors(self) -> np.ndarray:
        """L1 error of both marginals of every member, from the potentials (two passes)."""
        xp, p = self.xp, self.problem
        rows = xp.exp(self.u + self._lse(self.K, self.v))
        cols = xp.exp(self.v + self._lse(self.KT, self.u))
        error = xp.sum(xp.abs(rows - p.a), axis=1) + xp.sum(xp.abs(cols - p.b), axis=1)
        return to_host(error)

    def run(
        self,
        members: np.ndarray,
        *,
        tol: float,
        maxiter: int,
        check_every: int,
        stop: Callable[[int, float], bool] | None = None,
    ) -> dict[str, np.ndarray]:
        """Iterate the ``members`` until each one's error is ``<= tol`` or ``maxiter``.

        ``stop(iteration, error)``, for a single member, is asked at each check
        and ends the run when it returns True (as in ``LogSinkhorn.run``).
        """
        xp = self.xp
        size = self.u.shape[0]
        running = np.zeros(size, dtype=bool)
        running[members] = True
        active = xp.asarray(running, device=device_of(self.u))[:, None]
        n_iter = np.zeros(size, dtype=np.int64)
        error = np.full(size, np.inf)
        checks, errors, seconds = [], [], []
        for iteration in range(1, maxiter + 1):
            self.u = xp.where(active, self.loga - self._lse(self.K, self.v), self.u)
            cols = self._lse(self.KT, self.u)
            n_iter[running] = iteration
            if iteration % check_every == 0 or iteration == maxiter:
                mass = xp.exp(self.v + cols)
                measured = to_host(xp.sum(xp.abs(mass - self.problem.b), axis=1))
                error[running] = measured[running]
                checks.append(iteration)
                errors.append(error.copy())
                seconds.append(self.elapsed())
                halt = stop is not None and stop(iteration, float(measured[0]))
                running &= ~(measured <= tol)
                if halt or not running.any():
                    break
                active = xp.asarray(running, device=device_of(self.u))[:, None]
            self.v = xp.where(active, self.logb - cols, self.v)
        return {
            "n_iter": n_iter,
            "converged": error <= tol,
            "iteration": np.array(checks, dtype=np.int64),
            "marginal_error": np.array(errors).reshape(len(errors), size),
            "seconds": np.array(seconds),
        }


def _log(xp: Any, x: Any) -> Any:
    """``log x`` with ``log 0 = -inf``, without a warning from any library."""
    positive = x > 0
    return xp.where(positive, xp.log(xp.where(positive, x, xp.ones_like(x))), -xp.inf)


def _half_step(problem: Problem, engine: str | None) -> tuple[str, Any, Any]:
    """The engine's name, ``lse(K, x)``, ``(batch, rows)``: ``log Σ_j exp(x_kj − K_kij)``,
    and how the engine wants ``Kᵀ`` laid out (the fused pass reads rows: contiguous
    ones, made once per ε)."""
    xp = problem.xp
    bridge = cupy_bridge(problem.kind, engine)  # CuPy arrays, or torch CUDA tensors
    if bridge is not None:
        import cupy

        kernels = select("ot.kernels", engine=engine, kind=bridge.kind, dtype=problem.dtype).load()

        def fused(K: Any, x: Any) -> Any:
            K, x = bridge.to_cupy(K), bridge.to_cupy(x)
            out = cupy.empty((x.shape[0], K.shape[1]), dtype=x.dtype)
            kernels.lse(K, x, cupy.arange(x.shape[0]), out)
            return bridge.back(out)

        def rows_contiguous(X: Any) -> Any:
            return bridge.back(cupy.ascontiguousarray(bridge.to_cupy(X)))

        return "cupy", fused, rows_contiguous
    if engine not in (None, "auto", "reference"):
        raise TypeError(
            f"engine {engine!r} has no Sinkhorn for {problem.kind}: use engine='reference' "
            "(the array-API iteration on the data's device) or move the data to the host"
        )

    def generic(K: Any, x: Any) -> Any:
        Z = x[:, None, :] - K
        top = xp.max(Z, axis=2, keepdims=True)
        top = xp.where(xp.isfinite(top), top, xp.zeros_like(top))  # a row of -inf stays -inf
        return top[:, :, 0] + xp.log(xp.sum(xp.exp(Z - top), axis=2))

    return "reference", generic, lambda X: X
