"""The K-FAC factors of a linear layer: one batch, or running averages."""

from __future__ import annotations

from typing import Any

import numpy as np

from linalg._core.namespace import (
    NUMPY,
    ArrayKind,
    array_kind,
    common_kind,
    device_of,
    namespace_of,
    to_caller,
)
from linalg._core.validate import check_bool, check_int, check_real, float_input

__all__ = ["KFACFactors", "kfac_factors"]


def _factor_inputs(activations: Any, grad_outputs: Any) -> tuple[Any, Any, ArrayKind]:
    """Validated ``a`` and ``g`` (NumPy for host data, else where they live) and their kind."""
    kind = common_kind(activations, grad_outputs)
    a = float_input(activations, "activations", ndim=2)[0]
    g = float_input(grad_outputs, "grad_outputs", ndim=2)[0]
    if a.shape[0] != g.shape[0]:
        raise ValueError(
            f"activations and grad_outputs must have the same number of rows (samples), "
            f"got {a.shape[0]} and {g.shape[0]}"
        )
    return a, g, kind


def _second_moments(a: Any, g: Any, bias: bool) -> tuple[Any, Any]:
    """``(aᵀa / n, gᵀg / n)``, a column of ones appended to ``a`` when ``bias``."""
    xp, n = namespace_of(a), a.shape[0]
    if bias:
        a = xp.concat([a, xp.ones((n, 1), dtype=a.dtype, device=device_of(a))], axis=1)
    # a.T @ a is recognized by NumPy as SYRK: exactly symmetric.
    return (a.T @ a) / n, (g.T @ g) / n


def kfac_factors(activations: Any, grad_outputs: Any, *, bias: bool = False) -> tuple[Any, Any]:
    """The K-FAC factors ``A = aᵀa / n`` and ``G = gᵀg / n`` of a linear layer.

    Parameters
    ----------
    activations : array_like, shape (n, in)
        The layer's inputs ``a``, one sample per row.
    grad_outputs : array_like, shape (n, out)
        The gradients ``g`` of the loss with respect to the layer's outputs.
    bias : bool, default False
        Append a column of ones to ``a`` (a layer with a bias): ``A`` is then
        ``(in + 1, in + 1)``.

    Returns
    -------
    A, G : array
        ``(in, in)`` (or ``(in + 1, in + 1)``) and ``(out, out)``, in the
        caller's array type: CuPy arrays and GPU tensors are multiplied on
        their device.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.kron import kfac_factors
    >>> A, G = kfac_factors(np.array([[1.0], [3.0]]), np.array([[2.0], [0.0]]), bias=True)
    >>> A
    array([[5., 2.],
           [2., 1.]])
    >>> G
    array([[2.]])
    """
    a, g, kind = _factor_inputs(activations, grad_outputs)
    A, G = _second_moments(a, g, check_bool(bias, "bias"))
    return to_caller(A, kind), to_caller(G, kind)


class KFACFactors:
    """Running (exponential moving) averages of the K-FAC factors.

    The first :meth:`update` sets ``A`` and ``G`` to that batch's factors;
    each later one sets ``A = decay A + (1 - decay) A_batch`` (and the same
    for ``G``), with ``A_batch, G_batch = kfac_factors(a, g, bias=bias)``.

    Parameters
    ----------
    dim_in, dim_out : int
        The layer's input and output sizes (``dim_in`` without the bias column).
    decay : float, default 0.95
        In ``[0, 1)``.
    bias : bool, default False
        As in :func:`kfac_factors`.

    Attributes
    ----------
    A, G : array or None
        The averages (``None`` before the first update), in the array type of
        the last update's inputs.
    n_updates : int
        How many batches have been averaged.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.kron import KFACFactors
    >>> factors = KFACFactors(1, 1, decay=0.5)
    >>> factors.update(np.array([[2.0]]), np.array([[1.0]]))  # A = 4
    <KFACFactors in=1 out=1 bias=False after 1 updates>
    >>> factors.update(np.ones((1, 1)), np.ones((1, 1)))  # A = 0.5 * 4 + 0.5 * 1
    <KFACFactors in=1 out=1 bias=False after 2 updates>
    >>> factors.A
    array([[2.5]])
    """

    def __init__(self, dim_in: int, dim_out: int, *, decay: float = 0.95, bias: bool = False):
        self.dim_in = check_int(dim_in, "dim_in", low=1)
        self.dim_out = check_int(dim_out, "dim_out", low=1)
        self.decay = check_real(decay, "decay", low=0.0, high=1.0)
        if self.decay == 1.0:
            raise ValueError("decay must be < 1 (1 would ignore every batch after the first)")
        self.bias = check_bool(bias, "bias")
        self.n_updates = 0
        self._A: np.ndarray | None = None
        self._G: np.ndarray | None = None
        self._kind = NUMPY

    @property
    def A(self) -> Any:
        return None if self._A is None else to_caller(self._A, self._kind)

    @property
    def G(self) -> Any:
        return None if self._G is None else to_caller(self._G, self._kind)

    def update(self, activations: Any, grad_outputs: Any) -> KFACFactors:
        """Average in one batch; ``activations (n, dim_in)``, ``grad_outputs (n, dim_out)``."""
        a, g, kind = _factor_inputs(activations, grad_outputs)
        if a.shape[1] != self.dim_in or g.shape[1] != self.dim_out:
            raise ValueError(
                f"activations and grad_outputs must have {self.dim_in} and {self.dim_out} "
                f"columns, got shapes {tuple(a.shape)} and {tuple(g.shape)}"
            )
        held = array_kind(self._A)
        if self._A is not None and held != array_kind(a):
            raise TypeError(
                f"activations hold {array_kind(a)}, but the averages hold {held} since the "
                "first update: pass batches of one array type and device"
            )
        A, G = _second_moments(a, g, self.bias)
        if self._A is not None:
            A = self.decay * self._A + (1.0 - self.decay) * A
            G = self.decay * self._G + (1.0 - self.decay) * G
        self._A, self._G, self._kind = A, G, kind
        self.n_updates += 1
        return self

    def __repr__(self) -> str:
        return (
            f"<KFACFactors in={self.dim_in} out={self.dim_out} bias={self.bias} "
            f"after {self.n_updates} updates>"
        )
