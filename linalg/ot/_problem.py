"""Validation of an OT problem ``(a, b, C, reg)`` and its internal, scaled form.

Every solver works on potentials scaled by the regularization, ``u = f / reg``
and ``v = g / reg``, against the scaled cost ``K = C / reg``: the log-plan is
``u_i + v_j - K_ij`` and no division by ``reg`` happens in the iterations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from linalg._core.namespace import ArrayKind, common_kind, namespace_of, numpy_dtype, to_numpy
from linalg._core.validate import (
    as_float_array,
    check_bool,
    check_real,
    float_input,
    result_dtype,
)

__all__ = ["Problem", "expand", "prepare_problem", "restrict_to_support", "safe_log"]


@dataclass(frozen=True)
class Problem:
    """A validated problem: always batched internally.

    Attributes
    ----------
    a, b : array
        Marginals, shapes ``(batch, n)`` and ``(batch, m)``: NumPy arrays, or
        arrays of the caller's device library (see ``xp``).
    C : array
        Cost, ``(1, n, m)`` (shared) or ``(batch, n, m)``.
    reg : float
        The entropic regularization ``ε``.
    kind : ArrayKind
        The caller's array type.
    batched : bool
        Whether the caller passed a batch (results keep the batch axis).
    xp : module
        The namespace the arrays compute in (array-api-compat's NumPy for host data).
    """

    a: Any
    b: Any
    C: Any
    reg: float
    kind: ArrayKind
    batched: bool
    xp: Any

    @property
    def dtype(self) -> np.dtype:
        return numpy_dtype(self.C.dtype)

    @property
    def on_device(self) -> bool:
        """Whether the arrays live off the host (CuPy, a GPU tensor, ...)."""
        return self.kind.via_namespace


def _check_marginal(x: Any, name: str, xp: Any) -> None:
    if bool(xp.any(x < 0)):
        raise ValueError(f"{name} has negative entries; marginals must be non-negative")
    if bool(xp.any(xp.sum(x, axis=-1) <= 0)):
        raise ValueError(f"{name} has zero total mass; marginals must have a positive sum")


def _check_totals(a: Any, b: Any, normalize: bool, xp: Any) -> tuple[Any, ...]:
    sa, sb = xp.sum(a, axis=-1, keepdims=True), xp.sum(b, axis=-1, keepdims=True)
    if normalize:
        return a / sa, b / sb
    rtol = float(np.sqrt(np.finfo(numpy_dtype(a.dtype)).eps))
    gap = xp.abs(sa - sb) / xp.maximum(sa, sb)
    if bool(xp.any(gap > rtol)):
        raise ValueError(
            f"a and b have different totals (a.sum() = {float(sa[0, 0]):.6g}, "
            f"b.sum() = {float(sb[0, 0]):.6g}); pass normalize=True to rescale both "
            "to unit mass"
        )
    return a, b


def prepare_problem(
    a: Any, b: Any, C: Any, reg: Any, *, normalize: bool, batched: bool, anywhere: bool = False
) -> Problem:
    """Validate ``(a, b, C, reg)`` before any work; errors name the argument.

    ``batched=False`` accepts only ``a (n,)``, ``b (m,)``, ``C (n, m)``;
    ``batched=True`` also accepts ``a (batch, n)``, ``b (batch, m)`` with one
    ``C (n, m)`` or a batch ``C (batch, n, m)``. With ``anywhere``, arrays of
    a device library (CuPy, GPU tensors, other array-API libraries) stay
    where they are; else they are refused with a remedy.
    """
    kind = common_kind(a, b, C)
    vector, matrix = ((1, 2), (2, 3)) if batched else (1, 2)
    xp = _NUMPY_XP
    arrays = []
    for value, name, ndim in ((a, "a", vector), (b, "b", vector), (C, "C", matrix)):
        if anywhere:
            x, xp, _ = float_input(value, name, ndim=ndim)
        else:
            x = as_float_array(to_numpy(value, name), name, ndim=ndim)
        arrays.append(x)
    a_np, b_np, C_np = arrays
    reg = check_real(reg, "reg", low=0.0, low_inclusive=False)
    check_bool(normalize, "normalize")
    if a_np.ndim != b_np.ndim:
        raise ValueError(
            f"a and b must both be 1-D or both 2-D, got shapes {tuple(a_np.shape)}, "
            f"{tuple(b_np.shape)}"
        )
    is_batch = a_np.ndim == 2
    if C_np.ndim == 3 and not is_batch:
        raise ValueError(f"C of shape {tuple(C_np.shape)} is a batch; a and b must then be 2-D")
    n, m = a_np.shape[-1], b_np.shape[-1]
    if tuple(C_np.shape[-2:]) != (n, m):
        raise ValueError(f"C must have shape (..., {n}, {m}) for a and b, got {tuple(C_np.shape)}")
    if is_batch and a_np.shape[0] != b_np.shape[0]:
        raise ValueError(
            f"a and b must have the same batch size, got {tuple(a_np.shape)}, {tuple(b_np.shape)}"
        )
    if C_np.ndim == 3 and C_np.shape[0] != a_np.shape[0]:
        raise ValueError(f"C has batch size {C_np.shape[0]}, a and b have {a_np.shape[0]}")
    _check_marginal(a_np, "a", xp)
    _check_marginal(b_np, "b", xp)
    dtype = getattr(xp, result_dtype(a_np.dtype, b_np.dtype, C_np.dtype).name)
    a2, b2 = (xp.astype(xp.reshape(x, (-1, x.shape[-1])), dtype, copy=False) for x in (a_np, b_np))
    a2, b2 = _check_totals(a2, b2, normalize, xp)
    C3 = xp.reshape(xp.astype(C_np, dtype, copy=False), (-1, n, m))
    return Problem(a2, b2, C3, reg, kind, is_batch, xp)


_NUMPY_XP = namespace_of(np.empty(0))


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
        problem.a[:, rows],
        problem.b[:, cols],
        C,
        problem.reg,
        problem.kind,
        problem.batched,
        problem.xp,
    )
    return reduced, rows, cols


def expand(x: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
    """``x`` on ``index`` of a ``(1, size)`` array filled with ``-inf`` elsewhere."""
    out = np.full((1, size), -np.inf, dtype=x.dtype)
    out[:, index] = x
    return out
