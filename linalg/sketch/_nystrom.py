"""Randomized Nyström approximation of a PSD matrix, and the Nyström preconditioner.

The approximation ``A ≈ U diag(lam) Uᵀ`` is built from one block product
``Y = A Ω`` with an orthonormalized Gaussian test matrix ``Ω``, with the small
shift of Tropp, Yurtsever, Udell and Cevher that keeps it stable in floating
point. The preconditioner of Frangella, Tropp and Udell turns it into an
approximate inverse of ``A + μI`` for :func:`linalg.solvers.cg`, doubling the
rank until the estimated condition number of the preconditioned system is small.

On a device matrix (CuPy, a GPU tensor, another array-API library) the tall
arrays (``Ω``, ``Y``, ``B``, ``U``) stay on the device, through the data's
namespace, and the ``rank × rank`` factors (``Ωᵀ Y_ν`` and its Cholesky factor,
the ``R`` of ``B = Q R`` and its SVD, the power method's Ritz values) go to the
host, where LAPACK handles them in microseconds; ``Ω`` is drawn where ``A``
lives (on the GPU for CuPy and torch CUDA data) with the host's numbers, so the
result equals the NumPy path's to rounding.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg

from linalg._core.namespace import (
    HOST,
    Placement,
    array_kind,
    check_lives_with,
    common_kind,
    numpy_dtype,
    placement_of,
    to_caller,
    to_host,
    to_numpy,
)
from linalg._core.operators import (
    MatrixOperator,
    Operator,
    as_operator,
    is_cupyx_sparse,
    is_linear_operator,
    is_sparse,
)
from linalg._core.random import RandomStream, as_random_stream
from linalg._core.results import LinAlgError
from linalg._core.validate import (
    as_float_array,
    check_bool,
    check_int,
    check_real,
    check_symmetric,
    float_input,
    result_dtype,
)
from linalg.sketch._dense_sketches import gaussian
from linalg.solvers._device import block_operator

__all__ = [
    "NystromApproximation",
    "NystromPreconditioner",
    "nystrom",
    "nystrom_preconditioner",
]

# The adaptive preconditioner stops doubling once (lam_r + mu + E) / mu is below this.
DEFAULT_TARGET_CONDITION = 40.0
# Its rank never exceeds min(n, max(rank, DEFAULT_MAX_RANK)) unless max_rank says otherwise.
DEFAULT_MAX_RANK = 2048
# The randomized power method that estimates E = ||A - U diag(lam) Uᵀ||.
_POWER_BLOCK = 4
_POWER_ITERATIONS = 5


class NystromApproximation(NamedTuple):
    """A rank-``r`` approximation ``A ≈ U diag(lam) Uᵀ``; unpacks as ``U, lam``.

    Attributes
    ----------
    U : array, shape (n, r)
        Orthonormal columns, in the caller's array type.
    lam : array, shape (r,)
        The eigenvalues of the approximation, ``>= 0`` and sorted in
        descending order.
    """

    U: Any
    lam: Any


class _Sketch:
    """``Ω`` (orthonormal, ``n × r``) and ``Y = A Ω``, grown by columns on demand.

    Column ``j`` of ``Ω`` before orthonormalization is column ``j`` of the
    Gaussian sketch ``gaussian(n, r, rng=stream)``: the first ``r`` columns of a
    larger sketch are those of a smaller one, so growing from rank ``r`` to
    ``2r`` keeps the ``r`` products already made and spans the same range as a
    fresh rank-``2r`` sketch.
    """

    def __init__(
        self, A: Operator, place: Placement, stream: RandomStream, engine: str | None
    ) -> None:
        self.A = A
        self.place = place
        self.stream = stream
        self.engine = engine
        n = A.shape[0]
        self.Omega = place.empty((n, 0), A.dtype)
        self.Y = place.empty((n, 0), A.dtype)

    @property
    def rank(self) -> int:
        return self.Omega.shape[1]

    def grow(self, rank: int) -> None:
        """Extend ``Ω`` and ``Y`` to ``rank`` columns (the new columns of ``Ω`` drawn,
        orthonormalized and multiplied where ``A`` lives)."""
        xp = self.place.xp
        n, old = self.Omega.shape
        sketch = gaussian(n, rank, rng=self.stream, dtype=self.A.dtype, engine=self.engine)
        G = sketch[:, old:rank].dense_on(self.place)
        for _ in range(2):  # block Gram-Schmidt against the columns kept; twice is enough
            G = G - self.Omega @ (self.Omega.T @ G)
        Q, _ = xp.linalg.qr(G)
        Y = _product(self.A, Q, self.place)
        if not bool(xp.all(xp.isfinite(Y))):
            raise LinAlgError("nystrom: the products A Ω hold NaN or Inf; A must be finite")
        self.Omega = xp.concat([self.Omega, Q], axis=1)
        self.Y = xp.concat([self.Y, Y], axis=1)

    def factor(self) -> _ShiftedFactor:
        """The factor ``B`` of the shifted approximation ``B Bᵀ`` from ``Ω`` and ``Y``."""
        place = self.place
        n = self.Omega.shape[0]
        finfo = np.finfo(self.A.dtype)
        norm = float(place.xp.linalg.vector_norm(self.Y))
        nu = max(math.sqrt(n) * finfo.eps * norm, float(finfo.tiny))
        Y_nu = self.Y + float(self.A.dtype.type(nu)) * self.Omega  # ν rounded to A's dtype
        core = place.host(self.Omega.T @ Y_nu)
        core = (core + core.T) / 2
        try:
            L = np.linalg.cholesky(core)
        except np.linalg.LinAlgError:
            raise LinAlgError(
                f"nystrom: Ωᵀ A Ω + νI (shift ν = {nu:.3g}) is not positive definite, so A "
                "is not positive semidefinite; Nyström needs a symmetric PSD A: shift A by "
                "more than its most negative eigenvalue, or use a randomized SVD for an "
                "indefinite matrix"
            ) from None
        if place.on_host:
            B = scipy.linalg.solve_triangular(L, Y_nu.T, lower=True, check_finite=False).T
        else:  # B = Y_ν L⁻ᵀ: L⁻¹ (rank × rank) formed on the host, the product on the device
            inverse = scipy.linalg.solve_triangular(L, np.eye(len(L), dtype=L.dtype), lower=True)
            B = Y_nu @ place.put(inverse.T)
        return _ShiftedFactor(B, nu, place)


class _ShiftedFactor(NamedTuple):
    """``B`` with ``B Bᵀ = Y_ν (Ωᵀ Y_ν)⁻¹ Y_νᵀ``, the approximation of ``A + νI`` on range(Ω),
    where ``place`` keeps its tall arrays."""

    B: Any
    nu: float
    place: Placement = HOST

    def eigen(self) -> tuple[Any, np.ndarray]:
        """``U, lam``: the thin SVD ``B = U Σ Vᵀ`` and ``lam = max(Σ² − ν, 0)`` (``U``
        where ``B`` lives, from ``B = Q R`` and the SVD of ``R`` on a device)."""
        place = self.place
        if place.on_host:
            U, sigma, _ = scipy.linalg.svd(self.B, full_matrices=False, check_finite=False)
        else:
            Q, R = place.xp.linalg.qr(self.B)
            U_R, sigma, _ = scipy.linalg.svd(place.host(R), check_finite=False)
            U = Q @ place.put(U_R)
        lam = np.maximum(sigma**2 - sigma.dtype.type(self.nu), 0)  # sigma has B's dtype
        return U, lam

    def smallest_eigenvalue(self) -> float:
        """``lam[-1]`` of :meth:`eigen`, from the eigenvalues of ``Bᵀ B`` (no SVD)."""
        gram = self.place.host(self.B.T @ self.B)
        return max(float(np.linalg.eigvalsh(gram)[0]) - self.nu, 0.0)


def _product(A: Operator, V: Any, place: Placement) -> Any:
    """``A V`` in ``A``'s dtype, where ``V`` lives."""
    if place.on_host:
        return np.asarray(A.matmat(V), dtype=A.dtype)
    return place.xp.astype(A.matmat(V), place.dtype(A.dtype), copy=False)


