"""Shampoo: one Kronecker factor per tensor dimension, preconditioning by inverse roots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from linalg._core.namespace import ArrayKind, array_kind, device_of, to_caller
from linalg._core.validate import check_int, check_real, float_input
from linalg.kron._roots import matrix_inverse_root

__all__ = ["Shampoo"]


class Shampoo:
    """The Shampoo preconditioner for gradients of one tensor shape.

    For a gradient ``G`` of order ``k`` and shape ``(n_1, ..., n_k)``, statistic
    ``i`` is ``L_i = G_(i) G_(i)ᵀ``, ``(n_i, n_i)``: the contraction of ``G``
    with itself over every axis but ``i``. Statistics are summed over updates
    (``beta2=None``) or averaged exponentially,
    ``L_i <- beta2 L_i + (1 - beta2) G_(i) G_(i)ᵀ``. Preconditioning applies
    ``(L_i + eps I)^(-1/(2k))`` along every axis ``i``; for a matrix that is
    ``(L + eps I)^(-1/4) G (R + eps I)^(-1/4)``. The roots are computed by
    :func:`matrix_inverse_root` when first needed and kept until the next update.

    Parameters
    ----------
    shape : int or sequence of int
        The gradient's shape (positive sizes).
    eps : float
        Damping added inside each root, ``eps >= 0``.
    beta2 : float, optional
        Exponential moving average factor in ``(0, 1)``; None sums.

    Attributes
    ----------
    shape : tuple of int
        As given.
    eps, beta2
        As given.
    statistics : list of arrays
        The statistics ``L_1`` to ``L_k``: float64 NumPy zeros until the first
        update, whose array type, device and dtype (float32 or float64) they keep
        from then on (NumPy for host data, CuPy arrays or GPU tensors for those);
        later gradients are cast to that dtype.
    n_updates : int
        Updates so far.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.kron import Shampoo
    >>> opt = Shampoo((2, 3), eps=1e-8)
    >>> G = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    >>> opt.update(G)
    >>> opt.statistics[0]
    array([[1., 0.],
           [0., 4.]])
    >>> np.round(opt.precondition(G), 6)
    array([[1., 0., 0.],
           [0., 1., 0.]])
    """

    def __init__(
        self, shape: int | Sequence[int], *, eps: float = 1e-12, beta2: float | None = None
    ):
        sizes = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
        if not sizes:
            raise ValueError("shape must have at least one dimension, got ()")
        self.shape = tuple(check_int(n, "shape", low=1) for n in sizes)
        self.eps = check_real(eps, "eps", low=0.0)
        if beta2 is not None:
            beta2 = check_real(beta2, "beta2", low=0.0, low_inclusive=False)
            if beta2 >= 1.0:
                raise ValueError(f"beta2 must be < 1 (or None to sum), got {beta2}")
        self.beta2 = beta2
        self.statistics = [np.zeros((n, n)) for n in self.shape]
        self.n_updates = 0
        self._roots: list[np.ndarray] | None = None

    def _gradient(self, grad: Any) -> tuple[Any, Any, ArrayKind]:
        G, xp, kind = float_input(grad, "grad")
        if tuple(G.shape) != self.shape:
            raise ValueError(f"grad must have shape {self.shape}, got {tuple(G.shape)}")
        held = array_kind(self.statistics[0])
        if self.n_updates and held != array_kind(G):
            raise TypeError(
                f"grad holds {array_kind(G)}, but the statistics hold {held} since the first "
                "update: pass gradients of one array type and device"
            )
        return G, xp, kind

    def update(self, grad: Any) -> None:
        """Add ``grad``'s contribution to every statistic (the input is not modified).

        Parameters
        ----------
        grad : array_like
            A gradient of shape :attr:`shape`, finite: NumPy or a CPU tensor, or
            a CuPy array / GPU tensor, whose device then holds the statistics.
        """
        G, xp, _ = self._gradient(grad)
        if self.n_updates:
            G = xp.astype(G, self.statistics[0].dtype, copy=False)
        axes = range(G.ndim)
        for i, S in enumerate(self._statistics_like(G, xp)):
            others = [a for a in axes if a != i]
            contribution = xp.tensordot(G, G, axes=(others, others))
            if self.beta2 is None:
                self.statistics[i] = S + contribution
            else:
                self.statistics[i] = self.beta2 * S + (1.0 - self.beta2) * contribution
        self.n_updates += 1
        self._roots = None

    def _statistics_like(self, G: Any, xp: Any) -> list:
        """The statistics, or before the first update zeros in ``G``'s namespace and dtype."""
        if self.n_updates:
            return self.statistics
        return [xp.zeros((n, n), dtype=G.dtype, device=device_of(G)) for n in self.shape]

    def precondition(self, grad: Any) -> Any:
        """Return ``grad`` preconditioned along every axis ``i`` by ``(L_i + eps I)^(-1/(2k))``.

        That is ``grad ×_1 (L_1 + eps I)^(-1/(2k)) ×_2 … ×_k (L_k + eps I)^(-1/(2k))``.

        Parameters
        ----------
        grad : array_like
            A gradient of shape :attr:`shape`, finite, of the statistics' array
            type and device (any, before the first update).

        Returns
        -------
        array
            The preconditioned gradient, in the caller's array type, in the
            statistics' dtype (the gradient's before the first update).

        Raises
        ------
        linalg.LinAlgError
            If a statistic plus ``eps I`` is not positive definite (for
            example ``eps = 0`` before an update or with a singular statistic).
        """
        G, xp, kind = self._gradient(grad)
        if self.n_updates:
            G = xp.astype(G, self.statistics[0].dtype, copy=False)
        if self._roots is None:
            power = 2 * len(self.shape)
            self._roots = [
                matrix_inverse_root(S, power, eps=self.eps) for S in self._statistics_like(G, xp)
            ]
        for i, R in enumerate(self._roots):
            G = xp.moveaxis(
                xp.tensordot(xp.astype(R, G.dtype, copy=False), G, axes=([1], [i])), 0, i
            )
        return to_caller(G, kind)
