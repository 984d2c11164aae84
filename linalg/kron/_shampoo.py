"""Shampoo: one Kronecker factor per tensor dimension, preconditioning by inverse roots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from linalg._core.namespace import array_kind, to_caller, to_numpy
from linalg._core.validate import as_float_array, check_int, check_real
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
    statistics : list of numpy.ndarray
        The statistics ``L_1`` to ``L_k``, float64 zeros until the first update, whose
        dtype (float32 or float64) they keep from then on; later gradients are
        cast to it.
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

    def _gradient(self, grad: Any) -> np.ndarray:
        G = as_float_array(to_numpy(grad, "grad"), "grad")
        if G.shape != self.shape:
            raise ValueError(f"grad must have shape {self.shape}, got {G.shape}")
        return G

    def update(self, grad: Any) -> None:
        """Add ``grad``'s contribution to every statistic (the input is not modified).

        Parameters
        ----------
        grad : array_like
            A gradient of shape :attr:`shape`, finite (NumPy, or a CPU tensor).
        """
        G = self._gradient(grad)
        dtype = G.dtype if self.n_updates == 0 else self.statistics[0].dtype
        G = G.astype(dtype, copy=False)
        axes = range(G.ndim)
        for i, S in enumerate(self.statistics):
            others = [a for a in axes if a != i]
            contribution = np.tensordot(G, G, axes=(others, others))
            S = S.astype(dtype, copy=False)
            if self.beta2 is None:
                self.statistics[i] = S + contribution
            else:
                self.statistics[i] = self.beta2 * S + (1.0 - self.beta2) * contribution
        self.n_updates += 1
        self._roots = None

    def precondition(self, grad: Any) -> Any:
        """Return ``grad`` preconditioned along every axis ``i`` by ``(L_i + eps I)^(-1/(2k))``.

        That is ``grad ×_1 (L_1 + eps I)^(-1/(2k)) ×_2 … ×_k (L_k + eps I)^(-1/(2k))``.

        Parameters
        ----------
        grad : array_like
            A gradient of shape :attr:`shape`, finite (NumPy, or a CPU tensor).

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
        kind = array_kind(grad)
        G = self._gradient(grad)
        if self.n_updates:
            G = G.astype(self.statistics[0].dtype, copy=False)
        if self._roots is None:
            power = 2 * len(self.shape)
            self._roots = [
                matrix_inverse_root(S.astype(G.dtype, copy=False), power, eps=self.eps)
                for S in self.statistics
            ]
        for i, R in enumerate(self._roots):
            G = np.moveaxis(np.tensordot(R.astype(G.dtype, copy=False), G, axes=(1, i)), 0, i)
        return to_caller(G, kind)
