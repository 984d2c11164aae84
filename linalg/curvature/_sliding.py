"""Inverse empirical Fisher over a sliding window of gradients (M-FAC style, by Woodbury)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from linalg._core.engines import register, select
from linalg._core.namespace import (
    HOST,
    NUMPY,
    Placement,
    array_kind,
    placement_of,
    to_caller,
    to_numpy,
)
from linalg._core.operators import Operator
from linalg._core.results import LinAlgError
from linalg._core.validate import (
    FLOAT_DTYPES,
    as_float_array,
    as_float_namespace_array,
    check_int,
    check_real,
    float_input,
)
from linalg.curvature._cholesky_update import CholeskyKernels

__all__ = ["SlidingWindowIHVP"]

register(
    "curvature.cholesky_update", "reference", "linalg.curvature._cholesky_update:REFERENCE_KERNELS"
)
register(
    "curvature.cholesky_update", "numba", "linalg.curvature._cholesky_update_numba:NUMBA_KERNELS"
)

# Refactorize from the Gram matrix when the factor has drifted this far from it.
_DRIFT_RTOL = 1e-10
# Columns of the window handled at once by inv_diag (bounds its float64 workspace).
_INV_DIAG_ENTRIES = 1 << 22


class SlidingWindowIHVP(Operator):
    """``F⁻¹ v`` for the damped empirical Fisher of the last ``window`` gradients.

    ``F = λ I + (1/m) Σ gᵢ gᵢᵀ = λ I + (1/m) Gᵀ G`` over the ``m <= window``
    gradients held (the rows of ``G``), as in M-FAC (Frantar et al., 2021),
    applied by the Woodbury identity

        ``F⁻¹ v = (v - Gᵀ C⁻¹ G v) / λ``,  ``C = G Gᵀ + m λ I``.

    The gradients live in a ring buffer in ``dtype``; the Gram matrix
    ``G Gᵀ`` and the Cholesky factor ``C = Rᵀ R`` are kept in float64, the
    factor in age order (oldest first), so evicting the oldest gradient
    deletes the first row and column of ``C`` (a rank-one Cholesky update)
    and a new gradient appends a last one. Costs, for ``d = dim``:

    - ``push`` with the window full: ``O(d m + m²)`` (one pass over the window
      for the new Gram row, then the two ``O(m²)`` factor modifications).
    - ``push`` while the window fills: ``O(d m)``. The shift ``m λ`` then changes
      on the whole diagonal of ``C``, so the factor is recomputed from the Gram
      matrix (LAPACK, ``O(m³ / 3)``) at the next ``solve`` or ``inv_diag``.
    - ``solve`` of ``k`` vectors: ``O(d m k + m² k)`` (two passes over the window).
    - ``inv_diag``: ``O(d m²)``.

    Deleting and appending are exact on the matrix the factor represents, so
    a rounding error leaves the factor with the gradients it touched: errors
    do not pile up over the window's life. Still, every ``window`` pushes the
    factor is checked against the Gram matrix (``O(m²)``), and recomputed when
    ``Rᵀ R`` has drifted from ``C`` by more than ``1e-10`` (relative), or when
    appending breaks down.

    The buffer lives where the first pushed gradient lives: a CuPy array or
    GPU tensor puts it on that device, where the passes over the window run,
    while the ``m × m`` Gram matrix and factor stay on the host (their
    updates are ``O(m²)``); later gradients and ``v`` must then live there too.

    In float32 the Gram rows and the two passes of ``solve`` are float32 BLAS
    products: where the window spans the whole space (``m >= dim``) the
    cancellation in ``v - Gᵀ C⁻¹ G v`` costs about ``ε₃₂ · (mean eigenvalue / λ)``
    of relative accuracy. :meth:`as_linear_operator` is a live view: later
    pushes change the operator it returns.

    Parameters
    ----------
    dim : int
        Length of a gradient.
    window : int
        How many of the latest gradients are held.
    damping : float
        ``λ > 0`` (``F`` is singular without it when ``m < dim``).
    dtype : {numpy.float32, numpy.float64}
        Storage and compute dtype of the gradients and of ``solve``.
    engine : {"auto", "reference", "numba"}, optional
        Kernels that modify the factor; default from ``config_context``,
        ``LINALG_ENGINE``, then ``"auto"`` (Numba where installed).

    Attributes
    ----------
    dim, window, damping, dtype
        As given.
    n_grads : int
        Gradients held now (``min(n_pushed, window)``).
    n_pushed : int
        Gradients pushed in all.
    engine : str
        The engine actually used.
    n_refactorizations : int
        Factorizations of ``C`` computed from the Gram matrix (while filling,
        after a breakdown or after drift).

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.curvature import SlidingWindowIHVP
    >>> ihvp = SlidingWindowIHVP(3, 2, damping=1.0, dtype=np.float64)
    >>> for g in np.eye(3):
    ...     ihvp.push(2.0 * g)
    >>> ihvp.n_grads, ihvp.n_pushed
    (2, 3)
    >>> ihvp.solve(np.ones(3))  # F = I + diag(0, 2, 2)
    array([1.        , 0.33333333, 0.33333333])
    """

    def __init__(
        self,
        dim: int,
        window: int,
        *,
        damping: float,
        dtype: Any = np.float32,
        engine: str | None = None,
    ) -> None:
        dim = check_int(dim, "dim", low=1)
        window = check_int(window, "window", low=1)
        damping = check_real(damping, "damping", low=0.0, low_inclusive=False)
        try:
            dtype = np.dtype(dtype)
        except TypeError as exc:
            raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from exc
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        implementation = select("curvature.cholesky_update", engine=engine, kind=NUMPY, dtype=dtype)
        super().__init__((dim, dim), dtype)
        self._kernels: CholeskyKernels = implementation.load()
        self.engine = implementation.engine
        self.dim, self.window, self.damping = dim, window, damping
        self.n_grads = self.n_pushed = self.n_refactorizations = 0
        self._place: Placement = HOST  # where the buffer lives: set by the first push
        self._G = np.zeros((window, dim), dtype=dtype)  # ring buffer, oldest at _head
        self._head = 0
        self._gram = np.zeros((window, window))  # G Gᵀ in ring-slot order
        self._R: np.ndarray | None = None  # factor of C in age order; None: to recompute
        self._since_check = 0
        self._probe = np.random.default_rng(0).choice((-1.0, 1.0), size=window)

    def push(self, g: Any) -> None:
        """Add the gradient ``g``, evicting the oldest once ``window`` are held.

        Parameters
        ----------
        g : array_like, shape (dim,)
            Finite; NumPy, or a torch / JAX tensor on the CPU, or (see above)
            device data. Cast to ``dtype`` and copied; never modified. A
            rejected ``g`` leaves the window as it was.
        """
        if self.n_pushed == 0:
            self._move_to(placement_of(g))
        g = self._vectors(g, "g", 1)
        m, window = self.n_grads, self.window
        place = self._place
        row = place.host(self._G[:m, :] @ g).astype(np.float64)  # Gram row of g, ring order
        norm2 = float(g @ g)
        full = m == window
        slot = self._head if full else m
        if full:
            row[slot] = norm2
        else:
            row = np.append(row, norm2)
        if full and self._R is not None:
            self._kernels.delete_first(self._R)
        self._G[slot, :] = g
        self._gram[slot, : row.size] = row
        self._gram[: row.size, slot] = row
        self.n_pushed += 1
        if not full:
            self.n_grads = m + 1
            self._R = None  # the shift m λ changed on the whole diagonal
            return
        self._head = (self._head + 1) % window
        if self._R is not None:
            self._append(slot)

    def _move_to(self, place: Placement) -> None:
        """Allocate the (still empty) buffer where ``place`` says."""
        if place != self._place:
            shape, dtype = (self.window, self.dim), place.dtype(self.dtype)
            self._G = place.xp.zeros(shape, dtype=dtype, device=place.device)
            self._place = place

    def _vectors(self, x: Any, name: str, ndim: Any) -> Any:
        """``x`` validated, in ``dtype``, where the buffer lives (else a TypeError)."""
        place = placement_of(x)
        if place != self._place and (not place.on_host or not self._place.on_host):
            raise TypeError(
                f"{name} holds {array_kind(x)}, but the window's gradients live on "
                f"{'the host' if self._place.on_host else self._place.device}: pass {name} there"
            )
        if self._place.on_host:
            x = as_float_array(to_numpy(x, name), name, ndim=ndim, dtype=self.dtype)
        else:  # cast, then checked again: a float64 entry may overflow float32
            xp = self._place.xp
            x = float_input(x, name, ndim=ndim, finite=False)[0]
            x = as_float_namespace_array(xp.astype(x, self._place.dtype(self.dtype)), name, xp)
        if x.shape[-1] != self.dim:
            shape = "(dim,)" if ndim == 1 else "(dim,) or (k, dim)"
            raise ValueError(
                f"{name} must have shape {shape} with dim={self.dim}, got shape {tuple(x.shape)}"
            )
        return x

    def _append(self, slot: int) -> None:
        """Append the newest gradient (``slot``) to the factor; check for drift."""
        shift = self.n_grads * self.damping
        column = self._gram[slot, self._age()]
        column[-1] += shift
        # In exact arithmetic d² >= λ_min(C) >= m λ: less than half of it is a breakdown.
        if not self._kernels.append(self._R, column) > 0.5 * shift:
            self._R = None
            return
        self._since_check += 1
        if self._since_check >= self.window:
            self._since_check = 0
            if self._drift() > _DRIFT_RTOL:
                self._R = None

    def _age(self) -> np.ndarray:
        """Ring slots of the gradients held, oldest first."""
        return (self._head + np.arange(self.n_grads)) % self.window

    def _capacitance(self) -> np.ndarray:
        """``C = G Gᵀ + m λ I`` in age order."""
        age = self._age()
        C = self._gram[np.ix_(age, age)]
        C[np.diag_indices_from(C)] += self.n_grads * self.damping
        return C

    def _drift(self) -> float:
        """Relative distance of ``Rᵀ R`` from ``C``: on the diagonal and on a ±1 probe."""
        C, R, z = self._capacitance(), self._R, self._probe[: self.n_grads]
        diagonal = np.abs(np.einsum("ij,ij->j", R, R) - np.diag(C)) / np.diag(C)
        probe = np.abs(R.T @ (R @ z) - C @ z) / (np.abs(C) @ np.abs(z))
        return float(max(diagonal.max(), probe.max()))

    def _factor(self) -> np.ndarray:
        """The factor ``R`` of ``C`` (age order), recomputed if stale."""
        if self._R is None:
            try:
                R = scipy.linalg.cholesky(self._capacitance(), lower=False, check_finite=False)
            except np.linalg.LinAlgError as exc:
                raise LinAlgError(
                    f"C = G Gᵀ + m λ I is not numerically positive definite (damping="
                    f"{self.damping:g}, dtype={self.dtype}); increase damping or use float64"
                ) from exc
            self._R = np.ascontiguousarray(R)
            self.n_refactorizations += 1
            self._since_check = 0
        return self._R

    def solve(self, v: Any) -> Any:
        """``F⁻¹ v`` with the gradients held now.

        Parameters
        ----------
        v : array_like, shape (dim,) or (k, dim)
            One vector, or ``k`` vectors as rows: host data (NumPy, or a torch
            / JAX tensor on the CPU), or data on the device the gradients live
            on; never modified.

        Returns
        -------
        array
            ``F⁻¹ v``, shaped like ``v``, in ``dtype`` and the caller's array type.

        Examples
        --------
        >>> import numpy as np
        >>> from linalg.curvature import SlidingWindowIHVP
        >>> ihvp = SlidingWindowIHVP(2, 4, damping=0.5, dtype=np.float64)
        >>> ihvp.solve(np.array([[1.0, 2.0], [3.0, 4.0]]))  # no gradients: F = λ I
        array([[2., 4.],
               [6., 8.]])
        """
        kind, xp = array_kind(v), self._place.xp
        V = self._vectors(v, "v", (1, 2))
        rows = self._apply_rows(xp.reshape(V, (-1, self.dim)))
        return to_caller(xp.reshape(rows, tuple(V.shape)), kind)

    def _apply_rows(self, X: np.ndarray) -> np.ndarray:
        """``F⁻¹`` applied to the rows of ``X`` (``(k, dim)``, any float dtype)."""
        place, m = self._place, self.n_grads
        if m == 0:
            return X * (1.0 / self.damping)
        age = self._age()
        R = self._factor()
        projected = place.host(self._G[:m, :] @ X.T).astype(np.float64)[age]
        weights = np.empty_like(projected)
        weights[age] = self._kernels.solve(R, projected)
        Y = X - place.put(weights.T.astype(self.dtype)) @ self._G[:m, :]
        Y *= 1.0 / self.damping
        return Y

    def inv_diag(self) -> Any:
        """The diagonal of ``F⁻¹``, in ``dtype`` (on the gradients' device).

        ``diag(F⁻¹) = (1 - Σᵢ Wᵢⱼ²) / λ`` with ``W = R⁻ᵀ G`` (``C = Rᵀ R``):
        ``O(d m²)`` time, a block of columns at a time (about 4 million float64
        entries of ``W``, 32 MB), and a factorization first if one is due.

        Examples
        --------
        >>> import numpy as np
        >>> from linalg.curvature import SlidingWindowIHVP
        >>> ihvp = SlidingWindowIHVP(2, 3, damping=1.0, dtype=np.float64)
        >>> ihvp.push(np.array([3.0, 0.0]))
        >>> ihvp.inv_diag()  # F = diag(1 + 9, 1)
        array([0.1, 1. ])
        """
        m, place = self.n_grads, self._place
        if not place.on_host:
            return self._inv_diag_device()
        out = np.full(self.dim, 1.0 / self.damping, dtype=self.dtype)
        if m == 0:
            return out
        age, R = self._age(), self._factor()
        step = max(1, _INV_DIAG_ENTRIES // m)
        for start in range(0, self.dim, step):
            block = self._G[:m, start : start + step].astype(np.float64)[age]
            W = scipy.linalg.solve_triangular(R, block, trans="T", check_finite=False)
            out[start : start + step] = (1.0 - np.einsum("ij,ij->j", W, W)) / self.damping
        return out

    def _inv_diag_device(self) -> Any:
        """:meth:`inv_diag` where the buffer is on a device: ``W = (R⁻ᵀ P) G`` there,
        ``P`` the permutation to age order folded into the small ``m × m`` factor."""
        place, m = self._place, self.n_grads
        xp = place.xp
        if m == 0:
            return xp.full(self.dim, 1.0 / self.damping, dtype=place.dtype(self.dtype))
        R = self._factor()
        inverse_t = scipy.linalg.solve_triangular(R, np.eye(m), trans="T", check_finite=False)
        mixing = np.empty_like(inverse_t)
        mixing[:, self._age()] = inverse_t  # W = R⁻ᵀ G[age] = (R⁻ᵀ P) G[ring order]
        mixing = place.put(mixing)
        step = max(1, _INV_DIAG_ENTRIES // m)
        pieces = []
        for start in range(0, self.dim, step):
            stop = min(start + step, self.dim)
            W = mixing @ xp.astype(self._G[:m, start:stop], xp.float64)
            pieces.append((1.0 - xp.sum(W * W, axis=0)) / self.damping)
        out = pieces[0] if len(pieces) == 1 else xp.concat(pieces)
        return xp.astype(out, place.dtype(self.dtype))

    def _matmat(self, V: np.ndarray) -> np.ndarray:
        if not self._place.on_host:
            raise TypeError(
                "this SlidingWindowIHVP holds its gradients on a device; as an Operator it "
                "multiplies NumPy arrays only: use solve() with arrays on that device"
            )
        return self._apply_rows(V.T.astype(self.dtype, copy=False)).T

    _rmatmat = _matmat

    def __repr__(self) -> str:
        return (
            f"<SlidingWindowIHVP dim={self.dim} window={self.window} n_grads={self.n_grads} "
            f"damping={self.damping:g} dtype={self.dtype} engine={self.engine!r}>"
        )
