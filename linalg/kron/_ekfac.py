"""EK-FAC: K-FAC's Kronecker eigenbasis with a refitted diagonal scaling."""

from __future__ import annotations

from typing import Any

import numpy as np

from linalg._core.namespace import check_lives_with
from linalg._core.validate import float_input
from linalg.kron._factored import KroneckerFactored
from linalg.kron._products import astype, eigh, inverse_scale

__all__ = ["EKFAC"]


class EKFAC(KroneckerFactored):
    """Eigenvalue-corrected K-FAC (George et al. 2018, "Fast Approximate Natural
    Gradient Descent in a Kronecker-factored Eigenbasis").

    With ``A = Q_A Λ_A Q_Aᵀ`` and ``G = Q_G Λ_G Q_Gᵀ``, the Fisher of a weight
    ``(out, in)`` is approximated in the Kronecker eigenbasis by a diagonal
    scaling ``S`` (``(out, in)``): ``F V = Q_G [S * (Q_Gᵀ V Q_A)] Q_Aᵀ``, and
    :meth:`solve` applies ``Y = Q_G [(Q_Gᵀ V Q_A) / (S + λ)] Q_Aᵀ``. Before
    :meth:`fit_eigenvalues`, ``S = λ_G λ_Aᵀ`` (then ``solve`` is K-FAC's
    ``"exact"`` mode); after it, ``S_ij = mean_n (Q_Gᵀ g_n Q_A)_ij²``.

    Parameters
    ----------
    A : array_like, shape (in, in)
        Symmetric input factor. Never modified.
    G : array_like, shape (out, out)
        Symmetric output-gradient factor.
    damping : float
        ``λ >= 0``.
    engine : {"auto", "reference"}, optional
        Only ``"reference"`` is registered (see Notes).

    Attributes
    ----------
    A, G : array
        The factors (NumPy for host inputs, else the inputs' library, whose
        device then holds every piece).
    scaling : array, shape (out, in)
        ``S`` (float64).
    fitted : bool
        Whether ``S`` was refitted since the factors were last set.
    damping, dim_in, dim_out, dtype, engine
        As in :class:`~linalg.kron._kfac.KFAC`.

    Raises
    ------
    LinAlgError
        On use, if ``S + λ`` has an entry that is not positive: increase damping.

    Notes
    -----
    The eigendecompositions (float64) are computed on first use and kept;
    :meth:`solve` is four GEMMs and an elementwise product, and the fit two
    batched GEMMs over the samples. All of it is BLAS-3: only the reference
    engine is registered.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.kron import EKFAC
    >>> ekfac = EKFAC(np.eye(2), np.eye(1), damping=1.0)
    >>> ekfac.solve(np.array([[2.0, 4.0]]))  # S = 1
    array([[1., 2.]])
    >>> ekfac.fit_eigenvalues(np.array([[[1.0, 0.0]], [[1.0, 0.0]]])).scaling
    array([[1., 0.]])
    >>> ekfac.solve(np.array([[2.0, 4.0]]))
    array([[1., 4.]])
    """

    _operation = "kron.ekfac"

    def __init__(self, A: Any, G: Any, *, damping: float, engine: str | None = None) -> None:
        super().__init__(A, G, damping, engine)

    def update(self, A: Any, G: Any) -> EKFAC:
        """Replace the factors; the eigenbasis is recomputed and ``S`` reset to ``λ_G λ_Aᵀ``."""
        super().update(A, G)
        self._scaling: np.ndarray | None = None
        self._inverse: np.ndarray | None = None
        self.fitted = False
        return self

    def _factorize(self) -> tuple[np.ndarray, ...]:
        w_A, Q_A = eigh(self.A)
        w_G, Q_G = eigh(self.G)
        return astype(Q_G, self.dtype), astype(Q_A, self.dtype), w_G[:, None] * w_A[None, :]

    @property
    def scaling(self) -> np.ndarray:
        if self._scaling is None:
            self._scaling = self._pieces[2]
        return self._scaling

    def fit_eigenvalues(self, per_sample_grads: Any) -> EKFAC:
        """Refit ``S_ij = mean_n (Q_Gᵀ g_n Q_A)_ij²`` from per-sample gradients.

        Parameters
        ----------
        per_sample_grads : array_like, shape (n, out, in)
            The weight gradient of each sample.

        Returns
        -------
        EKFAC
            ``self``.
        """
        check_lives_with(per_sample_grads, "per_sample_grads", self._kind, "the factors")
        grads = float_input(per_sample_grads, "per_sample_grads", ndim=3)[0]
        if tuple(grads.shape[1:]) != (self.dim_out, self.dim_in):
            raise ValueError(
                f"per_sample_grads must have shape (n, {self.dim_out}, {self.dim_in}), "
                f"got {tuple(grads.shape)}"
            )
        Q_G, Q_A, _ = self._pieces
        projected = self._kernels.sandwich(Q_G.T, astype(grads, self.dtype), Q_A)
        self._scaling = _mean_square(projected, self.xp)
        self._inverse = None
        self.fitted = True
        return self

    @property
    def _inverse_scale(self) -> np.ndarray:
        if self._inverse is None:
            what = "the EK-FAC scaling S" if self.fitted else "A ⊗ G"
            self._inverse = inverse_scale(self.scaling, self.damping, what)
        return self._inverse

    def _solve(self, V: np.ndarray) -> np.ndarray:
        Q_G, Q_A, _ = self._pieces
        return self._kernels.eigen_solve(Q_G, Q_A, astype(self._inverse_scale, self.dtype), V)

    def _matvec(self, V: np.ndarray) -> np.ndarray:
        Q_G, Q_A, _ = self._pieces
        return self._kernels.eigen_solve(Q_G, Q_A, astype(self.scaling, self.dtype), V)

    def _logdet(self) -> float:
        return -float(self.xp.sum(self.xp.log(self._inverse_scale)))

    def __repr__(self) -> str:
        return (
            f"<EKFAC in={self.dim_in} out={self.dim_out} damping={self.damping:g} "
            f"fitted={self.fitted} dtype={self.dtype}>"
        )


def _mean_square(X: Any, xp: Any) -> Any:
    """``mean_n X[n]²`` in float64 (squares taken in float64, as NumPy's ``dtype=``)."""
    if isinstance(X, np.ndarray):
        return np.mean(np.square(X, dtype=np.float64), axis=0)
    X = xp.astype(X, xp.float64)
    return xp.mean(X * X, axis=0)