def _psd_operator(A: Any, like: Any) -> tuple[Any, Placement]:
    """Validate a square (symmetric, for a matrix) ``A``; wrap it as an operator with
    ``shape``, ``dtype`` and ``matmat``, with the placement of its products: a device
    matrix keeps them on its device, an operator computes where ``like`` lives."""
    if callable(A) and not hasattr(A, "shape"):
        raise TypeError(
            "A is a callable without a shape; wrap it as "
            "scipy.sparse.linalg.LinearOperator((n, n), matvec=A, matmat=..., dtype=...), "
            "or, for device data, as a linalg Operator and pass like="
        )
    kind = array_kind(A)
    if like is not None:
        _check_like(A, kind, like)
    if kind.via_namespace and not is_cupyx_sparse(A):  # a dense device matrix
        op, place = MatrixOperator(float_input(A, "A", ndim=2)[0]), placement_of(A)
    elif is_cupyx_sparse(A) or (like is not None and array_kind(like).via_namespace):
        place = placement_of(A.data if is_cupyx_sparse(A) else like)
        where = kind if is_cupyx_sparse(A) else array_kind(like)
        op = block_operator(A, "A", place.xp, where, size=None)
        if op.dtype is None:
            raise TypeError("A has no dtype; give the operator a dtype (float32 or float64)")
    else:
        op, place = as_operator(to_numpy(A, "A"), "A"), HOST
    if op.shape[0] != op.shape[1]:
        raise ValueError(f"A must be square (symmetric PSD), got shape {op.shape}")
    if isinstance(op, MatrixOperator):
        check_symmetric(op.A, "A")
    return op, place


