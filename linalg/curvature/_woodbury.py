"""Solves with a diagonal plus low-rank matrix ``D + U C Uᵀ`` by the Woodbury identity."""

from __future__ import annotations

from typing import Any

import numpy as np

from linalg._core.namespace import (
    Placement,
    array_kind,
    check_lives_with,
    common_kind,
    numpy_dtype,
    placement_of,
    to_caller,
    to_host,
)
from linalg._core.operators import Operator
from linalg._core.results import LinAlgError
from linalg._core.validate import check_symmetric, float_input, result_dtype

__all__ = ["WoodburySolver", "woodbury", "woodbury_solve"]

# C counts as symmetric when max|C - Cᵀ| <= _SYMMETRY_RTOL * eps * max|C|.
_SYMMETRY_RTOL = 1e2
# The r x r system I + C UᵀD⁻¹U counts as singular beyond this condition number.
_MAX_CONDITION = 1e14


class WoodburySolver(Operator):
    """The inverse ``(D + U C Uᵀ)⁻¹`` of a diagonal plus symmetric low-rank matrix.

    The ``r x r`` system of the Woodbury identity is factored once, in float64,
    at construction; every :meth:`solve` then costs two passes over ``U``
    (``Uᵀ D⁻¹ v`` and ``U z``) and two ``r x r`` products with stored factors. As an
    :class:`~linalg._core.operators.Operator`, ``matvec``/``matmat`` (and the
    adjoint products: the matrix is symmetric) apply the inverse.

    With ``C`` the identity, or symmetric positive definite with Cholesky
    factor ``L_C``, the capacitance ``S = I + L_Cᵀ Uᵀ D⁻¹ U L_C`` is positive
    definite and is factored by Cholesky, ``S = L_S L_Sᵀ``, with ``L_S⁻¹``
    kept; ``C`` itself is never inverted:

        x = D⁻¹ (v − U L_C S⁻¹ L_Cᵀ Uᵀ D⁻¹ v),

    which equals the textbook form ``D⁻¹v − D⁻¹U (C⁻¹ + UᵀD⁻¹U)⁻¹ UᵀD⁻¹v``.
    Any other symmetric ``C`` (indefinite, as in a downdate, or singular) uses
    ``K = I + C Uᵀ D⁻¹ U``, with ``K⁻¹ C`` formed once by an LU solve:
    ``x = D⁻¹ (v − U K⁻¹ C Uᵀ D⁻¹ v)``.
    ``D + U C Uᵀ`` must then be nonsingular, but need not be definite.

    Parameters
    ----------
    U : array_like, shape (d, r)
        The low-rank factor. NumPy, or torch / JAX tensors on the CPU. Kept
        by reference when it is already a float array of the solver's dtype:
        do not modify it while the solver is in use. A CuPy array or GPU
        tensor keeps the passes over ``U`` on its device (``diag``, ``C`` and
        ``v`` then live there too, or ``diag`` is a Python number); the
        ``r × r`` factorization runs on the host.
    diag : float or array_like, shape (d,)
        The diagonal of ``D``, all entries > 0; a scalar means ``diag * I``.
    C : array_like, shape (r, r), optional
        Symmetric middle factor (default the identity).

    Attributes
    ----------
    shape : tuple of int
        ``(d, d)``.
    dtype : numpy.dtype
        The wider of the dtypes of ``U``, ``diag`` (when an array) and ``C``.
    rank : int
        ``r``, the number of columns of ``U``.
    method : {"cholesky", "lu"}
        How the ``r x r`` system was factored.

    Raises
    ------
    ValueError
        If an array is empty, not finite or of the wrong shape, ``diag`` has
        an entry ``<= 0`` or ``C`` is not square and symmetric.
    LinAlgError
        If the capacitance is not numerically positive definite (Cholesky),
        or ``D + U C Uᵀ`` is numerically singular (LU).

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.curvature import WoodburySolver
    >>> U = np.array([[1.0], [1.0]])
    >>> inv = WoodburySolver(U, diag=1.0)  # (I + U Uᵀ)⁻¹ = [[2, -1], [-1, 2]] / 3
    >>> inv.solve(np.array([3.0, 0.0]))
    array([ 2., -1.])
    """

    def __init__(self, U: Any, *, diag: Any, C: Any = None) -> None:
        self._kind = common_kind(U, diag, C)
        self._place = placement_of(U)
        U = _check_factor(U)
        d, r = U.shape
        dinv, diag_dtype = _inverse_diagonal(diag, d)
        C = None if C is None else _check_middle(C, r, self._place)
        dtypes = [U.dtype] + ([] if diag_dtype is None else [diag_dtype])
        dtype = result_dtype(*dtypes, *([] if C is None else [C.dtype]))
        super().__init__((d, d), dtype)
        self.rank = r
        xp, device_dtype = self._place.xp, self._place.dtype(dtype)
        self._U = xp.astype(U, device_dtype, copy=False)
        self._dinv = dinv if isinstance(dinv, float) else xp.astype(dinv, device_dtype)
        self._factor(C)

    def _scaled(self, V: Any) -> Any:
        """``D⁻¹ V`` for ``V`` of shape ``(d,)`` or ``(d, k)``."""
        if isinstance(self._dinv, float):
            return V * self._dinv  # a Python float takes V's dtype (NumPy and device alike)
        return V * (self._dinv if V.ndim == 1 else self._dinv[:, None])

    def _factor(self, C: np.ndarray | None) -> None:
        """Reduce the ``r x r`` system to matrices applied by GEMM: ``z = A₁ (A₂ t)``
        (on the host, in float64: they are ``r × r``)."""
        M = self._place.host(self._U.T @ self._scaled(self._U)).astype(np.float64)  # Uᵀ D⁻¹ U
        if C is None:
            inverse = _inverse_cholesky(np.eye(self.rank) + M)
        else:
            try:
                lc = np.linalg.cholesky(C.astype(np.float64))
            except np.linalg.LinAlgError:
                self.method = "lu"
                self._factors = (_indefinite_middle(C.astype(np.float64), M),)
                return
            inverse = _inverse_cholesky(np.eye(self.rank) + lc.T @ M @ lc) @ lc.T
        self.method = "cholesky"
        self._factors = (inverse.T, inverse)  # z = Pᵀ (P t), P = L_S⁻¹ L_Cᵀ

    def _middle(self, t: np.ndarray) -> np.ndarray:
        """``z = (C⁻¹ + UᵀD⁻¹U)⁻¹ t`` in float64, through the stored factors."""
        z = t.astype(np.float64)
        for factor in reversed(self._factors):
            z = factor @ z
        return z

    def _apply(self, V: Any) -> Any:
        """The solve on a validated ``V`` (where ``U`` lives), computed in ``self.dtype``."""
        place = self._place
        V = place.xp.astype(V, place.dtype(self.dtype), copy=False)
        t = place.host(self._U.T @ self._scaled(V))
        z = place.put(self._middle(t).astype(self.dtype))
        return self._scaled(V - self._U @ z)

    def _apply_host(self, V: np.ndarray) -> np.ndarray:
        if not self._place.on_host:
            raise TypeError(
                "this WoodburySolver holds U on a device; as an Operator it multiplies "
                "NumPy arrays only: use solve() with arrays on that device"
            )
        return self._apply(V)

    _matvec = _matmat = _rmatvec = _rmatmat = _apply_host

    def solve(self, v: Any) -> Any:
        """Solve ``(D + U C Uᵀ) x = v``, reusing the factorization.

        Parameters
        ----------
        v : array_like, shape (d,) or (d, k)
            Right-hand side(s), as columns.

        Returns
        -------
        array
            ``x``, the shape of ``v``, in the caller's array type (that of
            ``v``, else that of ``U``). Computed in :attr:`dtype`; returned in
            the wider of ``v``'s dtype and :attr:`dtype`.

        Examples
        --------
        >>> import numpy as np
        >>> from linalg.curvature import woodbury
        >>> inv = woodbury(np.ones((3, 1)), diag=np.array([1.0, 2.0, 4.0]))
        >>> x = inv.solve(np.eye(3))
        >>> np.allclose(x, np.linalg.inv(np.diag([1.0, 2.0, 4.0]) + np.ones((3, 3))))
        True
        """
        check_lives_with(v, "v", self._kind, "U")
        kind = array_kind(v)
        V = _check_rhs(v, self.shape[0])
        xp = self._place.xp
        x = xp.astype(self._apply(V), getattr(xp, result_dtype(self.dtype, V.dtype).name))
        return to_caller(x, self._kind if kind.library in {"numpy", "python"} else kind)

    def __repr__(self) -> str:
        d = self.shape[0]
        return (
            f"<{d}x{d} WoodburySolver of rank {self.rank} ({self.method}) with dtype={self.dtype}>"
        )


