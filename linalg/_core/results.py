"""Result types, warnings and errors shared by every family."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ConvergenceWarning", "EstimateResult", "LinAlgError", "SolveResult"]


class ConvergenceWarning(UserWarning):
    """An iterative routine stopped before reaching its tolerance.

    The routine still returns its best iterate, with ``converged=False``.
    Silence it per call with ``warn=False`` or with :mod:`warnings` filters.
    """


class LinAlgError(np.linalg.LinAlgError):
    """A computation broke down: an indefinite matrix where a definite one is
    required, a non-finite value produced by a user's operator, a failed
    factorization. Subclasses :class:`numpy.linalg.LinAlgError` (and so
    :class:`ValueError`)."""


@dataclass(frozen=True, repr=False)
class SolveResult:
    """The outcome of an iterative solve.

    For a single right-hand side ``b`` of shape ``(n,)``, ``converged``,
    ``n_iter`` and ``residual_norm`` are scalars. For ``k`` right-hand sides,
    ``b`` of shape ``(n, k)``, they are arrays of shape ``(k,)``: each column
    converges, and is reported, on its own.

    Attributes
    ----------
    x : array
        The solution, in the caller's array type and on the caller's device.
    converged : bool or numpy.ndarray of bool
        Whether the stopping test was met (per column).
    n_iter : int or numpy.ndarray of int
        Iterations taken (per column).
    residual_norm : float or numpy.ndarray of float
        The residual norm the solver reached, in the solver's own measure
        (``||b - A x||`` for cg, minres and gmres; ``||Aᵀ r||``-based tests in
        lsqr also report ``||b - A x||`` here).
    history : numpy.ndarray or None
        Residual norm after every iteration, shape ``(n_iter + 1,)`` or
        ``(n_iter + 1, k)``, when the solver was asked to record it.
    info : dict
        Solver-specific details (the engine used, the stopping reason, ...).
    """

    x: Any
    converged: bool | np.ndarray
    n_iter: int | np.ndarray
    residual_norm: float | np.ndarray
    history: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        shape = getattr(self.x, "shape", None)
        return (
            f"SolveResult(x=<{type(self.x).__name__} shape={shape}>, "
            f"converged={self.converged!r}, n_iter={self.n_iter!r}, "
            f"residual_norm={self.residual_norm!r}, info={self.info!r})"
        )


@dataclass(frozen=True)
class EstimateResult:
    """A randomized estimate and how far to trust it.

    Attributes
    ----------
    estimate : float or array
        The estimate (a trace is a float; a diagonal is an array in the
        caller's array type).
    std_error : float or array
        The estimated standard error of ``estimate`` (same shape), from the
        spread of the independent samples that make it.
    n_matvecs : int
        Products with the operator that were spent.
    info : dict
        Method-specific details (the method, the split of matvecs, ...).
    """

    estimate: Any
    std_error: Any
    n_matvecs: int
    info: dict[str, Any] = field(default_factory=dict)