def _check_like(A: Any, kind: Any, like: Any) -> None:
    """``like`` is an array, living where a device ``A`` does; a host operator ``A``
    (SciPy sparse, a LinearOperator) cannot compute on a device ``like``."""
    where = array_kind(like)
    if where.library in {"python", "scipy.sparse", "dask"}:
        raise TypeError(
            "like must be an array (NumPy, CuPy, a torch or JAX tensor, ...) of the library "
            f"and device where A's products are made, got {type(like).__name__}"
        )
    if kind.via_namespace:
        check_lives_with(like, "like", kind, "A")
    elif where.via_namespace and (is_sparse(A) or is_linear_operator(A)):
        raise TypeError(
            f"A is a SciPy {'sparse matrix' if is_sparse(A) else 'LinearOperator'}, which "
            f"computes on NumPy arrays, and like holds {where}: pass A as a linalg Operator "
            "whose matmat takes like's arrays (or a matrix of like's library), or leave like out"
        )


def _check_rank(rank: Any, n: int, name: str = "rank") -> int:
    rank = check_int(rank, name, low=1)
    if rank > n:
        raise ValueError(f"{name} must be <= n = {n} (the size of A), got {rank}")
    return rank


def nystrom(
    A: Any, rank: int, *, rng: Any = None, engine: str | None = None, like: Any = None
) -> NystromApproximation:
    """Randomized Nyström approximation ``A ≈ U diag(lam) Uᵀ`` of a PSD matrix.

    One block product ``Y = A Ω`` with an ``n × rank`` test matrix ``Ω``
    (Gaussian, then orthonormalized) gives ``A⟨Ω⟩ = Y (Ωᵀ Y)⁺ Yᵀ``, computed
    stably (Tropp et al., Alg. 3; Frangella et al., Alg. 2.1): with the shift
    ``ν = √n · eps · ‖Y‖_F``, ``Y_ν = Y + νΩ``, ``C = chol(Ωᵀ Y_ν)``,
    ``B = Y_ν C⁻ᵀ = U Σ Vᵀ`` (thin SVD) and ``lam = max(Σ² − ν, 0)``.

    Parameters
    ----------
    A : array_like, sparse matrix or LinearOperator, shape (n, n)
        Symmetric positive semidefinite. NumPy, SciPy sparse, a SciPy
        ``LinearOperator`` (or any object with ``shape`` and ``matmat`` or
        ``matvec``), or a torch / JAX tensor on the CPU. float32 and float64
        are kept, integers promoted to float64. Never modified. A matrix is
        checked to be symmetric; an operator is trusted. A dense CuPy array,
        GPU tensor or array of another array-API library is computed on its
        device (``Ω`` drawn there, ``A Ω`` and every
        ``n × rank`` array there, the ``rank × rank`` factors on the host), as
        is a cupyx sparse matrix (trusted to be symmetric, as an operator is),
        and an operator whose ``matmat`` computes on device arrays, given
        ``like``; other operators compute on NumPy blocks.
    rank : int
        Rank of the approximation, in ``[1, n]``.
    rng : None, int, numpy.random.Generator or RandomStream
        The seed (SPEC 7). Column ``j`` of ``Ω`` (before orthonormalization)
        is column ``j`` of ``linalg.sketch.gaussian(n, rank, rng=rng)``, so
        the same seed gives the same result on every engine.
    engine : {"auto", "reference", "numba"}, optional
        Who draws the random numbers (the numbers are the same).
    like : array, optional
        For an operator ``A`` whose ``matmat`` computes on device arrays (any
        object with ``shape``, ``dtype`` and ``matmat`` but SciPy's, such as
        a ``cupyx.scipy.sparse.linalg.LinearOperator``):
        ``Ω`` is drawn where ``like`` lives (its library and device) and
        ``A``'s products must come back there. For a device matrix ``A`` it
        must live where ``A`` does. Default: where ``A`` lives.

    Returns
    -------
    NystromApproximation
        ``(U, lam)``: ``U`` of shape ``(n, rank)`` with orthonormal columns,
        ``lam`` of shape ``(rank,)``, ``>= 0``, in descending order; in the
        caller's array type (NumPy for sparse and operator input; ``A``'s
        library, on its device, for device data) and dtype.

    Raises
    ------
    TypeError
        If ``A`` is complex, not numeric, or a callable without a shape; if
        ``like`` is not an array, lives elsewhere than a device ``A``, or is
        on a device for a SciPy operator ``A``; if an operator's products
        come back elsewhere than ``like``.
    ValueError
        If ``A`` is not square, not symmetric, or holds NaN or Inf; if
        ``rank`` is not in ``[1, n]``.
    linalg.LinAlgError
        If ``A`` is found not positive semidefinite (``Ωᵀ A Ω + νI`` has no
        Cholesky factor), or an operator ``A`` returns NaN or Inf.

    Notes
    -----
    The shift uses the Frobenius norm of ``Y`` where the papers use its
    spectral norm: at most ``√rank`` times larger, and still a relative
    perturbation of order ``√(n · rank) · eps``, which is removed again from
    ``lam``. If ``A`` has rank ``<= rank``, the approximation is exact up to
    rounding. The cost is one product of ``A`` with an ``n × rank`` block and
    ``O(n · rank²)`` more work.

    References
    ----------
    J. A. Tropp, A. Yurtsever, M. Udell and V. Cevher, "Fixed-rank
    approximation of a positive-semidefinite matrix from streaming data",
    NeurIPS 2017, Algorithm 3.

    Z. Frangella, J. A. Tropp and M. Udell, "Randomized Nyström
    preconditioning", SIAM J. Matrix Anal. Appl. 44(2), 2023, Algorithm 2.1.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.sketch import nystrom
    >>> G = np.random.default_rng(0).standard_normal((100, 5))
    >>> A = G @ G.T  # PSD of rank 5
    >>> U, lam = nystrom(A, 8, rng=0)
    >>> U.shape, lam.shape
    ((100, 8), (8,))
    >>> bool(np.allclose((U * lam) @ U.T, A))
    True
    >>> bool(np.all(lam[5:] < 1e-10 * lam[0]))
    True
    """
    op, place = _psd_operator(A, like)
    kind = array_kind(A if like is None else like)
    rank = _check_rank(rank, op.shape[0])
    sketch = _Sketch(op, place, as_random_stream(rng), engine)
    sketch.grow(rank)
    U, lam = sketch.factor().eigen()
    return NystromApproximation(to_caller(U, kind), to_caller(place.put(lam), kind))


