"""The inverse of an SPD matrix kept current under rank-one updates (Sherman–Morrison)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import get_blas_funcs, get_lapack_funcs

from linalg._core.namespace import common_kind, to_caller, to_numpy
from linalg._core.operators import Operator
from linalg._core.random import as_random_stream
from linalg._core.results import LinAlgError
from linalg._core.validate import as_float_array, check_int, check_real, check_symmetric

__all__ = ["InverseFactor", "spd_cholesky"]

# An update whose correction is this many times larger than the inverse it leaves
# behind (cancellation) is followed by a refactorization at once.
_CANCELLATION_LIMIT = 1e3
# The probe residual may grow to this multiple of its value after a refactorization.
_BASELINE_FACTOR = 100.0
# Pending scale factors (from decay) are folded into the matrices outside this range.
_SCALE_RANGE = (1e-30, 1e30)


def spd_cholesky(A: np.ndarray, name: str) -> np.ndarray:
    """The upper Cholesky factor ``U`` (``A = Uᵀ U``) of a validated square ``A``.

    Raises ValueError if ``A`` is not symmetric and LinAlgError, naming the
    remedy, if it is not positive definite.
    """
    check_symmetric(A, name)
    (potrf,) = get_lapack_funcs(("potrf",), (A,))
    U, info = potrf(A, lower=False, clean=True)
    if info != 0:
        raise LinAlgError(
            f"{name} is not positive definite (Cholesky failed at column {info - 1}); "
            f"add damping: pass {name} + lambda * I with lambda > 0"
        )
    return U


class InverseFactor(Operator):
    """``A⁻¹`` of a symmetric positive definite ``A``, updated in O(n²) per rank-one change.

    :meth:`rank_one_update` sets ``A <- decay * A + alpha * u uᵀ`` and updates
    the inverse by Sherman–Morrison: with ``beta = alpha / decay``,
    ``w = A⁻¹ u`` and ``delta = 1 + beta uᵀ w``,
    ``A_new⁻¹ = (A⁻¹ - (beta / delta) w wᵀ) / decay``, as in MKOR (Mozaffari
    et al., 2023). The correction ``w wᵀ`` is exactly symmetric, so the
    inverse stays exactly symmetric. ``A`` itself is kept too (also O(n²)),
    and the inverse is refactorized from it by Cholesky when

    - ``delta <= sqrt(eps) * (1 + |beta uᵀ w|)`` (a near-singular update,
      where the formula cancels, or an indefinite one, refused with
      LinAlgError); then Sherman–Morrison is skipped;
    - the trace of the correction ``(beta / delta) w wᵀ`` exceeds 1000 times
      the trace of the result (cancellation: an update that undoes a
      near-singular ``A``);
    - a probe check fails: every ``check_every`` updates, the residual
      ``||A (A⁻¹ x) - x|| / ||x||`` for a random normal ``x`` is compared with
      ``max(rtol, 100 * r0)``, ``r0`` its value just after the last
      refactorization (an ill-conditioned ``A`` has a larger floor). Repeated
      Sherman–Morrison updates lose accuracy steadily, so this check is what
      keeps the inverse accurate over long sequences.

    An update costs one matrix-vector product and two BLAS ``ger`` passes:
    ``decay`` is kept as a pending scale on each matrix and folded into the
    entries at the probe checks (and when :attr:`inverse` or :attr:`matrix`
    is read). The object is an :class:`~linalg._core.operators.Operator`
    for ``A⁻¹``.

    Parameters
    ----------
    A : array_like, shape (n, n)
        Symmetric positive definite, float32 or float64 (integers promoted to
        float64). Copied; never modified.
    check_every : int, default 16
        Updates between probe checks (``>= 1``).
    rtol : float, optional
        Probe residual that triggers a refactorization; default ``eps ** 0.75``
        (``1.8e-12`` in float64, ``6.4e-6`` in float32). Rounding errors of the
        updates grow the residual at least linearly (about ``3e-15`` per update
        at ``n = 2048`` in float64), so a smaller value refactorizes more often.
    rng : None, int, numpy.random.Generator or RandomStream, optional
        Seeds the probe vectors.

    Attributes
    ----------
    n_updates : int
        Rank-one updates applied.
    n_refactorizations : int
        Cholesky refactorizations after construction.
    shape, dtype
        ``(n, n)`` and the dtype of ``A``.

    Raises
    ------
    LinAlgError
        If ``A`` is not positive definite (the message says to add damping).

    References
    ----------
    M. Mozaffari, S. Li, Z. Zhang and M. M. Dehnavi, "MKOR: Momentum-Enabled
    Kronecker-Factor-Based Optimizer Using Rank-1 Updates", NeurIPS 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.kron import InverseFactor
    >>> F = InverseFactor(np.eye(3))
    >>> F.rank_one_update(np.array([1.0, 0.0, 1.0]), alpha=2.0, decay=0.5)
    >>> np.allclose(F.inverse, np.linalg.inv(F.matrix))
    True
    >>> F.solve(np.array([4.5, 0.5, 4.5]))  # A = [[2.5, 0, 2], [0, 0.5, 0], [2, 0, 2.5]]
    array([1., 1., 1.])
    """

    def __init__(
        self, A: Any, *, check_every: int = 16, rtol: float | None = None, rng: Any = None
    ) -> None:
        A = as_float_array(to_numpy(A, "A"), "A", ndim=2)
        upper = spd_cholesky(A, "A")
        super().__init__(A.shape, A.dtype)
        self.check_every = check_int(check_every, "check_every", low=1)
        eps = float(np.finfo(A.dtype).eps)
        self.rtol = eps**0.75 if rtol is None else check_real(rtol, "rtol", low=0.0)
        self._eps = eps
        self._stream = as_random_stream(rng)
        self._n_probes = 0
        self._A = np.array((A + A.T) / 2, dtype=A.dtype, order="C")
        self._inverse = np.empty_like(self._A)
        # A = _scale_A * _A and A⁻¹ = _scale_inv * _inverse: decays touch no matrix entries
        self._scale_A = self._scale_inv = 1.0
        self._ger = get_blas_funcs("ger", (self._A,))
        self.n_updates = 0
        self.n_refactorizations = 0
        self._since_check = 0
        self._invert(upper)

    @property
    def inverse(self) -> np.ndarray:
        """``A⁻¹`` as a read-only view (copy it to keep it past the next update)."""
        self._fold()
        return _read_only(self._inverse)

    @property
    def matrix(self) -> np.ndarray:
        """The maintained ``A`` as a read-only view."""
        self._fold()
        return _read_only(self._A)

    def rank_one_update(self, u: Any, *, alpha: float = 1.0, decay: float = 1.0) -> None:
        """``A <- decay * A + alpha * u uᵀ`` and its inverse, in O(n²).

        Parameters
        ----------
        u : array_like, shape (n,)
            Finite. Never modified.
        alpha : float, default 1.0
            Weight of ``u uᵀ``; negative values downdate.
        decay : float, default 1.0
            Factor on the old ``A`` (``> 0``).

        Raises
        ------
        LinAlgError
            If the update would make ``A`` indefinite; the object is then left
            as it was.
        """
        n = self.shape[0]
        u = as_float_array(to_numpy(u, "u"), "u", ndim=1, dtype=self.dtype)
        if u.shape != (n,):
            raise ValueError(f"u must have length {n} (the size of A), got shape {u.shape}")
        alpha = check_real(alpha, "alpha")
        decay = check_real(decay, "decay", low=0.0, low_inclusive=False)
        beta = alpha / decay
        w = self._scale_inv * (self._inverse @ u)
        uw = float(u @ w)
        delta = 1.0 + beta * uw
        if delta <= np.sqrt(self._eps) * (1.0 + abs(beta * uw)):
            self._update_matrix(u, alpha, decay, restore_on_failure=True)
            return
        old_trace = self._scale_inv * float(np.trace(self._inverse))
        self._update_matrix(u, alpha, decay, restore_on_failure=False)
        self._scale_inv /= decay
        self._add_outer(self._inverse, -beta / (delta * decay * self._scale_inv), w)
        self.n_updates += 1
        self._since_check += 1
        correction = beta * float(w @ w) / delta
        if abs(correction) > _CANCELLATION_LIMIT * abs(old_trace - correction):
            self._refactorize()
        elif self._since_check >= self.check_every:
            self._check()

    def solve(self, X: Any) -> Any:
        """``A⁻¹ X`` for ``X`` of shape ``(n,)`` or ``(n, k)``, in the caller's array type."""
        kind = common_kind(X)
        X = as_float_array(to_numpy(X, "X"), "X", ndim=(1, 2))
        if X.shape[0] != self.shape[0]:
            raise ValueError(f"X must have {self.shape[0]} rows (the size of A), got {X.shape}")
        return to_caller(self._apply(X), kind)

    def _apply(self, X: np.ndarray) -> np.ndarray:
        return (self._inverse @ X) * self.dtype.type(self._scale_inv)

    _matvec = _matmat = _rmatvec = _rmatmat = _apply

    def _update_matrix(
        self, u: np.ndarray, alpha: float, decay: float, *, restore_on_failure: bool
    ) -> None:
        """Update ``A`` in place; with ``restore_on_failure``, refactorize (or roll back)."""
        if not restore_on_failure:
            self._scale_A *= decay
            self._add_outer(self._A, alpha / self._scale_A, u)
            if not _SCALE_RANGE[0] < self._scale_A < _SCALE_RANGE[1]:
                self._fold()
            return
        self._fold()
        old = self._A.copy()
        self._A *= self.dtype.type(decay)
        self._add_outer(self._A, alpha, u)
        try:
            upper = spd_cholesky(self._A, "A")
        except LinAlgError as exc:
            self._A[...] = old
            raise LinAlgError(
                f"the update (alpha={alpha:g}, decay={decay:g}) makes A indefinite, so it "
                "was not applied; use a smaller downdate |alpha| or add damping to A"
            ) from exc
        self._invert(upper)
        self.n_updates += 1
        self.n_refactorizations += 1

    def _add_outer(self, X: np.ndarray, coefficient: float, v: np.ndarray) -> None:
        """``X += coefficient * v vᵀ`` in place (BLAS ger), keeping ``X`` exactly symmetric.

        ``ger`` scales one of its vectors by its ``alpha``, which would round
        ``X[i, j]`` and ``X[j, i]`` differently; with ``z = sqrt(|c|) v`` and
        ``alpha = ±1`` both entries get the same product ``z_i z_j``.
        """
        z = np.sqrt(abs(coefficient)) * v
        self._ger(np.copysign(1.0, coefficient), z, z, a=X.T, overwrite_a=True)

    def _fold(self) -> None:
        """Multiply the pending scales into ``_A`` and ``_inverse``."""
        if self._scale_A != 1.0:
            self._A *= self.dtype.type(self._scale_A)
        if self._scale_inv != 1.0:
            self._inverse *= self.dtype.type(self._scale_inv)
        self._scale_A = self._scale_inv = 1.0

    def _invert(self, upper: np.ndarray) -> None:
        """Set the inverse from the upper Cholesky factor of the folded ``A``."""
        (potri,) = get_lapack_funcs(("potri",), (upper,))
        inverse, info = potri(upper, lower=False)
        if info != 0:
            raise LinAlgError(f"inverting the Cholesky factor of A failed (info={info})")
        upper_part = np.triu(inverse)
        self._inverse[...] = upper_part + np.triu(upper_part, 1).T
        self._scale_inv = 1.0
        self._since_check = 0
        self._baseline = self._probe()

    def _probe(self) -> float:
        x = self._stream.normal(self.shape[0], dtype=self.dtype, offset=self._n_probes)
        self._n_probes += self.shape[0]
        residual = self._A @ (self._inverse @ x) - x
        return float(np.linalg.norm(residual) / np.linalg.norm(x))

    def _check(self) -> None:
        self._since_check = 0
        self._fold()
        if self._probe() > max(self.rtol, _BASELINE_FACTOR * self._baseline):
            self._refactorize()

    def _refactorize(self) -> None:
        self._fold()
        self._invert(spd_cholesky(self._A, "A"))
        self.n_refactorizations += 1

    def __repr__(self) -> str:
        n = self.shape[0]
        return (
            f"<{n}x{n} InverseFactor with n_updates={self.n_updates}, "
            f"n_refactorizations={self.n_refactorizations}, dtype={self.dtype}>"
        )


def _read_only(x: np.ndarray) -> np.ndarray:
    view = x.view()
    view.flags.writeable = False
    return view
