"""Validation of an OT problem ``(a, b, C, reg)`` and its internal, scaled form.

Every solver works on potentials scaled by the regularization, ``u = f / reg``
and ``v = g / reg``, against the scaled cost ``K = C / reg``: the log-plan is
``u_i + v_j - K_ij`` and no division by ``reg`` happens in the iterations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from linalg._core.namespace import ArrayKind, common_kind, to_numpy
from linalg._core.validate import as_float_array, check_bool, check_real, result_dtype

__all__ = ["Problem", "expand", "prepare_problem", "restrict_to_support", "safe_log"]


@dataclass(frozen=True)
class Problem:
    """A validated problem: always batched internally.

    Attributes
    ----------
    a, b : numpy.ndarray
        Marginals, shapes ``(batch, n)`` and ``(batch, m)``.
    C : numpy.ndarray
        Cost, ``(1, n, m)`` (shared) or ``(batch, n, m)``.
    reg : float
        The entropic regularization ``ε``.
    kind : ArrayKind
        The caller's array type.
    batched : bool
        Whether the caller passed a batch (results keep the batch axis).
    """

    a: np.ndarray
    b: np.ndarray
    C: np.ndarray
    reg: float
    kind: ArrayKind
    batched: bool

    @property
    def dtype(self) -> np.dtype:
        return self.C.dtype


def _check_marginal(x: np.ndarray, name: str) -> None:
    if (x < 0).any():
        raise ValueError(f"{name} has negative entries; marginals must be non-negative")
    if (x.sum(axis=-1) <= 0).any():
        raise ValueError(f"{name} has zero total mass; marginals must have a positive sum")


def _check_totals(a: np.ndarray, b: np.ndarray, normalize: bool) -> tuple[np.ndarray, ...]:
    sa, sb = a.sum(axis=-1, keepdims=True), b.sum(axis=-1, keepdims=True)
    if normalize:
        return a / sa, b / sb
    rtol = np.sqrt(np.finfo(a.dtype).eps)
    gap = np.abs(sa - sb) / np.maximum(sa, sb)
    if (gap > rtol).any():
        raise ValueError(
            f"a and b have different totals (a.sum() = {float(sa.ravel()[0]):.6g}, "
            f"b.sum() = {float(sb.ravel()[0]):.6g}); pass normalize=True to rescale both "
            "to unit mass"
        )
    return a, b


def prepare_problem(a: Any, b: Any, C: Any, reg: Any, *, normalize: bool, batched: bool) -> Problem:
    """Validate ``(a, b, C, reg)`` before any work; errors name the argument.

    ``batched=False`` accepts only ``a (n,)``, ``b (m,)``, ``C (n, m)``;
    ``batched=True`` also accepts ``a (batch, n)``, ``b (batch, m)`` with one
    ``C (n, m)`` or a batch ``C (batch, n, m)``.
    """
    kind = common_kind(a, b, C)
    a_np = as_float_array(to_numpy(a, "a"), "a", ndim=(1, 2) if batched else 1)
    b_np = as_float_array(to_numpy(b, "b"), "b", ndim=(1, 2) if batched else 1)
    C_np = as_float_array(to_numpy(C, "C"), "C", ndim=(2, 3) if batched else 2)
    reg = check_real(reg, "reg", low=0.0, low_inclusive=False)
    check_bool(normalize, "normalize")
    if a_np.ndim != b_np.ndim:
        raise ValueError(
            f"a and b must both be 1-D or both 2-D, got shapes {a_np.shape}, {b_np.shape}"
        )
    is_batch = a_np.ndim == 2
    if C_np.ndim == 3 and not is_batch:
        raise ValueError(f"C of shape {C_np.shape} is a batch; a and b must then be 2-D")
    n, m = a_np.shape[-1], b_np.shape[-1]
    if C_np.shape[-2:] != (n, m):
        raise ValueError(f"C must have shape (..., {n}, {m}) for a and b, got {C_np.shape}")
    if is_batch and a_np.shape[0] != b_np.shape[0]:
        raise ValueError(f"a and b must have the same batch size, got {a_np.shape}, {b_np.shape}")
    if C_np.ndim == 3 and C_np.shape[0] != a_np.shape[0]:
        raise ValueError(f"C has batch size {C_np.shape[0]}, a and b have {a_np.shape[0]}")
    _check_marginal(a_np, "a")
    _check_marginal(b_np, "b")
    dtype = result_dtype(a_np.dtype, b_np.dtype, C_np.dtype)
    a2, b2 = (np.atleast_2d(x).astype(dtype, copy=False) for x in (a_np, b_np))
    a2, b2 = _check_totals(a2, b2, normalize)
    C3 = C_np.astype(dtype, copy=False).reshape((-1, n, m))
    return Problem(a2, b2, C3, reg, kind, is_batch)


def safe_log(x: np.ndarray) -> np.ndarray:
    """``log x`` with ``log 0 = -inf`` and no warning."""
    with np.errstate(divide="ignore"):
        return np.log(x)


def restrict_to_support(problem: Problem) -> tuple[Problem, np.ndarray, np.ndarray]:
    """The single problem on the support of ``a`` and ``b`` (zero-mass entries removed)."""
    rows, cols = np.flatnonzero(problem.a[0] > 0), np.flatnonzero(problem.b[0] > 0)
    if rows.size == problem.a.shape[1] and cols.size == problem.b.shape[1]:
        return problem, rows, cols
    C = problem.C[:, rows][:, :, cols]
    reduced = Problem(
        problem.a[:, rows], problem.b[:, cols], C, problem.reg, problem.kind, problem.batched
    )
    return reduced, rows, cols


def expand(x: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """``x`` on ``index`` of a ``(1, size)`` array filled with ``-inf`` elsewhere."""
    out = np.full((1, size), -np.inf, dtype=x.dtype)
    out[:, index] = x
    return out