class NystromPreconditioner(Operator):
    """The Nyström preconditioner for ``(A + μI) x = b`` from ``A ≈ U diag(lam) Uᵀ``.

    Applies ``P⁻¹ = (lam_r + μ) U (diag(lam) + μI)⁻¹ Uᵀ + (I − U Uᵀ)``, an
    approximation of ``(lam_r + μ) (A + μI)⁻¹`` (``lam_r = lam[-1]``, the
    smallest eigenvalue kept), to vectors and ``(n, k)`` blocks. It is
    symmetric positive definite; pass it as ``M=`` to
    :func:`linalg.solvers.cg`, or call ``as_linear_operator()`` for SciPy.
    Usually made by :func:`nystrom_preconditioner`.

    Parameters
    ----------
    U : array_like, shape (n, r)
        Orthonormal columns (not checked), float32 or float64. An array of a
        device library (CuPy, a GPU tensor, another array-API library) keeps
        the preconditioner on that device: it then applies to blocks of that
        library there (as the device paths of the solvers call it).
    lam : array_like, shape (r,)
        The approximation's eigenvalues, ``>= 0``, in descending order, of
        ``U``'s library.
    mu : float
        The shift ``μ > 0`` of the system ``A + μI``.
    condition_estimate : float, optional
        An estimate of the preconditioned system's condition number
        (reported only; default NaN).
    n_doublings : int, default 0
        Rank doublings that led to it (reported only).

    Attributes
    ----------
    U : array, shape (n, r)
        NumPy, or ``U``'s device library.
    lam : array, shape (r,)
        As ``U``.
    mu : float
    rank : int
        ``r``.
    condition_estimate : float
        ``(lam_r + μ + E) / μ`` with ``E`` a randomized estimate of
        ``‖A − U diag(lam) Uᵀ‖``, when made by :func:`nystrom_preconditioner`;
        an estimate of the bound on the condition number of ``P^{-1/2} (A +
        μI) P^{-1/2}`` (Frangella et al., Prop. 5.3).
    n_doublings : int
    shape : tuple of int
        ``(n, n)``.
    dtype : numpy.dtype
        The dtype of ``U``.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.sketch import NystromPreconditioner
    >>> U = np.eye(3)[:, :1]  # A ≈ diag(9, 0, 0)
    >>> P = NystromPreconditioner(U, np.array([9.0]), mu=1.0)
    >>> P.solve(np.ones(3))  # (9 + 1) / (9 + 1) on e_1, identity elsewhere
    array([1., 1., 1.])
    >>> P.rank, P.mu
    (1, 1.0)
    """

    def __init__(
        self,
        U: Any,
        lam: Any,
        *,
        mu: float,
        condition_estimate: float = math.nan,
        n_doublings: int = 0,
    ) -> None:
        self._kind = common_kind(U, lam)
        U = float_input(U, "U", ndim=2)[0]
        self._place = placement_of(U)
        host_lam = lam if self._place.on_host else to_host(lam)  # r numbers
        lam = as_float_array(to_numpy(host_lam, "lam"), "lam", ndim=1, dtype=numpy_dtype(U.dtype))
        mu = check_real(mu, "mu", low=0.0, low_inclusive=False)
        n, r = U.shape
        if lam.shape != (r,):
            raise ValueError(f"lam must have shape ({r},) (one per column of U), got {lam.shape}")
        if r > n:
            shape = tuple(U.shape)
            raise ValueError(f"U must have at most as many columns as rows, got shape {shape}")
        if np.any(lam < 0) or np.any(np.diff(lam) > 0):
            raise ValueError("lam must be >= 0 and sorted in descending order")
        super().__init__((n, n), U.dtype)
        self.U = U
        self.lam = self._place.put(lam)
        self.mu = mu
        self.condition_estimate = float(condition_estimate)
        self.n_doublings = check_int(n_doublings, "n_doublings", low=0)
        # P⁻¹ = I + U diag(scale) Uᵀ with scale = (lam_r + mu) / (lam + mu) - 1 <= 0.
        scale = (float(lam[-1]) + mu) / (lam.astype(np.float64) + mu) - 1.0
        self._scale = self._place.put(scale.astype(self.dtype))

    @property
    def rank(self) -> int:
        """The rank ``r`` of the approximation."""
        return self.U.shape[1]

    def solve(self, R: Any) -> Any:
        """Apply ``P⁻¹``, the approximation of ``(A + μI)⁻¹`` up to a scale, to ``R``.

        Parameters
        ----------
        R : array_like, shape (n,) or (n, k)
            NumPy, or a torch / JAX tensor on the CPU; an array of ``U``'s
            device library when ``U`` lives on a device.

        Returns
        -------
        array
            ``P⁻¹ R``, the shape of ``R``, in its array type, in the wider of
            ``R``'s and ``U``'s dtypes.

        Raises
        ------
        TypeError
            If ``R`` and ``U`` live in different libraries or devices.

        Examples
        --------
        >>> import numpy as np
        >>> from linalg.sketch import NystromPreconditioner
        >>> P = NystromPreconditioner(np.eye(2)[:, :1], np.array([3.0]), mu=1.0)
        >>> P.solve(np.eye(2))
        array([[1., 0.],
               [0., 1.]])
        """
        kind = array_kind(R)
        self._where_U_lives(R)
        X = float_input(R, "R", ndim=(1, 2))[0]
        if X.shape[0] != self.shape[0]:
            shape = tuple(X.shape)
            raise ValueError(f"R must have {self.shape[0]} rows (the size of A), got {shape}")
        return to_caller(self._apply(X), kind)

    def _where_U_lives(self, R: Any) -> None:
        """Refuse ``R`` of another library or device than ``U``."""
        check_lives_with(R, "R", self._kind, "U")

    def _apply(self, R: Any) -> Any:
        """``P⁻¹ R`` on a validated ``R`` where ``U`` lives (solvers call this every
        iteration: a device ``R`` costs two products with ``U`` there, no synchronization)."""
        self._where_U_lives(R)
        xp = self._place.xp
        dtype = self._place.dtype(result_dtype(self.dtype, R.dtype))
        X = xp.astype(xp.reshape(R, (self.shape[0], -1)), dtype, copy=False)
        coefficients = (self.U.T @ X) * self._scale[:, None]
        return xp.reshape(X + self.U @ coefficients, R.shape)

    _matvec = _matmat = _rmatvec = _rmatmat = _apply

    def __repr__(self) -> str:
        n = self.shape[0]
        return (
            f"<{n}x{n} NystromPreconditioner rank={self.rank} mu={self.mu:g} "
            f"condition_estimate={self.condition_estimate:.3g} "
            f"n_doublings={self.n_doublings} dtype={self.dtype}>"
        )


