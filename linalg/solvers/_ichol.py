"""Incomplete Cholesky preconditioners: IC(0) and modified IC(0)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from linalg._core.engines import register, select
from linalg._core.namespace import (
    NUMPY,
    array_kind,
    check_lives_with,
    placement_of,
    to_host,
    to_numpy,
)
from linalg._core.operators import Operator, check_host_data, is_cupyx_sparse
from linalg._core.results import LinAlgError
from linalg._core.validate import (
    as_float_array,
    check_bool,
    check_finite,
    check_real,
    check_symmetric,
    float_dtype,
    float_input,
    result_dtype,
)
from linalg.solvers._ichol_device import DeviceTriangularSolves
from linalg.solvers._ichol_reference import IcholKernels, sweeps_of

__all__ = ["IncompleteCholesky", "ichol"]

register("solvers.ichol", "reference", "linalg.solvers._ichol_reference:REFERENCE_KERNELS")
register("solvers.ichol", "numba", "linalg.solvers._ichol_numba:NUMBA_KERNELS")

# A pivot at most this fraction of its diagonal entry counts as a breakdown.
_PIVOT_RTOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}
_FIRST_RESTART_SHIFT = 1e-3
_MAX_TRIES = 30


class IncompleteCholesky(Operator):
    """The preconditioner ``M = (L Lᵀ)⁻¹`` for a lower-triangular factor ``L``.

    Usually made by :func:`ichol`. Applying it (``matvec``, ``matmat``,
    ``solve``; the adjoint products are the same, ``M`` being symmetric) solves
    ``L Lᵀ z = r`` by a forward and a backward triangular solve, accumulated in
    float64.

    Parameters
    ----------
    L : scipy.sparse matrix or array
        Lower triangular with a positive diagonal, float32 or float64. Kept
        as a :class:`scipy.sparse.csr_array`, sharing memory where it can;
        it is never modified.
    shift : float
        The ``alpha`` with ``L Lᵀ ≈ A + alpha * diag(A)`` (reported only).
    n_restarts : int
        Failed factorizations before this one (reported only).
    modified : bool
        Whether ``L`` comes from MIC(0) (reported only).
    engine : str, optional
        The engine whose triangular solves to use, as in :func:`ichol`.
    like : array, optional
        Solve where ``like`` lives. A CuPy array, a GPU tensor or an array of
        another array-API library makes every solve take and return arrays of
        that library, computed on its device (see Notes); ``engine`` then
        names the host kernels only. Default: NumPy arrays on the host.

    Attributes
    ----------
    L : scipy.sparse.csr_array
        The factor, with sorted column indices.
    shift, n_restarts, modified
        As given.
    engine : str
        The engine name actually used.
    shape : tuple of int
        ``(n, n)``.
    dtype : numpy.dtype
        The dtype of ``L``.

    Notes
    -----
    On device data the two sweeps are level-scheduled: a row's level is one
    more than the highest level among the rows it reads, and the rows of a
    level, which depend on earlier levels only, are solved together, as one
    gather, one reduction and one slice update in the data's own namespace.
    The schedule is computed once on the host. A solve costs a few kernel
    launches per level: the 2-D Poisson matrix on a ``p x p`` grid has
    ``2p - 1`` levels per sweep, a banded or tridiagonal matrix one level per
    row, so on a GPU IC(0) pays off for matrices with few levels (and
    :func:`jacobi` is the fallback for those with many). JAX arrays are
    refused: the sweeps write the work array in place.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from linalg.solvers import IncompleteCholesky
    >>> M = IncompleteCholesky(sp.csr_array(np.array([[2.0, 0.0], [1.0, 1.0]])))
    >>> M.solve(np.array([4.0, 3.0]))  # (L Lᵀ)⁻¹ r with L Lᵀ = [[4, 2], [2, 2]]
    array([0.5, 1. ])
    """

    def __init__(
        self,
        L: Any,
        *,
        shift: float = 0.0,
        n_restarts: int = 0,
        modified: bool = False,
        engine: str | None = None,
        like: Any = None,
    ) -> None:
        L = _lower_factor(L)
        super().__init__(L.shape, L.dtype)
        implementation = select("solvers.ichol", engine=engine, kind=NUMPY, dtype=L.dtype)
        self._kernels: IcholKernels = implementation.load()
        self.L = L
        self._sweeps = sweeps_of(L)
        self.shift = float(shift)
        self.n_restarts = int(n_restarts)
        self.modified = bool(modified)
        self.engine = implementation.engine
        self._kind = NUMPY
        self._device: DeviceTriangularSolves | None = None
        if like is not None and array_kind(like).via_namespace:
            self._kind = array_kind(like)
            if self._kind.library == "jax":
                raise TypeError(
                    "like holds JAX arrays, which are immutable, and the device sweeps of "
                    "IncompleteCholesky write their work array in place: use jacobi(A) on "
                    "JAX, or solve on the host"
                )
            self._place = placement_of(like)
            self._device = DeviceTriangularSolves(self._sweeps, self._place, self._kind)

    def solve(self, R: Any) -> np.ndarray:
        """Solve ``L Lᵀ Z = R``.

        Parameters
        ----------
        R : array_like, shape (n,) or (n, k)
            Right-hand side(s).

        Returns
        -------
        numpy.ndarray
            ``Z``, the shape of ``R``, in the wider of ``R``'s and ``L``'s dtypes.

        Examples
        --------
        >>> import numpy as np
        >>> import scipy.sparse as sp
        >>> from linalg.solvers import ichol
        >>> M = ichol(sp.diags_array([1.0, 4.0, 9.0]))
        >>> M.solve(np.ones((3, 2)))
        array([[1.        , 1.        ],
               [0.25      , 0.25      ],
               [0.11111111, 0.11111111]])
        """
        check_lives_with(R, "R", self._kind, "the factor")
        if self._device is None:
            R = as_float_array(to_numpy(R, "R"), "R", ndim=(1, 2))
        else:
            R = float_input(R, "R", ndim=(1, 2))[0]
        n = self.shape[0]
        if R.shape[0] != n:
            raise ValueError(f"R must have {n} rows (the size of L), got shape {tuple(R.shape)}")
        return self._apply(R)

    def _apply(self, R: Any) -> Any:
        """The solve on a validated ``R`` (solvers call this on every iteration)."""
        check_lives_with(R, "R", self._kind, "the factor")
        dtype = result_dtype(self.dtype, R.dtype)
        if self._device is not None:
            return self._device(R, self._place.dtype(dtype))
        columns = np.ascontiguousarray(R.reshape(self.shape[0], -1))
        Z = self._kernels.solve(self._sweeps, columns)
        return Z.reshape(R.shape).astype(dtype, copy=False)

    _matvec = _matmat = _rmatvec = _rmatmat = _apply

    def as_linear_operator(self):
        """This preconditioner as a :class:`scipy.sparse.linalg.LinearOperator`
        (host solves only)."""
        check_host_data(self._kind, "host solves", "use solve() or matmat on the device")
        return super().as_linear_operator()

    def __repr__(self) -> str:
        n = self.shape[0]
        kind = "MIC(0)" if self.modified else "IC(0)"
        return (
            f"<{n}x{n} IncompleteCholesky {kind} with nnz(L)={self.L.nnz}, "
            f"shift={self.shift:g}, n_restarts={self.n_restarts}, "
            f"engine={self.engine!r}, dtype={self.dtype}"
            + ("" if self._device is None else f", solves on {self._kind}")
            + ">"
        )


def ichol(
    A: Any,
    *,
    shift: float = 0.0,
    modified: bool = False,
    engine: str | None = None,
    like: Any = None,
) -> IncompleteCholesky:
    """Incomplete Cholesky factorization IC(0), or modified MIC(0), as a preconditioner.

    Computes a lower-triangular ``L`` with the pattern of the lower triangle
    of ``A`` (its stored entries, explicit zeros included) such that
    ``(L Lᵀ)_ij = a_ij`` wherever ``A`` has an entry (Saad, *Iterative Methods
    for Sparse Linear Systems*, ch. 10). With ``modified=True`` (MIC(0)) every
    fill entry ``l_ik l_jk`` that IC(0) drops at ``(i, j)`` is subtracted from
    the pivots of rows ``i`` and ``j`` instead, so that ``L Lᵀ e = A e`` for
    the all-ones ``e``: MIC(0) usually needs fewer iterations on discretized
    elliptic problems. The factorization works in float64.

    IC(0) can break down on a symmetric positive definite matrix (a pivot
    ``<= 0``, or below ``1e-12`` of its diagonal entry; ``1e-6`` in float32).
    It is then retried on ``A + alpha * diag(A)`` with ``alpha = max(2 * alpha,
    1e-3)``, starting from ``alpha = shift``, up to 30 tries in all; the
    ``alpha`` used is reported as ``shift``.

    The factorization runs on the host (it is sequential, and done once).
    For ``A`` on a device (a CuPy array or cupyx sparse matrix, a GPU tensor,
    an array of another array-API library), or with ``like=`` such an array,
    ``A`` is read to the host once, factored there, and the preconditioner's
    solves run on the device, taking and returning that library's arrays
    (level-scheduled sweeps; see :class:`IncompleteCholesky`): pass it as
    ``M=`` to the solvers' device paths.

    Parameters
    ----------
    A : scipy.sparse matrix or array, or array_like, shape (n, n)
        Symmetric with a positive diagonal, real. float32 and float64 are
        kept, integers promoted to float64. Never modified. Device data is
        copied to the host for the factorization.
    shift : float, default 0.0
        Factor ``A + shift * diag(A)`` from the start (``>= 0``).
    modified : bool, default False
        MIC(0) instead of IC(0).
    engine : {"auto", "reference", "numba"}, optional
        Which kernels factor and solve; default from ``config_context``,
        ``LINALG_ENGINE``, then ``"auto"`` (Numba where installed).
    like : array, optional
        Solve where ``like`` lives (a host ``A`` factored for device
        solves). Default: where ``A`` lives; an ``A`` on a device needs a
        ``like`` of the same library and device.

    Returns
    -------
    IncompleteCholesky
        ``M ≈ A⁻¹`` with ``L``, ``shift`` (the ``alpha`` used), ``n_restarts``
        (failed tries before it), ``modified`` and ``engine``.

    Raises
    ------
    TypeError
        If ``A`` is complex or not numeric; if ``like`` and a device ``A``
        live in different places; if the solves would run on JAX arrays.
    ValueError
        If ``A`` is not square, empty, not finite, not symmetric or has a
        diagonal entry ``<= 0``; if ``shift`` is negative or not finite.
    LinAlgError
        If the factorization breaks down on every try.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from scipy.sparse.linalg import cg
    >>> from linalg.solvers import ichol
    >>> T = sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(30, 30))
    >>> A = sp.kron(sp.eye_array(30), T) + sp.kron(T, sp.eye_array(30))  # 2-D Poisson
    >>> M = ichol(A, modified=True)
    >>> M.shift, M.n_restarts
    (0.0, 0)
    >>> x, info = cg(A, np.ones(900), M=M.as_linear_operator())
    >>> info
    0
    """
    shift = check_real(shift, "shift", low=0.0)
    modified = check_bool(modified, "modified")
    kind = array_kind(A)
    if kind.via_namespace:
        on_device = A.data if is_cupyx_sparse(A) else A
        if like is None:
            like = on_device
        check_lives_with(like, "like", kind, "A")
        A = to_host(A)
    columns = _lower_columns(_symmetric_matrix(A))
    implementation = select("solvers.ichol", engine=engine, kind=NUMPY, dtype=columns.dtype)
    L, alpha, n_restarts = _factor_with_restarts(implementation.load(), columns, shift, modified)
    return IncompleteCholesky(
        L,
        shift=alpha,
        n_restarts=n_restarts,
        modified=modified,
        engine=implementation.engine,
        like=like,
    )


def _factor_with_restarts(
    kernels: IcholKernels, columns: sp.csr_array, shift: float, modified: bool
) -> tuple[sp.csr_array, float, int]:
    """Factor, raising the shift after every breakdown; ``(L, alpha, n_restarts)``."""
    rtol = _PIVOT_RTOL[columns.dtype]
    alpha = shift
    for attempt in range(_MAX_TRIES):
        indptr, indices, data, failed_row = kernels.factor(
            columns.indptr, columns.indices, columns.data, alpha, modified, rtol
        )
        if failed_row < 0:
            L = sp.csr_array((data.astype(columns.dtype), indices, indptr), shape=columns.shape)
            return L, alpha, attempt
        last_alpha, alpha = alpha, max(2.0 * alpha, _FIRST_RESTART_SHIFT)
    raise LinAlgError(
        f"incomplete Cholesky of A broke down at row {failed_row} (pivot <= {rtol:g} times "
        f"its diagonal entry) on each of {_MAX_TRIES} tries, the last on "
        f"A + {last_alpha:g} * diag(A); is A positive definite?"
    )


def _symmetric_matrix(A: Any) -> sp.csr_array:
    """Validate ``A``; a canonical CSR copy in float32 or float64."""
    A = to_numpy(A, "A")
    if sp.issparse(A):
        dtype = float_dtype(A.dtype, "A")
        if A.ndim != 2:
            raise ValueError(f"A must be 2-D, got shape {A.shape}")
        matrix = sp.csr_array(A, dtype=dtype, copy=True)
    else:
        matrix = sp.csr_array(as_float_array(A, "A", ndim=2))
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"A must be square, got shape {matrix.shape}")
    if matrix.shape[0] == 0:
        raise ValueError(f"A is empty (shape {matrix.shape}); expected at least one entry")
    check_finite(matrix.data, "A")
    matrix.sum_duplicates()
    check_symmetric(matrix, "A")
    diagonal = matrix.diagonal()
    bad = np.flatnonzero(diagonal <= 0)
    if bad.size:
        i = bad[0]
        raise ValueError(f"A must have a positive diagonal; A[{i}, {i}] = {diagonal[i]}")
    return matrix


def _lower_columns(matrix: sp.csr_array) -> sp.csr_array:
    """``tril(A)ᵀ`` in CSR: its rows are the columns of ``tril(A)``, indices sorted."""
    lower = sp.tril(matrix, format="csc")
    lower.sort_indices()
    return sp.csr_array((lower.data, lower.indices, lower.indptr), shape=matrix.shape)


def _lower_factor(L: Any) -> sp.csr_array:
    """Validate a lower-triangular factor with a positive diagonal, as CSR."""
    if not sp.issparse(L):
        raise TypeError(f"L must be a scipy.sparse matrix or array, got {type(L).__name__}")
    L = sp.csr_array(L, dtype=float_dtype(L.dtype, "L"))
    n = L.shape[0]
    if L.shape != (n, n) or n == 0:
        raise ValueError(f"L must be square and non-empty, got shape {L.shape}")
    if not L.has_canonical_format:
        L = L.copy()
        L.sum_duplicates()
    check_finite(L.data, "L")
    rows = np.repeat(np.arange(n), np.diff(L.indptr))
    if np.any(L.indices > rows):
        raise ValueError("L must be lower triangular")
    bad = np.flatnonzero(~(L.diagonal() > 0))  # sorted: the diagonal is last in its row
    if bad.size:
        raise ValueError(f"L must have a positive diagonal; L[{bad[0]}, {bad[0]}] is not")
    return L
