"""The inverse of an SPD matrix kept current under rank-one updates (Sherman–Morrison)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.linalg import get_blas_funcs, get_lapack_funcs

from linalg._core.namespace import (
    array_kind,
    check_lives_with,
    cholesky_or_none,
    placement_of,
    to_caller,
    to_host,
    to_numpy,
)
from linalg._core.operators import Operator, check_host_data
from linalg._core.random import as_random_stream
from linalg._core.results import LinAlgError
from linalg._core.validate import (
    as_float_array,
    as_float_namespace_array,
    check_int,
    check_real,
    check_symmetric,
    float_input,
)

__all__ = ["InverseFactor", "spd_cholesky"]

# An update whose correction is this many times larger than the inverse it leaves
# behind (cancellation) is followed by a refactorization at once.
_CANCELLATION_LIMIT = 1e3
# The probe residual may grow to this multiple of its value after a refactorization.
_BASELINE_FACTOR = 100.0
# Pending scale factors (from decay) are folded into the matrices outside this range.
_SCALE_RANGE = (1e-30, 1e30)


def spd_cholesky(A: Any, name: str) -> Any:
    """The upper Cholesky factor ``U`` (``A = Uᵀ U``) of a validated square ``A``.

    NumPy input is factored by LAPACK; device data (CuPy, a GPU tensor, another
    array-API library) in its own namespace, ``U`` then being the transpose of
    the lower factor. Raises ValueError if ``A`` is not symmetric and
    LinAlgError, naming the remedy, if it is not positive definite.
    """
    check_symmetric(A, name)
    if isinstance(A, np.ndarray):
        (potrf,) = get_lapack_funcs(("potrf",), (A,))
        U, info = potrf(A, lower=False, clean=True)
        if info == 0:
            return U
        where = f" at column {info - 1}"
    else:
        lower = cholesky_or_none(A)
        if lower is not None:
            return lower.T
        where = ""
    raise LinAlgError(
        f"{name} is not positive definite (Cholesky failed{where}); "
        f"add damping: pass {name} + lambda * I with lambda > 0"
    )


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

    Device data (a CuPy array, a GPU tensor, an array of another array-API
    library) stays where it lives: ``A`` and ``A⁻¹`` are kept on its device,
    the updates are array-API matrix-vector products and outer products in
    its namespace, the Cholesky factorizations use its ``linalg``, and the
    probe vectors are drawn there (the same numbers as for NumPy, filled on
    the GPU for CuPy and torch CUDA data). Each update brings the numbers the
    tests above need (``uᵀ w``, ``wᵀ w``, the trace of the inverse, and whether
    ``u`` is finite) to the host in one transfer, and each probe check one
    more; ``u`` and the arrays given to :meth:`solve` must live on the same
    device (NumPy data is refused, and vice versa). :attr:`inverse` and :attr:`matrix` are then
    copies, and :meth:`as_linear_operator` is refused.

    Parameters
    ----------
    A : array_like, shape (n, n)
        Symmetric positive definite, float32 or float64 (integers promoted to
        float64). NumPy, torch / JAX tensors on the CPU, or device data (see
        above). Copied; never modified.
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
        A, self._xp, self._kind = float_input(A, "A", ndim=2)
        upper = spd_cholesky(A, "A")
        super().__init__(A.shape, A.dtype)
        self.check_every = check_int(check_every, "check_every", low=1)
        eps = float(np.finfo(self.dtype).eps)
        self.rtol = eps**0.75 if rtol is None else check_real(rtol, "rtol", low=0.0)
        self._eps = eps
        self._stream = as_random_stream(rng)
        self._n_probes = 0
        self._place = placement_of(A)
        symmetric = (A + A.T) / 2
        if self._place.on_host:  # BLAS ger updates both matrices in place: C order
            self._A = np.ascontiguousarray(symmetric)
            self._inverse = np.empty_like(self._A)
            self._ger = get_blas_funcs("ger", (self._A,))
        else:
            self._A = symmetric
        # A = _scale_A * _A and A⁻¹ = _scale_inv * _inverse: decays touch no matrix entries
        self._scale_A = self._scale_inv = 1.0
        self.n_updates = 0
        self.n_refactorizations = 0
        self._since_check = 0
        self._invert(upper)

    @property
    def inverse(self) -> Any:
        """``A⁻¹``: a read-only NumPy view for host data (copy it to keep it past the
        next update), a copy on the device for device data."""
        self._fold()
        return self._exported(self._inverse)

    @property
    def matrix(self) -> Any:
        """The maintained ``A``, as :attr:`inverse` is given."""
        self._fold()
        return self._exported(self._A)

    def rank_one_update(self, u: Any, *, alpha: float = 1.0, decay: float = 1.0) -> None:
        """``A <- decay * A + alpha * u uᵀ`` and its inverse, in O(n²).

        Parameters
        ----------
        u : array_like, shape (n,)
            Finite; on the device of ``A`` for device data. Never modified.
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
        # on a device, u's finiteness comes to the host with the scalars below
        u = self._argument(u, "u", ndim=1, finite=self._place.on_host, cast=True)
        if tuple(u.shape) != (n,):
            raise ValueError(f"u must have length {n} (the size of A), got shape {tuple(u.shape)}")
        alpha = check_real(alpha, "alpha")
        decay = check_real(decay, "decay", low=0.0, low_inclusive=False)
        beta = alpha / decay
        w = self._scale_inv * (self._inverse @ u)
        xp = self._xp
        finite = () if self._place.on_host else (xp.all(xp.isfinite(u)),)
        uw, trace, ww, *finite = self._floats(u @ w, xp.linalg.trace(self._inverse), w @ w, *finite)
        if not all(finite):
            as_float_namespace_array(u, "u", xp)  # raises, naming NaN or Inf
        delta = 1.0 + beta * uw
        if delta <= np.sqrt(self._eps) * (1.0 + abs(beta * uw)):
            self._update_matrix(u, alpha, decay, restore_on_failure=True)
            return
        old_trace = self._scale_inv * trace
        self._update_matrix(u, alpha, decay, restore_on_failure=False)
        self._scale_inv /= decay
        self._inverse = self._add_outer(self._inverse, -beta / (delta * decay * self._scale_inv), w)
        self.n_updates += 1
        self._since_check += 1
        correction = beta * ww / delta
        if abs(correction) > _CANCELLATION_LIMIT * abs(old_trace - correction):
            self._refactorize()
        elif self._since_check >= self.check_every:
            self._check()

    def solve(self, X: Any) -> Any:
        """``A⁻¹ X`` for ``X`` of shape ``(n,)`` or ``(n, k)``, in the caller's array type
        (on the device of ``A`` for device data)."""
        kind = array_kind(X)
        X = self._argument(X, "X", ndim=(1, 2))
        if X.shape[0] != self.shape[0]:
            raise ValueError(
                f"X must have {self.shape[0]} rows (the size of A), got {tuple(X.shape)}"
            )
        return to_caller(self._apply(X), kind)

    def as_linear_operator(self):
        """``A⁻¹`` as a :class:`scipy.sparse.linalg.LinearOperator` (host data only)."""
        check_host_data(self._kind, "a host inverse", "use solve() on the device")
        return super().as_linear_operator()

    def _apply(self, X: Any) -> Any:
        self._check_place(X, "X")
        return (self._inverse @ X) * self._scale_inv

    _matvec = _matmat = _rmatvec = _rmatmat = _apply

    def _check_place(self, x: Any, name: str) -> None:
        """Refuse ``x`` unless it lives where ``A`` does (host data mixes freely)."""
        check_lives_with(x, name, self._kind, "A")

    def _argument(
        self, x: Any, name: str, *, ndim: Any, finite: bool = True, cast: bool = False
    ) -> Any:
        """``x`` validated, once it lives where ``A`` does: NumPy for host data, else in
        ``A``'s namespace; with ``cast``, in ``A``'s dtype."""
        self._check_place(x, name)
        if self._place.on_host:
            dtype = self.dtype if cast else None
            return as_float_array(to_numpy(x, name), name, ndim=ndim, finite=finite, dtype=dtype)
        x = as_float_namespace_array(x, name, self._xp, ndim=ndim, finite=finite)
        return self._xp.astype(x, self._place.dtype(self.dtype), copy=False) if cast else x

    def _floats(self, *scalars: Any) -> list[float]:
        """0-d arrays as Python floats, brought to the host in one transfer."""
        if self._place.on_host:
            return [float(s) for s in scalars]
        xp = self._xp
        values = to_host(xp.stack([xp.astype(s, xp.float64) for s in scalars]))
        return [float(v) for v in values]

    def _exported(self, x: Any) -> Any:
        return _read_only(x) if self._place.on_host else self._xp.asarray(x, copy=True)

    def _update_matrix(
        self, u: Any, alpha: float, decay: float, *, restore_on_failure: bool
    ) -> None:
        """Update ``A``; with ``restore_on_failure``, refactorize (or leave ``A`` as it was)."""
        if not restore_on_failure:
            self._scale_A *= decay
            self._A = self._add_outer(self._A, alpha / self._scale_A, u)
            if not _SCALE_RANGE[0] < self._scale_A < _SCALE_RANGE[1]:
                self._fold()
            return
        self._fold()
        candidate = self._add_outer(self._A * decay, alpha, u)
        try:
            upper = spd_cholesky(candidate, "A")
        except LinAlgError as exc:
            raise LinAlgError(
                f"the update (alpha={alpha:g}, decay={decay:g}) makes A indefinite, so it "
                "was not applied; use a smaller downdate |alpha| or add damping to A"
            ) from exc
        self._A = candidate
        self._invert(upper)
        self.n_updates += 1
        self.n_refactorizations += 1

    def _add_outer(self, X: Any, coefficient: float, v: Any) -> Any:
        """``X + coefficient * v vᵀ``, in place where the library allows, exactly symmetric.

        With ``z = sqrt(|c|) v`` both ``X[i, j]`` and ``X[j, i]`` get the same
        product ``z_i z_j`` (BLAS ``ger`` with ``alpha = ±1`` on the host,
        whose own ``alpha`` would round the two entries differently).
        """
        if self._place.on_host:
            z = np.sqrt(abs(coefficient)) * v
            self._ger(np.copysign(1.0, coefficient), z, z, a=X.T, overwrite_a=True)
            return X
        z = math.sqrt(abs(coefficient)) * v
        outer = self._xp.linalg.outer(z, z)
        if coefficient >= 0:
            X += outer
        else:
            X -= outer
        return X

    def _fold(self) -> None:
        """Multiply the pending scales into ``_A`` and ``_inverse`` (Python floats: rounded
        to the matrices' dtype, as NumPy scalars of it would be)."""
        if self._scale_A != 1.0:
            self._A *= self._scale_A
        if self._scale_inv != 1.0:
            self._inverse *= self._scale_inv
        self._scale_A = self._scale_inv = 1.0

    def _invert(self, upper: Any) -> None:
        """Set the inverse from the upper Cholesky factor of the folded ``A``."""
        if self._place.on_host:
            (potri,) = get_lapack_funcs(("potri",), (upper,))
            inverse, info = potri(upper, lower=False)
            if info != 0:
                raise LinAlgError(f"inverting the Cholesky factor of A failed (info={info})")
            self._inverse[...] = _upper_mirrored(np, inverse)
        else:
            # U⁻¹ by LU of an upper triangular matrix: no pivoting, exactly triangular
            inverse_upper = self._xp.linalg.inv(upper)
            self._inverse = _upper_mirrored(self._xp, inverse_upper @ inverse_upper.T)
        self._scale_inv = 1.0
        self._since_check = 0
        self._baseline = self._probe()

    def _probe(self) -> float:
        n = self.shape[0]
        x = self._place.draw(self._stream, "normal", (n,), dtype=self.dtype, offset=self._n_probes)
        self._n_probes += n
        residual = self._A @ (self._inverse @ x) - x
        norm = self._xp.linalg.vector_norm
        return float(norm(residual) / norm(x))

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


def _upper_mirrored(xp: Any, S: Any) -> Any:
    """The symmetric matrix whose upper triangle is that of ``S`` (exactly symmetric)."""
    upper = xp.triu(S)
    return upper + xp.triu(upper, k=1).T


def _read_only(x: np.ndarray) -> np.ndarray:
    view = x.view()
    view.flags.writeable = False
    return view