def nystrom_preconditioner(
    A: Any,
    rank: int,
    *,
    mu: float,
    adaptive: bool = True,
    target_condition: float = DEFAULT_TARGET_CONDITION,
    max_rank: int | None = None,
    rng: Any = None,
    engine: str | None = None,
    like: Any = None,
) -> NystromPreconditioner:
    """The randomized Nyström preconditioner for ``(A + μI) x = b``, ``A`` PSD.

    Builds ``A ≈ U diag(lam) Uᵀ`` with :func:`nystrom` and returns
    ``P⁻¹ = (lam_r + μ) U (diag(lam) + μI)⁻¹ Uᵀ + (I − U Uᵀ)`` (Frangella et
    al.), for :func:`linalg.solvers.cg` as ``M=``. The condition number of the
    preconditioned system is at most ``(lam_r + μ + ‖E‖) / μ`` with
    ``E = A − U diag(lam) Uᵀ``. With ``adaptive=True`` the rank is doubled
    (the products already made are kept) while the estimate of that bound
    exceeds ``target_condition`` and the rank is below ``max_rank``.

    Parameters
    ----------
    A : array_like, sparse matrix or LinearOperator, shape (n, n)
        Symmetric positive semidefinite, as in :func:`nystrom` (``A``
        without the shift ``μ``). Never modified. A device matrix gives a
        preconditioner on that device (see :func:`nystrom`), which applies to
        that library's blocks there: ``M=`` of the solvers' device paths.
    rank : int
        The (starting) rank, in ``[1, n]``.
    mu : float
        The shift ``μ > 0`` (the ridge or regularization parameter).
    adaptive : bool, default True
        Double the rank until the condition estimate is below
        ``target_condition`` (or ``max_rank`` is reached).
    target_condition : float, default 40
        The estimated condition number to reach, ``> 1``. Lower values mean
        fewer CG iterations but larger ranks (each doubling costs a product
        of ``A`` with as many new columns, and ``O(n · rank²)`` work).
    max_rank : int, optional
        Largest rank the doubling may reach, in ``[rank, n]`` (default
        ``min(n, max(rank, 2048))``).
    rng : None, int, numpy.random.Generator or RandomStream
        The seed (SPEC 7). At every rank the approximation is the one
        :func:`nystrom` gives with the same ``rng`` (up to rounding).
    engine : {"auto", "reference", "numba"}, optional
        Who draws the random numbers (the numbers are the same).
    like : array, optional
        Where an operator ``A``'s products are made, as in :func:`nystrom`;
        the preconditioner then lives there.

    Returns
    -------
    NystromPreconditioner
        With ``U``, ``lam``, ``mu``, ``rank``, ``condition_estimate`` and
        ``n_doublings``.

    Raises
    ------
    TypeError
        If ``A`` is complex, not numeric, or a callable without a shape.
    ValueError
        If ``A`` is not square, not symmetric or not finite; if ``rank`` is
        not in ``[1, n]``, ``mu <= 0``, ``target_condition <= 1`` or
        ``max_rank`` is not in ``[rank, n]``.
    linalg.LinAlgError
        If ``A`` is found not positive semidefinite.

    Notes
    -----
    ``‖E‖`` is estimated by 5 steps of block power iteration with 4 random
    vectors; the estimate is a lower bound, so the condition estimate can
    be low. It is made only when ``lam_r`` alone does not already exceed the
    target. A rank near the effective dimension ``Σ lam_i / (lam_i + μ)``
    of ``A`` usually suffices.

    References
    ----------
    Z. Frangella, J. A. Tropp and M. Udell, "Randomized Nyström
    preconditioning", SIAM J. Matrix Anal. Appl. 44(2), 2023, Algorithms 2.1
    and 5.1 and Section 5.4.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.solvers import cg
    >>> from linalg.sketch import nystrom_preconditioner
    >>> X = np.random.default_rng(0).standard_normal((300, 10))
    >>> K = np.exp(-0.01 * ((X[:, None] - X[None]) ** 2).sum(-1))  # an RBF kernel matrix
    >>> mu = 1e-2
    >>> P = nystrom_preconditioner(K, 10, mu=mu, rng=0)
    >>> P.rank, P.n_doublings, bool(P.condition_estimate <= 40)
    (80, 3, True)
    >>> b = np.ones(300)
    >>> plain = cg(K + mu * np.eye(300), b, rtol=1e-8)
    >>> pcg = cg(K + mu * np.eye(300), b, rtol=1e-8, M=P)
    >>> pcg.converged, pcg.n_iter < plain.n_iter / 3
    (True, True)
    """
    op, place = _psd_operator(A, like)
    n = op.shape[0]
    rank = _check_rank(rank, n)
    mu = check_real(mu, "mu", low=0.0, low_inclusive=False)
    adaptive = check_bool(adaptive, "adaptive")
    target = check_real(target_condition, "target_condition", low=1.0, low_inclusive=False)
    if max_rank is None:
        max_rank = min(n, max(rank, DEFAULT_MAX_RANK))
    max_rank = _check_rank(max_rank, n, "max_rank")
    if max_rank < rank:
        raise ValueError(f"max_rank must be >= rank = {rank}, got {max_rank}")
    stream = as_random_stream(rng)
    probe = stream.spawn(1)[0]
    sketch = _Sketch(op, place, stream, engine)
    sketch.grow(rank)
    n_doublings = 0
    while True:
        factor = sketch.factor()
        lam_r = factor.smallest_eigenvalue()
        last = not adaptive or sketch.rank == max_rank
        if last or (lam_r + mu) / mu <= target:  # only then can E decide: estimate it
            enough = math.inf if last else (target - 1) * mu - lam_r
            error = _error_norm_estimate(op, factor, probe, engine, enough=enough)
            if last or (lam_r + mu + error) / mu <= target:
                break
        sketch.grow(min(2 * sketch.rank, max_rank))
        n_doublings += 1
    U, lam = factor.eigen()
    condition = (float(lam[-1]) + mu + error) / mu
    return NystromPreconditioner(
        U, place.put(lam), mu=mu, condition_estimate=condition, n_doublings=n_doublings
    )


def _error_norm_estimate(
    A: Operator, factor: _ShiftedFactor, stream: RandomStream, engine: str | None, *, enough: float
) -> float:
    """A lower estimate of ``‖A − B Bᵀ‖`` by block power iteration (the block where
    ``B`` lives, its ``4 × 4`` Rayleigh quotient on the host).

    ``A − B Bᵀ`` is PSD up to the shift; it differs from ``A − U diag(lam) Uᵀ``
    by at most ``ν`` in norm. Every Ritz value is a lower bound of that norm,
    so the iteration stops early once the estimate exceeds ``enough``.
    """
    B, place = factor.B, factor.place
    n = A.shape[0]
    block = min(_POWER_BLOCK, n)
    start = gaussian(n, block, rng=stream, dtype=A.dtype, engine=engine).dense_on(place)
    V, _ = place.xp.linalg.qr(start)
    estimate = 0.0
    for _ in range(_POWER_ITERATIONS):
        W = _product(A, V, place) - B @ (B.T @ V)
        ritz = np.linalg.eigvalsh(place.host((V.T @ W + W.T @ V) / 2))
        estimate = max(estimate, float(ritz[-1]))
        if estimate > enough:
            break
        V, _ = place.xp.linalg.qr(W)
    return estimate