def woodbury(U: Any, *, diag: Any, C: Any = None) -> WoodburySolver:
    """Factor ``D + U C Uᵀ`` once for repeated solves.

    Parameters
    ----------
    U : array_like, shape (d, r)
        The low-rank factor: NumPy, torch / JAX tensors on the CPU, or device
        data (as :class:`WoodburySolver`).
    diag : float or array_like, shape (d,)
        The diagonal of ``D``, all entries > 0; a scalar means ``diag * I``.
    C : array_like, shape (r, r), optional
        Symmetric middle factor (default the identity).

    Returns
    -------
    WoodburySolver
        The operator ``(D + U C Uᵀ)⁻¹``: ``solve(v)``, ``matvec``, ``matmat``
        and ``as_linear_operator()`` all apply the inverse.

    Raises
    ------
    ValueError, LinAlgError
        As :class:`WoodburySolver`.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.curvature import woodbury
    >>> rng = np.random.default_rng(0)
    >>> U = rng.standard_normal((50, 3))
    >>> inv = woodbury(U, diag=0.5, C=np.diag([1.0, 2.0, 3.0]))
    >>> A = 0.5 * np.eye(50) + U @ np.diag([1.0, 2.0, 3.0]) @ U.T
    >>> v = rng.standard_normal(50)
    >>> np.allclose(A @ inv.solve(v), v)
    True
    """
    return WoodburySolver(U, diag=diag, C=C)


