"""K-FAC: Kronecker factors of a layer's Fisher and the damped inverse they define."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import lapack

from linalg._core.engines import select
from linalg._core.namespace import NUMPY, common_kind, to_caller, to_numpy
from linalg._core.results import LinAlgError
from linalg._core.validate import as_float_array, check_bool, check_int, check_real, result_dtype
from linalg.kron._products import (
    check_damping,
    check_matrices,
    eigh,
    inverse_operator,
    inverse_scale,
    symmetric_factor,
)

__all__ = ["KFAC", "KFACFactors", "kfac_factors"]

_MODES = ("plain", "pi", "exact")


def _factor_inputs(activations: Any, grad_outputs: Any) -> tuple[np.ndarray, np.ndarray]:
    a = as_float_array(to_numpy(activations, "activations"), "activations", ndim=2)
    g = as_float_array(to_numpy(grad_outputs, "grad_outputs"), "grad_outputs", ndim=2)
    if a.shape[0] != g.shape[0]:
        raise ValueError(
            f"activations and grad_outputs must have the same number of rows (samples), "
            f"got {a.shape[0]} and {g.shape[0]}"
        )
    return a, g


def _second_moments(a: np.ndarray, g: np.ndarray, bias: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(aᵀa / n, gᵀg / n)``, a column of ones appended to ``a`` when ``bias``."""
    n = a.shape[0]
    if bias:
        a = np.concatenate([a, np.ones((n, 1), a.dtype)], axis=1)
    # a.T @ a is recognized by NumPy as SYRK: exactly symmetric.
    return (a.T @ a) / a.dtype.type(n), (g.T @ g) / g.dtype.type(n)


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
        caller's array type.

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
    kind = common_kind(activations, grad_outputs)
    a, g = _factor_inputs(activations, grad_outputs)
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
        kind = common_kind(activations, grad_outputs)
        a, g = _factor_inputs(activations, grad_outputs)
        if a.shape[1] != self.dim_in or g.shape[1] != self.dim_out:
            raise ValueError(
                f"activations and grad_outputs must have {self.dim_in} and {self.dim_out} "
                f"columns, got shapes {a.shape} and {g.shape}"
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


class KroneckerFactored:
    """What K-FAC and EK-FAC share: factors, validation, lazy factorizations, plumbing.

    Subclasses set ``_operation`` and implement ``_factorize`` (the cached
    pieces), ``_solve``, ``_matvec`` and ``_logdet`` on NumPy arrays.
    """

    _operation: str

    def __init__(self, A: Any, G: Any, damping: float, engine: str | None) -> None:
        self.damping = check_damping(damping)
        self._engine = engine
        self.update(A, G)

    def update(self, A: Any, G: Any) -> KroneckerFactored:
        """Replace the factors; the factorizations are recomputed on next use."""
        kind = common_kind(A, G)
        A = symmetric_factor(A, "A")
        G = symmetric_factor(G, "G")
        dtype = result_dtype(A.dtype, G.dtype)
        implementation = select(self._operation, engine=self._engine, kind=NUMPY, dtype=dtype)
        self._kernels = implementation.load()
        self.engine = implementation.engine
        self.A, self.G, self.dtype, self._kind = A, G, dtype, kind
        self.dim_in, self.dim_out = A.shape[0], G.shape[0]
        self._cache = None
        return self

    @property
    def _pieces(self) -> Any:
        if self._cache is None:
            self._cache = self._factorize()
        return self._cache

    def solve(self, V: Any) -> Any:
        """The damped inverse applied to ``V``, shape ``(out, in)`` or ``(k, out, in)``."""
        return self._public(V, self._solve)

    def matvec(self, V: Any) -> Any:
        """The undamped approximate Fisher applied to ``V`` (``(out, in)`` or batched)."""
        return self._public(V, self._matvec)

    def logdet(self) -> float:
        """``log det`` of the damped matrix whose inverse :meth:`solve` applies."""
        return float(self._logdet())

    def as_linear_operator(self):
        """The inverse as a SciPy LinearOperator on column-major ``vec(V)`` (``V.T.ravel()``)."""
        return inverse_operator(self._solve, (self.dim_out, self.dim_in), self.dtype)

    def _public(self, V: Any, apply) -> Any:
        kind = common_kind(V)
        V = check_matrices(V, "V", (self.dim_out, self.dim_in))
        Y = apply(V).astype(result_dtype(self.dtype, V.dtype), copy=False)
        return to_caller(Y, self._kind if kind == NUMPY else kind)


def _spd_inverse(M: np.ndarray, shift: float, name: str) -> tuple[np.ndarray, float]:
    """``(M + shift I)⁻¹`` and ``log det(M + shift I)``, by LAPACK potrf + potri in float64.

    potri forms the inverse from the Cholesky factor in ``n³ / 3`` flops more
    (a third of an LU-based inverse); it fills the lower triangle only.
    """
    damped = M.astype(np.float64)
    damped[np.diag_indices_from(damped)] += shift
    L, info = lapack.dpotrf(damped, lower=1, clean=1, overwrite_a=1)
    if info != 0:
        raise LinAlgError(f"{name} + {shift:.3g} I is not positive definite; increase damping")
    inverse, info = lapack.dpotri(L, lower=1, overwrite_c=0)
    if info != 0:
        raise LinAlgError(f"{name} + {shift:.3g} I is singular; increase damping")
    lower = np.tril(inverse)
    lower += np.tril(inverse, -1).T
    return lower, 2.0 * float(np.log(np.diagonal(L)).sum())


class KFAC(KroneckerFactored):
    """The damped K-FAC inverse for a weight gradient ``V`` of shape ``(out, in)``.

    The layer's Fisher is approximated by ``A ⊗ G`` on column-major
    ``vec(V)`` (``F vec(V) = vec(G V A)``). :meth:`solve` applies a damped
    inverse, by ``damping_mode`` (``λ = damping``):

    * ``"plain"``: ``Y = (G + √λ I)⁻¹ V (A + √λ I)⁻¹``;
    * ``"pi"``: ``Y = (G + (√λ/π) I)⁻¹ V (A + π√λ I)⁻¹`` with
      ``π = sqrt((tr A / dim A) / (tr G / dim G))`` (1 if either trace is 0);
    * ``"exact"``: ``Y`` solves ``G Y A + λ Y = V``; with ``A = Q_A Λ_A Q_Aᵀ``
      and ``G = Q_G Λ_G Q_Gᵀ``, ``Y = Q_G [(Q_Gᵀ V Q_A) / (λ_G λ_Aᵀ + λ)] Q_Aᵀ``.

    Parameters
    ----------
    A : array_like, shape (in, in)
        Symmetric input factor (e.g. from :func:`kfac_factors`). Never modified.
    G : array_like, shape (out, out)
        Symmetric output-gradient factor.
    damping : float
        ``λ >= 0``; 0 is allowed where the damped factors stay positive definite.
    damping_mode : {"pi", "plain", "exact"}, default "pi"
    engine : {"auto", "reference"}, optional
        Only ``"reference"`` is registered (see Notes).

    Attributes
    ----------
    A, G : numpy.ndarray
        The factors (NumPy views of the inputs).
    damping, damping_mode, dim_in, dim_out
        As given / the factor sizes.
    dtype : numpy.dtype
        float32 if both factors are float32, else float64.
    engine : str
        The engine used.

    Raises
    ------
    LinAlgError
        On first use, if a damped factor (or the damped Kronecker matrix, for
        ``"exact"``) is not positive definite: increase damping.

    Notes
    -----
    The factorizations are computed once, on first use, in float64, and kept
    in :attr:`dtype`: for ``"plain"``/``"pi"`` the Cholesky factors give the
    explicit damped inverses, so :meth:`solve` is two GEMMs; for ``"exact"``
    the eigendecompositions give :meth:`solve` as four GEMMs and one
    elementwise product with the precomputed ``1 / (λ_G λ_Aᵀ + λ)``. All the
    work is BLAS-3, so only the reference engine (NumPy's BLAS) is registered.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.kron import KFAC
    >>> kfac = KFAC(np.diag([1.0, 3.0]), np.array([[2.0]]), damping=1.0, damping_mode="exact")
    >>> kfac.solve(np.array([[3.0, 7.0]]))  # (2 * [1, 3] + 1) Y = V
    array([[1., 1.]])
    >>> print(f"{kfac.logdet():.6f} {np.log(3.0 * 7.0):.6f}")
    3.044522 3.044522
    """

    _operation = "kron.kfac"

    def __init__(
        self,
        A: Any,
        G: Any,
        *,
        damping: float,
        damping_mode: str = "pi",
        engine: str | None = None,
    ) -> None:
        if damping_mode not in _MODES:
            raise ValueError(
                f"damping_mode must be one of {', '.join(map(repr, _MODES))}, got {damping_mode!r}"
            )
        self.damping_mode = damping_mode
        super().__init__(A, G, damping, engine)

    @property
    def pi(self) -> float:
        """The π of ``"pi"`` damping (1 for the other modes)."""
        if self.damping_mode != "pi":
            return 1.0
        mean_A = np.trace(self.A, dtype=np.float64) / self.dim_in
        mean_G = np.trace(self.G, dtype=np.float64) / self.dim_out
        return float(np.sqrt(mean_A / mean_G)) if mean_A > 0 and mean_G > 0 else 1.0

    def _factorize(self) -> tuple[np.ndarray, ...]:
        if self.damping_mode == "exact":
            w_A, Q_A = eigh(self.A)
            w_G, Q_G = eigh(self.G)
            scale = inverse_scale(np.outer(w_G, w_A), self.damping, "A ⊗ G")
            logdet = -np.log(scale).sum()
            return Q_G.astype(self.dtype), Q_A.astype(self.dtype), scale.astype(self.dtype), logdet
        root, pi = np.sqrt(self.damping), self.pi
        A_inv, logdet_A = _spd_inverse(self.A, pi * root, "A")
        G_inv, logdet_G = _spd_inverse(self.G, root / pi, "G")
        logdet = self.dim_out * logdet_A + self.dim_in * logdet_G
        return G_inv.astype(self.dtype), A_inv.astype(self.dtype), logdet

    def _solve(self, V: np.ndarray) -> np.ndarray:
        if self.damping_mode == "exact":
            Q_G, Q_A, scale, _ = self._pieces
            return self._kernels.eigen_solve(Q_G, Q_A, scale, V)
        G_inv, A_inv, _ = self._pieces
        return self._kernels.sandwich(G_inv, V, A_inv)

    def _matvec(self, V: np.ndarray) -> np.ndarray:
        return self._kernels.sandwich(self.G, V, self.A)

    def _logdet(self) -> float:
        return self._pieces[-1]

    def __repr__(self) -> str:
        return (
            f"<KFAC in={self.dim_in} out={self.dim_out} damping={self.damping:g} "
            f"mode={self.damping_mode!r} dtype={self.dtype}>"
        )
