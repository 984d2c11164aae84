"""The result of an OT solve, and the marginal error every solver reports."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from linalg._core.namespace import (
    NUMPY,
    ArrayKind,
    common_kind,
    namespace_of,
    to_caller,
    to_host,
    to_numpy,
)
from linalg._core.validate import float_input

__all__ = ["OTResult", "marginal_error"]


@dataclass(frozen=True, repr=False)
class OTResult:
    """Optimal dual potentials of an entropic OT problem and how they were reached.

    The plan is not stored: ``plan`` and ``cost`` are computed from the
    potentials on first access and cached (``functools.cached_property``;
    the dataclass is frozen but keeps a ``__dict__``). The result holds a
    reference to the validated cost matrix for this.

    For a batch (``a`` of shape ``(batch, n)``) every array gains a leading
    batch axis and ``converged``, ``n_iter``, ``marginal_error`` are arrays
    of shape ``(batch,)``.

    Attributes
    ----------
    f, g : array
        Dual potentials, shapes ``(n,)`` and ``(m,)`` (``-inf`` where the
        marginal is zero), in the caller's array type.
    converged : bool or numpy.ndarray of bool
        Whether the L1 marginal error reached ``tol``.
    n_iter : int or numpy.ndarray of int
        Sinkhorn iterations (for the Newton solvers: Sinkhorn iterations of
        warm-up and fall-backs).
    n_newton : int
        Newton steps taken (0 for :func:`sinkhorn`).
    marginal_error : float or numpy.ndarray of float
        ``‖P1 − a‖₁ + ‖Pᵀ1 − b‖₁`` of the returned potentials, recomputed
        from them at the end (the same measure for every solver).
    history : dict of str to numpy.ndarray
        Per check (Sinkhorn) or per Newton step: ``"marginal_error"``, and
        solver-specific records (``"iteration"``, ``"dual"``, ``"step"``,
        ``"cg_iterations"``, ``"nnz"``, ``"seconds"``).
    info : dict
        The engine, the regularization and solver-specific details (the
        switch iteration and fall-backs of the sparse Newton solver).
    """

    f: Any
    g: Any
    converged: bool | np.ndarray
    n_iter: int | np.ndarray
    n_newton: int
    marginal_error: float | np.ndarray
    history: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    C: np.ndarray | None = field(default=None, compare=False)
    reg: float = 1.0
    kind: ArrayKind = NUMPY

    @functools.cached_property
    def plan(self) -> Any:
        """``P_ij = exp((f_i + g_j − C_ij) / reg)``, ``(n, m)`` or ``(batch, n, m)``."""
        if self.kind.via_namespace:  # on the potentials' device
            xp = namespace_of(self.f)
            return xp.exp((self.f[..., :, None] + self.g[..., None, :] - self.C) / self.reg)
        f, g = (np.asarray(to_numpy(x, "potential")) for x in (self.f, self.g))
        with np.errstate(invalid="ignore"):
            P = np.exp((f[..., :, None] + g[..., None, :] - self.C) / self.reg)
        return to_caller(P, self.kind)

    @functools.cached_property
    def cost(self) -> float | np.ndarray:
        """The transport cost ``⟨P, C⟩`` of the plan (an array for a batch)."""
        if self.kind.via_namespace:
            xp = namespace_of(self.f)
            total = to_host(xp.sum(self.plan * self.C, axis=(-2, -1)))
            return float(total) if np.ndim(total) == 0 else total
        P = np.asarray(to_numpy(self.plan, "plan"))
        total = np.einsum("...ij,...ij->...", P, np.broadcast_to(self.C, P.shape))
        return float(total) if np.ndim(total) == 0 else total

    def __repr__(self) -> str:
        shape = getattr(self.f, "shape", None)
        return (
            f"OTResult(f=<{type(self.f).__name__} shape={shape}>, converged={self.converged!r}, "
            f"n_iter={self.n_iter!r}, n_newton={self.n_newton!r}, "
            f"marginal_error={self.marginal_error!r})"
        )


def marginal_error(result_or_plan: Any, a: Any, b: Any, *, norm: int | float = 1) -> Any:
    """The error of a plan's marginals: ``‖P1 − a‖ + ‖Pᵀ1 − b‖``.

    Parameters
    ----------
    result_or_plan : OTResult or array_like
        A plan ``(n, m)`` or a batch ``(batch, n, m)``, or a result whose
        ``plan`` is used.
    a, b : array_like
        The target marginals, ``(n,)`` and ``(m,)`` (or batches of them).
    norm : {1, 2, inf}
        The vector norm (default 1, the measure every solver stops on).

    Returns
    -------
    float or numpy.ndarray
        The error (per batch member for a batch).

    Raises
    ------
    ValueError
        If the shapes do not match or ``norm`` is not 1, 2 or inf.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.ot import marginal_error
    >>> P = np.array([[0.5, 0.0], [0.1, 0.4]])
    >>> round(marginal_error(P, [0.5, 0.5], [0.5, 0.5]), 12)
    0.2
    """
    if norm not in (1, 2, np.inf):
        raise ValueError(f"norm must be 1, 2 or inf, got {norm!r}")
    source = result_or_plan.plan if isinstance(result_or_plan, OTResult) else result_or_plan
    common_kind(source, a, b)
    P, xp, _ = float_input(source, "plan", ndim=(2, 3))
    a_in = float_input(a, "a", ndim=(1, 2))[0]
    b_in = float_input(b, "b", ndim=(1, 2))[0]
    shape = tuple(P.shape)
    if tuple(a_in.shape) != shape[:-1] or tuple(b_in.shape) != (*shape[:-2], shape[-1]):
        raise ValueError(
            f"a and b must have shapes {shape[:-1]} and {(*shape[:-2], shape[-1])} "
            f"for a plan of shape {shape}, got {tuple(a_in.shape)} and {tuple(b_in.shape)}"
        )
    rows = xp.linalg.vector_norm(xp.sum(P, axis=-1) - a_in, ord=norm, axis=-1)
    cols = xp.linalg.vector_norm(xp.sum(P, axis=-2) - b_in, ord=norm, axis=-1)
    total = to_host(rows + cols)
    return float(total) if np.ndim(total) == 0 else total