def woodbury_solve(U: Any, v: Any, *, diag: Any, C: Any = None) -> Any:
    """Solve ``(D + U C Uᵀ) x = v`` with ``D`` diagonal, by the Woodbury identity.

    ``x = D⁻¹v − D⁻¹U (C⁻¹ + UᵀD⁻¹U)⁻¹ UᵀD⁻¹v``, with the ``r x r`` system
    factored in float64 (Cholesky when ``C`` is the identity or positive
    definite, else LU; see :class:`WoodburySolver`). Costs ``O(d r² + r³)``
    for the factorization and ``O(d r k)`` for ``k`` right-hand sides; to
    solve again with the same matrix, use :func:`woodbury`.

    Parameters
    ----------
    U : array_like, shape (d, r)
        The low-rank factor. NumPy, or torch / JAX tensors on the CPU.
    v : array_like, shape (d,) or (d, k)
        Right-hand side(s), as columns.
    diag : float or array_like, shape (d,)
        The diagonal of ``D``, all entries > 0; a scalar means ``diag * I``.
    C : array_like, shape (r, r), optional
        Symmetric middle factor (default the identity).

    Returns
    -------
    array
        ``x``, the shape of ``v``, in the caller's array type and in the
        widest dtype of the inputs (a scalar ``diag`` does not widen it).

    Raises
    ------
    ValueError
        If an array is empty, not finite or of the wrong shape, ``diag`` has
        an entry ``<= 0`` or ``C`` is not square and symmetric.
    LinAlgError
        If the ``r x r`` system is numerically singular or, with ``C``
        positive definite, not positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.curvature import woodbury_solve
    >>> U = np.array([[1.0], [1.0]])
    >>> woodbury_solve(U, np.array([3.0, 0.0]), diag=1.0)  # (I + U Uᵀ) x = v
    array([ 2., -1.])
    """
    kind = common_kind(U, v, diag, C)
    U_checked = _check_factor(U)
    V = _check_rhs(v, U_checked.shape[0])
    xp = placement_of(U_checked).xp
    dtype = getattr(xp, result_dtype(U_checked.dtype, V.dtype).name)
    U_checked = xp.astype(U_checked, dtype, copy=False)
    return to_caller(WoodburySolver(U_checked, diag=diag, C=C)._apply(V), kind)


