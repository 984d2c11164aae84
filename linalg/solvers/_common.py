"""What every Krylov solver does around its iteration: validate the system,
bring it to NumPy, and hand the answer back in the caller's array type."""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from linalg._core.namespace import ArrayKind, common_kind, to_caller, to_numpy
from linalg._core.operators import Operator, as_operator
from linalg._core.results import ConvergenceWarning, LinAlgError, SolveResult
from linalg._core.validate import (
    as_float_array,
    check_bool,
    check_callable,
    check_int,
    check_real,
    result_dtype,
)


@dataclass
class LinearSystem:
    """A validated system ``A X = B`` on NumPy arrays, ``B`` always 2-D."""

    A: Operator
    B: np.ndarray
    X0: np.ndarray | None
    M: Operator | None
    kind: ArrayKind
    vector: bool

    @property
    def dtype(self) -> np.dtype:
        return self.B.dtype


def prepare_system(
    A: Any,
    b: Any,
    *,
    x0: Any = None,
    M: Any = None,
    square: bool = True,
) -> LinearSystem:
    """Validate ``A``, ``b``, ``x0`` and ``M`` and bring them to NumPy.

    ``b`` may be ``(m,)`` or ``(m, k)``. A callable ``A`` is taken as square
    (``square=True``) with the size of ``b``. Nothing is copied unless a
    dtype conversion needs it.
    """
    kind = common_kind(A, b, x0, M)
    b_np = to_numpy(b, "b")
    B = as_float_array(b_np, "b", ndim=(1, 2))
    vector = B.ndim == 1
    B2 = B[:, None] if vector else B
    m = B2.shape[0]
    op = as_operator(A, "A", shape=(m, m) if square else None, dtype=B.dtype, kind=kind)
    if square and op.shape[0] != op.shape[1]:
        raise ValueError(f"A must be square, got shape {op.shape}")
    if op.shape[0] != m:
        raise ValueError(f"b has {m} rows but A has shape {op.shape}; they must match")
    dtype = result_dtype(op.dtype, B.dtype)
    B2 = B2.astype(dtype, copy=False)
    X0 = None
    if x0 is not None:
        x0_np = as_float_array(to_numpy(x0, "x0"), "x0", ndim=B.ndim, dtype=dtype)
        expected = (op.shape[1], *B.shape[1:])
        if x0_np.shape != expected:
            raise ValueError(f"x0 must have shape {expected}, got {x0_np.shape}")
        X0 = x0_np[:, None] if vector else x0_np
    precond = None
    if M is not None:
        n = op.shape[1]
        precond = as_operator(M, "M", shape=(n, n), dtype=dtype, kind=kind)
        if precond.shape != (n, n):
            raise ValueError(f"M must have shape {(n, n)}, got {precond.shape}")
    return LinearSystem(op, B2, X0, precond, kind, vector)


def check_options(
    *,
    rtol: float,
    atol: float,
    maxiter: int | None,
    callback: Callable | None,
    warn: bool,
) -> None:
    """The options every solver shares."""
    check_real(rtol, "rtol", low=0.0)
    check_real(atol, "atol", low=0.0)
    check_int(maxiter, "maxiter", low=1, allow_none=True)
    check_callable(callback, "callback")
    check_bool(warn, "warn")


class CallerShape(Protocol):
    """What :func:`finish` needs of a system: the caller's array type and whether
    ``b`` was one vector."""

    kind: ArrayKind
    vector: bool


def finish(
    system: CallerShape,
    X: np.ndarray,
    *,
    converged: np.ndarray,
    n_iter: np.ndarray,
    residual_norm: np.ndarray,
    history: np.ndarray | None,
    info: dict[str, Any],
    warn: bool,
    solver: str,
) -> SolveResult:
    """Warn if needed and package the answer in the caller's shape and type."""
    if warn and not converged.all():
        bad = np.flatnonzero(~converged)
        where = "" if system.vector else f" in column(s) {bad.tolist()[:10]}"
        warnings.warn(
            f"{solver} did not converge{where} after {int(n_iter.max())} iterations "
            f"(residual norm {float(residual_norm.max()):.3g})",
            ConvergenceWarning,
            stacklevel=_outside_linalg(),
        )
    if system.vector:
        return SolveResult(
            to_caller(X[:, 0], system.kind),
            bool(converged[0]),
            int(n_iter[0]),
            float(residual_norm[0]),
            None if history is None else history[:, 0],
            info,
        )
    return SolveResult(to_caller(X, system.kind), converged, n_iter, residual_norm, history, info)


def _outside_linalg() -> int:
    """The ``stacklevel`` of the first caller outside this package, for a warning
    issued from the function that calls this one (solvers reach :func:`finish`
    through one to three of their own functions)."""
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_globals.get("__name__", "").startswith("linalg."):
        frame, level = frame.f_back, level + 1
    return level


def check_residual_finite(
    norms: Any, iteration: int, solver: str, *, at_or_before: bool = False
) -> None:
    """Non-finite residuals come from an operator that returned NaN or Inf
    (``at_or_before``: found at a device solver's look, not at once)."""
    if not np.isfinite(norms).all():
        when = "at or before" if at_or_before else "at"
        raise LinAlgError(
            f"{solver}: the residual became non-finite {when} iteration {iteration}; "
            "the operator A (or the preconditioner M) returned NaN or Inf"
        )


def column_norms(X: np.ndarray) -> np.ndarray:
    """Euclidean norm of every column, accumulated in float64."""
    return np.sqrt(np.einsum("ij,ij->j", X, X, dtype=np.float64))


def callback_caller(callback: Callable | None, system: LinearSystem) -> Callable | None:
    """Wrap ``callback`` so it receives iterates in the caller's shape and type."""
    if callback is None:
        return None

    def call(X: np.ndarray) -> None:
        callback(to_caller(X[:, 0] if system.vector else X, system.kind))

    return call


def by_column(
    solve: Callable[[int, Callable | None], tuple], X: np.ndarray, report: Callable | None
) -> list[list]:
    """Run ``solve(j, watch)`` for every column ``j`` of ``X``, one after another.

    ``solve`` returns ``(x_j, *outcome)``; ``x_j`` is stored in ``X[:, j]`` and
    the outcomes are returned transposed, one list per field. ``watch`` (None
    without a callback) takes the current ``x_j`` and reports the whole ``X``.
    """
    outcomes = []
    for j in range(X.shape[1]):
        watch = None if report is None else _watcher(report, X, j)
        x, *outcome = solve(j, watch)
        X[:, j] = x
        outcomes.append(outcome)
    return [list(field) for field in zip(*outcomes, strict=True)]


def _watcher(report: Callable, X: np.ndarray, j: int) -> Callable:
    def watch(x: np.ndarray) -> None:
        X[:, j] = x
        report(X)

    return watch


def stack_histories(histories: list[list[float]]) -> np.ndarray:
    """Per-column histories as one ``(longest, k)`` array, each padded with its last value."""
    length = max(len(h) for h in histories)
    return np.array([h + [h[-1]] * (length - len(h)) for h in histories]).T


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """``aᵀ b`` of two vectors, accumulated in float64."""
    return float(np.einsum("i,i->", a, b, dtype=np.float64))


def norm(a: np.ndarray) -> float:
    """``||a||`` of a vector, accumulated in float64."""
    return math.sqrt(dot(a, a))