def _check_factor(U: Any) -> Any:
    return float_input(U, "U", ndim=2)[0]


def _check_rhs(v: Any, d: int) -> Any:
    V = float_input(v, "v", ndim=(1, 2))[0]
    if V.shape[0] != d:
        raise ValueError(f"v must have {d} rows (the rows of U), got shape {tuple(V.shape)}")
    return V


def _inverse_diagonal(diag: Any, d: int) -> tuple[Any, np.dtype | None]:
    """``1 / diag`` (a float, or a float64 vector where ``diag`` lives) and the dtype
    ``diag`` imposes."""
    if isinstance(diag, int | float) and not isinstance(diag, bool):
        diag = np.asarray(float(diag))
    D, xp, _ = float_input(diag, "diag", ndim=(0, 1))
    if D.ndim == 1 and D.shape[0] != d:
        raise ValueError(
            f"diag must be a scalar or have shape ({d},) (the rows of U), got {tuple(D.shape)}"
        )
    flat = to_host(xp.reshape(D, (-1,)))
    bad = np.flatnonzero(~(flat > 0))
    if bad.size:
        where = "" if D.ndim == 0 else f"[{bad[0]}]"
        raise ValueError(
            f"diag must be positive; diag{where} = {flat[bad[0]]}. "
            "A zero or negative diagonal has no Woodbury solve with this form"
        )
    if D.ndim == 0:
        return 1.0 / float(flat[0]), None
    return 1.0 / xp.astype(D, xp.float64), numpy_dtype(D.dtype)


def _check_middle(C: Any, r: int, place: Placement) -> np.ndarray:
    """``C`` on the host (it is ``r × r``), checked."""
    C = place.host(float_input(C, "C", ndim=2)[0])
    if C.shape != (r, r):
        raise ValueError(f"C must be square of shape ({r}, {r}) (the columns of U), got {C.shape}")
    check_symmetric(C, "C", rtol=_SYMMETRY_RTOL)
    return C


def _inverse_cholesky(S: np.ndarray) -> np.ndarray:
    """``L⁻¹`` for the Cholesky factor ``L`` of the capacitance ``S``.

    Computed as the transpose of ``inv(Lᵀ)``: LU with partial pivoting never pivots
    on an upper-triangular matrix, so this is LAPACK's triangular inverse, from
    NumPy's LAPACK like every other product here (NumPy and SciPy wheels bundle
    separate OpenBLAS libraries, and alternating between them slows large calls).
    """
    try:
        L = np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        raise LinAlgError(
            "the Woodbury capacitance I + L_Cᵀ UᵀD⁻¹U L_C is not numerically positive "
            "definite; check U, diag and C for extreme scales"
        ) from None
    return np.linalg.inv(L.T).T


def _indefinite_middle(C: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``K⁻¹ C`` with ``K = I + C M``, by one LU solve; LinAlgError if ``K`` is singular."""
    K = np.eye(len(C)) + C @ M
    condition = np.linalg.cond(K)
    if not condition <= _MAX_CONDITION:
        raise LinAlgError(
            f"D + U C Uᵀ is numerically singular: I + C UᵀD⁻¹U has condition "
            f"number {condition:.3g} (> {_MAX_CONDITION:g})"
        )
    return np.linalg.solve(K, C)
