"""A truncated SVD that follows a changing matrix: appended rows and columns,
low-rank modifications, removed rows and a forgetting factor."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from linalg._core.namespace import (
    HOST,
    Placement,
    array_kind,
    check_lives_with,
    placement_of,
    to_caller,
    to_host,
    to_numpy,
)
from linalg._core.operators import is_cupyx_sparse
from linalg._core.random import RandomStream, as_random_stream
from linalg._core.validate import (
    check_finite,
    check_int,
    check_real,
    float_dtype,
    float_input,
    result_dtype,
)
from linalg.svd._randomized import randomized_svd
from linalg.svd._result import SVDResult, column_signs
from linalg.svd._update_complement import (
    Complement,
    as_dense,
    dense_complement,
    krylov_complement,
    sparse_complement,
)
from linalg.svd._update_side import Side

__all__ = ["TruncatedSVD"]

METHODS = ("auto", "zha_simon", "sparse", "krylov")
# "auto" sends a dense update of rank p > KRYLOV_FACTOR * k to "krylov".
KRYLOV_FACTOR = 4


class TruncatedSVD:
    """A rank-``k`` SVD ``U diag(s) Vt`` kept up to date under updates.

    Each update replaces the surrogate ``A_k = U diag(s) Vt`` by the best
    rank-``k`` approximation of the *updated surrogate*, as in Zha and Simon
    (1999): after ``add_rows(E)`` the object holds the rank-``k`` SVD of
    ``[A_k; E]``, not of ``[A; E]`` for the true matrix ``A``. The two agree
    when ``A`` has rank ``k``; otherwise the truncation error of earlier steps
    is carried along, the price of never revisiting ``A``.

    Parameters
    ----------
    U : array_like, shape (m, k)
        Left singular vectors, orthonormal columns (checked loosely:
        ``‖UᵀU − I‖₂ ≤ √eps``).
    s : array_like, shape (k,)
        Singular values, non-negative and non-increasing.
    Vt : array_like, shape (k, n)
        Right singular vectors, orthonormal rows. ``k <= min(m, n)``. The
        three arrays are copied; torch CPU tensors are accepted and the
        properties then return torch tensors. Factors on a device (CuPy,
        torch or JAX GPU tensors, another array-API library; all three of
        one library) keep ``U`` and ``V`` there: see Device data.
    method : {"auto", "zha_simon", "sparse", "krylov"}
        How updates are computed (see Notes). ``"auto"``: ``"sparse"`` when
        the update (``E``, ``B`` or ``C``) is a SciPy sparse matrix; else
        ``"krylov"`` when its rank ``p`` exceeds ``4 k``; else ``"zha_simon"``.
    reorth_tol : float, optional
        Re-orthogonalize when ``max(‖UᵀU − I‖_F, ‖VᵀV − I‖_F)`` passes this
        (checked after every ``"sparse"`` update from the Gram matrices of the
        extended factors, ``O(k³)``; the dense methods do not drift). Default
        ``max(1e-10, 1000 eps)``: ``1e-10`` in float64, ``1.2e-4`` in float32.
    krylov_rank : int, optional
        ``q``, the dimension of the approximate complement used by
        ``"krylov"`` (default ``k``; never more than ``p``, nor than the
        dimension ``rows − k`` left outside the basis).
    krylov_iter : int
        Power steps of ``"krylov"`` (default 2).
    rng : None, int, numpy.random.Generator or RandomStream
        Seed of the ``"krylov"`` test matrices (SPEC 7).

    Attributes
    ----------
    U, s, Vt : array
        The current factors (formed lazily, cached until the next update).
        Signs follow ``svd_flip``: the largest-magnitude entry of each column
        of ``U`` is positive.
    shape : tuple of int
        ``(m, n)`` of the surrogate.
    rank : int
        ``k``.
    n_updates, n_reorth : int
        Updates applied and re-orthogonalizations done.

    Raises
    ------
    ValueError
        Mismatched shapes, ``k > min(m, n)``, NaN or Inf, negative or
        increasing ``s``, non-orthonormal ``U`` or ``Vt``, a bad option.
    TypeError
        Complex, boolean or object arrays; options of the wrong type; device
        factors mixed with host ones (or with another device's), and later
        updates that do not live where the factors do.

    Notes
    -----
    An update with new vectors ``Z`` splits them as ``Z = X H + Q R`` against
    the current basis ``X`` (``U`` or ``V``), with ``Q ⟂ X`` orthonormal, and
    takes the SVD of a small middle matrix: for ``add_rows(E)`` (``Z = Eᵀ``)
    ``[A_k; E] = (U ⊕ I) [[diag(s), 0], [Hᵀ, Rᵀ]] [V, Q]ᵀ``, for
    ``add_columns`` the transpose, for ``update(B, C)`` (Brand 2006)
    ``A_k + B Cᵀ = [U, Q_B] ([[diag(s), 0], [0, 0]] + [H_B; R_B][H_C; R_C]ᵀ)
    [V, Q_C]ᵀ``. Its top ``k`` triplets rotate the bases. The methods differ in
    how ``Q`` is found and applied:

    - ``"zha_simon"``: ``Q`` formed (two projections, Householder QR); ``U``
      and ``V`` explicit. ``O((m + n) k (k + p) + n p²)`` per ``add_rows``.
    - ``"sparse"``: the extended factorization of Deng et al. (2024):
      ``U = U' K_U`` and ``V = V' K_V`` with ``k x k`` matrices ``K``.
      Appended rows go into ``U'`` as ``Y K_U⁻¹``; the complement's R factor
      comes from the rows ``J`` of ``Z`` that hold non-zeros (a pivoted QR of
      ``[C[J]; Θ^½ Pᵀ H]`` with ``V[J̄]ᵀV[J̄] = P Θ Pᵀ``, never the Gram
      ``EEᵀ − (EV)(EV)ᵀ`` whose cancellation squares the condition number;
      rounding-level directions are dropped), and only rows ``J`` of ``V'``
      change. ``O(nnz k + |J| p (k + p) + (k + p)³)``
      per ``add_rows``: nothing proportional to ``m`` or ``n``. The drift
      ``‖UᵀU − I‖`` is tracked through the Gram matrices of ``U'``, ``V'``;
      past ``reorth_tol`` both factors are re-orthogonalized (``K`` folded
      in, QR, a ``k x k`` SVD). When a ``K`` would become ill-conditioned
      (condition number above ``1e4``) that update is applied densely.
    - ``"krylov"``: ``Q`` spans ``q`` directions found by randomized subspace
      iteration on the complement of the update (for ``update(B, C)``, of
      ``(I − UUᵀ) B Cᵀ`` and its transpose), so the middle matrix has
      ``k + q`` columns instead of ``k + p``. Exact when that complement has
      rank ``≤ q``; otherwise an approximation whose error is governed by its
      ``(q+1)``-th singular value.

    ``remove_rows`` is the same for every method: QR of the kept rows of
    ``U`` (``O(m k²)``), a ``k x k`` SVD; ``V`` only rotates. ``decay``
    scales ``s``.

    **Device data.** Given factors of a device library (CuPy, torch or JAX
    GPU tensors, ``array_api_strict``...), the object computes through that
    library's namespace, with every method and option. The tall arrays stay
    on the device: ``U'`` and ``V'``, the updates, the complements ``Q``,
    the products with the bases and their QR factorizations (Householder, in
    the device library). The small ones are NumPy on the host: ``s``, the
    ``k x k`` matrices ``K``, the Gram matrices, the coefficients ``H`` and
    ``R`` (``(k + p) x p``), the middle matrix and its SVD, whose rotations go
    back to the device (``(k + p) x k``). ``"sparse"`` finds the touched rows
    as a device row mask, takes the pivoted QR of the ``p x p`` R factor of
    a device QR of ``C[J]`` and writes the touched rows of ``U'`` or ``V'``
    in place (arrays that cannot be written, JAX's, need another method).
    ``"krylov"`` draws its Gaussian start where the factors live (``p x q``,
    or ``n x q`` for ``update``; on the GPU for CuPy and torch CUDA, the
    host's numbers). Each update
    synchronizes a few times (the finiteness check of the update, the small
    factors' round trips). Updates must be arrays of the factors' library
    (``remove_rows`` also takes host indices); SciPy sparse updates need
    host factors. The properties return arrays of the factors' library
    (fresh copies: device arrays cannot be made read-only);
    :meth:`as_linear_operator` needs host factors.

    References
    ----------
    H. Zha and H. D. Simon, "On updating problems in latent semantic
    indexing", SIAM J. Sci. Comput. 21 (1999), 782-791.

    M. Brand, "Fast low-rank modifications of the thin singular value
    decomposition", Linear Algebra Appl. 415 (2006), 20-30.

    H. Deng, J. Zhang, Y. Zhou et al., "Fast updating truncated SVD for
    representation learning with sparse matrices", ICLR 2024.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from linalg.svd import TruncatedSVD
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((50, 5)) @ rng.standard_normal((5, 30))  # rank 5
    >>> U, s, Vt = np.linalg.svd(A[:40], full_matrices=False)
    >>> tsvd = TruncatedSVD(U[:, :5], s[:5], Vt[:5])
    >>> tsvd.add_rows(sp.csr_array(A[40:])).shape
    (50, 30)
    >>> bool(np.allclose(tsvd.s, np.linalg.svd(A, compute_uv=False)[:5]))
    True
    >>> bool(np.allclose((tsvd.U * tsvd.s) @ tsvd.Vt, A))
    True
    """

    def __init__(
        self,
        U: Any,
        s: Any,
        Vt: Any,
        *,
        method: str = "auto",
        reorth_tol: float | None = None,
        krylov_rank: int | None = None,
        krylov_iter: int = 2,
        rng: Any = None,
    ) -> None:
        _check_options(method, reorth_tol, krylov_rank, krylov_iter)
        factors = {"U": U, "s": s, "Vt": Vt}
        on_device = [x for x in factors.values() if array_kind(x).via_namespace]
        self._kind = array_kind(on_device[0] if on_device else U)
        for name, x in factors.items():
            check_lives_with(x, name, self._kind, "the other factors")
        self._place = place = placement_of(on_device[0]) if on_device else HOST
        U = float_input(U, "U", ndim=2)[0]
        s = float_input(s, "s", ndim=1)[0]
        Vt = float_input(Vt, "Vt", ndim=2)[0]
        self.dtype = result_dtype(U.dtype, s.dtype, Vt.dtype)
        s = np.array(place.host(s), dtype=self.dtype)
        _check_factors(U, s, Vt, self.dtype, place)
        self.method = method
        eps = np.finfo(self.dtype).eps
        self.reorth_tol = max(1e-10, 1e3 * eps) if reorth_tol is None else float(reorth_tol)
        self.krylov_rank = krylov_rank
        self.krylov_iter = krylov_iter
        self._rs = as_random_stream(rng)
        self._draws = 0
        self._left = Side(_owned_copy(U, self.dtype, place), place)
        self._right = Side(_owned_copy(Vt.T, self.dtype, place), place)
        self._s = s
        self._cache: tuple[Any, Any] | None = None
        self.n_updates = 0
        self.n_reorth = 0

    @classmethod
    def from_matrix(
        cls,
        A: Any,
        k: int,
        *,
        method: str = "auto",
        reorth_tol: float | None = None,
        krylov_rank: int | None = None,
        krylov_iter: int = 2,
        rng: Any = None,
        **options: Any,
    ) -> TruncatedSVD:
        """Start from the rank-``k`` randomized SVD of ``A``.

        Parameters
        ----------
        A : array_like, sparse matrix or LinearOperator
            The matrix, ``(m, n)``. A dense device array (CuPy, a GPU
            tensor, another array-API library) gives an object whose factors
            live on its device.
        k : int
            Rank kept, ``1 <= k <= min(m, n)``.
        method, reorth_tol, krylov_rank, krylov_iter
            As for :class:`TruncatedSVD`.
        rng : None, int, numpy.random.Generator or RandomStream
            Seeds the randomized SVD (stream ``s``) and the object's own
            draws (stream ``s + 1``).
        **options
            Passed to :func:`linalg.svd.randomized_svd` (``oversample``,
            ``n_iter``, ``method`` is not among them: use ``svd_method``).

        Returns
        -------
        TruncatedSVD

        Raises
        ------
        ValueError
            ``k`` out of range, ``A`` not 2-D, a bad option.
        """
        k = check_int(k, "k", low=1)
        shape = A.shape if hasattr(A, "shape") else np.shape(A)
        if len(shape) != 2:
            raise ValueError(f"A must be 2-D, got shape {tuple(shape)}")
        if k > min(shape):
            raise ValueError(f"k must be <= min(m, n) = {min(shape)} for A of shape {shape}")
        _check_options(method, reorth_tol, krylov_rank, krylov_iter)
        rs = as_random_stream(rng)
        if "svd_method" in options:
            options["method"] = options.pop("svd_method")
        U, s, Vt = randomized_svd(A, k, rng=rs, **options)
        return cls(
            U, s, Vt, method=method, reorth_tol=reorth_tol, krylov_rank=krylov_rank,
            krylov_iter=krylov_iter, rng=RandomStream(rs.seed, (rs.stream + 1) % 2**64),
        )  # fmt: skip

    # --- the current factors ------------------------------------------------------

    @property
    def shape(self) -> tuple[int, int]:
        return (self._left.rows, self._right.rows)

    @property
    def rank(self) -> int:
        return len(self._s)

    @property
    def U(self) -> Any:
        return self._public(self._formed()[0])

    @property
    def s(self) -> Any:
        s = self._s.copy()
        return to_caller(s, self._kind) if self._place.on_host else self._place.put(s)

    @property
    def Vt(self) -> Any:
        return self._public(self._formed()[1])

    def _public(self, X: Any) -> Any:
        """A formed factor for the caller: on the host the read-only cached array
        (as the caller's host type), on a device a copy (nothing makes device
        arrays read-only)."""
        if self._place.on_host:
            return to_caller(X, self._kind)
        return self._place.xp.asarray(X, copy=True)

    def _formed(self) -> tuple[Any, Any]:
        """``U`` and ``Vt`` from the extended factors, in the ``svd_flip`` signs
        (read-only on the host)."""
        if self._cache is None:
            U, V = self._left.form(), self._right.form()
            signs = column_signs(U, self._place)
            U, V = (X * self._place.put(signs) for X in (U, V))
            for side in (self._left, self._right):
                side.flip(signs)
            if self._place.on_host:
                U.flags.writeable = V.flags.writeable = False
            self._cache = (U, V.T)
        return self._cache

    def orthogonality_error(self) -> float:
        """``max(‖UᵀU − I‖₂, ‖VᵀV − I‖₂)`` (spectral norms) of the formed factors."""
        U, Vt = self._formed()
        eye, host = np.eye(self.rank), self._place.host
        return max(
            float(np.linalg.norm(host(U.T @ U) - eye, 2)),
            float(np.linalg.norm(host(Vt @ Vt.T) - eye, 2)),
        )

    def as_linear_operator(self):
        """The current surrogate ``U diag(s) Vt`` as a SciPy ``LinearOperator``
        (a snapshot: later updates do not change it).

        Raises
        ------
        TypeError
            The factors live on a device: a SciPy ``LinearOperator`` multiplies
            host arrays.
        """
        from scipy.sparse.linalg import LinearOperator

        if not self._place.on_host:
            raise TypeError(
                f"as_linear_operator builds a SciPy LinearOperator, which multiplies host "
                f"arrays, and these factors are {self._kind}: use U, s and Vt (or "
                "to_result()) where they live, or move the factors to the host and build "
                "a TruncatedSVD there"
            )
        U, Vt = self._formed()
        s = self._s.copy()
        return LinearOperator(
            self.shape,
            matvec=lambda v: U @ (s * (Vt @ v)),
            rmatvec=lambda v: Vt.T @ (s * (U.T @ v)),
            matmat=lambda X: U @ (s[:, None] * (Vt @ X)),
            rmatmat=lambda X: Vt.T @ (s[:, None] * (U.T @ X)),
            dtype=self.dtype,
        )

    def to_result(self) -> SVDResult:
        """The current factors as an :class:`~linalg.svd.SVDResult`."""
        return SVDResult(
            self.U, self.s, self.Vt,
            info={"method": self.method, "n_updates": self.n_updates, "n_reorth": self.n_reorth},
        )  # fmt: skip

    def __repr__(self) -> str:
        m, n = self.shape
        return (
            f"TruncatedSVD(shape=({m}, {n}), rank={self.rank}, method={self.method!r}, "
            f"dtype={self.dtype}, n_updates={self.n_updates})"
        )

    # --- updates --------------------------------------------------------------------

    def add_rows(self, E: Any) -> TruncatedSVD:
        """Append rows: the surrogate becomes ``[U diag(s) Vt; E]``.

        Parameters
        ----------
        E : array_like or sparse matrix, shape (p, n)
            A dask array is computed first: its rows join ``U`` in memory.
            Of the factors' library when they live on a device.

        Returns
        -------
        TruncatedSVD
            ``self``, updated in place (``E`` is not modified).
        """
        if array_kind(E).library == "dask":
            E = E.compute()
        E = self._check_block(E, "E", self.shape[1], axis=1)
        self._append(self._left, self._right, E.T, self._choose(E.shape[0], E))
        return self

    def add_columns(self, E: Any) -> TruncatedSVD:
        """Append columns: the surrogate becomes ``[U diag(s) Vt, E]``.

        Parameters
        ----------
        E : array_like or sparse matrix, shape (m, p)
            Of the factors' library when they live on a device.

        Returns
        -------
        TruncatedSVD
            ``self``, updated in place.
        """
        E = self._check_block(E, "E", self.shape[0], axis=0)
        self._append(self._right, self._left, E, self._choose(E.shape[1], E))
        return self

    def update(self, B: Any, C: Any) -> TruncatedSVD:
        """Low-rank modification: the surrogate becomes ``U diag(s) Vt + B Cᵀ``.

        Parameters
        ----------
        B : array_like or sparse matrix, shape (m, r)
        C : array_like or sparse matrix, shape (n, r)
            Of the factors' library when they live on a device.

        Returns
        -------
        TruncatedSVD
            ``self``, updated in place.
        """
        B = self._check_block(B, "B", self.shape[0], axis=0)
        C = self._check_block(C, "C", self.shape[1], axis=0)
        if B.shape[1] != C.shape[1]:
            raise ValueError(
                f"C must have as many columns as B ({B.shape[1]}), got shape {C.shape}"
            )
        method = self._choose(B.shape[1], B, C)
        left = self._complement(self._left, B, method, C)
        right = self._complement(self._right, C, method, B)
        k = self.rank
        M = np.zeros((k + left.rank, k + right.rank), self.dtype)
        M[:k, :k] = np.diag(self._s)
        M += np.vstack([left.H, left.R]) @ np.vstack([right.H, right.R]).T
        Yl, self._s, Yr = self._truncate(M)
        left.rotate(self._left, Yl[:k], Yl[k:])
        right.rotate(self._right, Yr[:k], Yr[k:])
        self._finish(method)
        return self

    def remove_rows(self, idx: Any) -> TruncatedSVD:
        """Delete rows of the surrogate.

        Parameters
        ----------
        idx : int array, slice or bool mask of length m
            The rows to delete; at least ``k`` rows must remain. Host indices
            (NumPy, a list) for any factors; an array of the factors' library
            too when they live on a device (it is read on the host).

        Returns
        -------
        TruncatedSVD
            ``self``, updated in place.
        """
        keep = self._keep_mask(idx)
        Q, R = self._left.qr(keep)
        Y, self._s, Zt = np.linalg.svd(R * self._s, full_matrices=False)
        self._left.set_explicit(Q @ self._place.put(Y))
        self._right.rotate(Zt.T)
        self._finish("zha_simon")
        return self

    def decay(self, gamma: float) -> TruncatedSVD:
        """Forget: the surrogate is multiplied by ``gamma`` in (0, 1] (``s *= gamma``).

        Returns
        -------
        TruncatedSVD
            ``self``, updated in place.
        """
        gamma = check_real(gamma, "gamma", low=0.0, high=1.0, low_inclusive=False)
        self._s *= self.dtype.type(gamma)
        self.n_updates += 1
        return self

    def reorthogonalize(self) -> TruncatedSVD:
        """Restore orthonormal factors: QR of ``U`` and ``V``, SVD of ``R_U diag(s) R_Vᵀ``."""
        Qu, Ru = self._left.qr()
        Qv, Rv = self._right.qr()
        Y, self._s, Zt = np.linalg.svd((Ru * self._s) @ Rv.T)
        self._left.set_explicit(Qu @ self._place.put(Y))
        self._right.set_explicit(Qv @ self._place.put(Zt.T))
        self._cache = None
        self.n_reorth += 1
        return self

    # --- machinery ------------------------------------------------------------------

    def _append(self, grow: Side, other: Side, Z: Any, method: str) -> None:
        """``[X_k; Zᵀ]`` on the ``grow`` side, ``Z`` complemented against ``other``."""
        p = Z.shape[1]
        comp = self._complement(other, Z, method)
        k = self.rank
        M = np.zeros((k + p, k + comp.rank), self.dtype)
        M[:k, :k] = np.diag(self._s)
        M[k:, :k] = comp.H.T
        M[k:, k:] = comp.R.T
        Yg, self._s, Yo = self._truncate(M)
        grow.grow(Yg[:k], Yg[k:], sparse=method == "sparse")
        comp.rotate(other, Yo[:k], Yo[k:])
        self._finish(method)

    def _complement(self, side: Side, Z: Any, method: str, other: Any = None) -> Complement:
        """Split ``Z`` against ``side``; ``other`` is the opposite factor of ``B Cᵀ``."""
        if method == "sparse":
            return sparse_complement(side, Z)
        q = min(Z.shape[1], self.krylov_rank or self.rank, side.rows - self.rank)
        if method == "zha_simon" or q == 0:
            return dense_complement(side, Z)
        if other is None:  # appended rows or columns: a Gaussian start, no weight
            start = self._normal((Z.shape[1], q))
            return krylov_complement(side, Z, start, None, self.krylov_iter)
        start = other.T @ self._normal((other.shape[0], q))
        weight = as_dense(other.T @ other)
        return krylov_complement(side, Z, start, weight, self.krylov_iter)

    def _normal(self, shape: tuple[int, int]) -> Any:
        """The next Gaussian block of the object's stream, where its factors live
        (drawn on the GPU for CuPy and torch CUDA factors: see ``Placement.draw``)."""
        G = self._place.draw(self._rs, "normal", shape, dtype=self.dtype, offset=self._draws)
        self._draws += shape[0] * shape[1]
        return G

    def _truncate(self, M: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        Y, s, Zt = np.linalg.svd(M, full_matrices=False)
        k = self.rank
        return Y[:, :k], s[:k], Zt[:k].T

    def _finish(self, method: str) -> None:
        self._cache = None
        self.n_updates += 1
        if method == "sparse" and self.reorth_tol < max(
            self._left.orthogonality_estimate(), self._right.orthogonality_estimate()
        ):
            self.reorthogonalize()

    def _choose(self, p: int, *blocks: Any) -> str:
        """The method for an update of rank ``p`` by ``blocks`` (the "auto" rule)."""
        if self.method != "auto":
            return self.method
        if any(sp.issparse(b) for b in blocks):
            return "sparse"
        return "krylov" if p > KRYLOV_FACTOR * self.rank else "zha_simon"

    def _check_block(self, E: Any, name: str, size: int, axis: int) -> Any:
        """A 2-D float block (dense or CSR) of the object's dtype with ``size`` on
        ``axis``, living where the factors do."""
        check_lives_with(E, name, self._kind, "the factors")
        if is_cupyx_sparse(E):
            raise TypeError(
                f"{name} is a {type(E).__name__} (cupyx.scipy.sparse); updates of factors on "
                f"a device are dense arrays: pass {name}.toarray() (method='sparse' finds "
                "its non-zero rows itself)"
            )
        if sp.issparse(E):
            if E.ndim != 2:
                raise ValueError(f"{name} must be 2-D, got shape {E.shape}")
            float_dtype(E.dtype, name)
            check_finite(E.data, name)
            if 0 in E.shape:
                raise ValueError(f"{name} is empty (shape {E.shape}); expected at least one entry")
            E = sp.csr_array(E).astype(self.dtype, copy=False)
        else:
            E, xp, _ = float_input(E, name, ndim=2)
            E = xp.astype(E, self._place.dtype(self.dtype), copy=False)
        if E.shape[axis] != size:
            want = "columns" if axis == 1 else "rows"
            raise ValueError(f"{name} must have {size} {want}, got shape {tuple(E.shape)}")
        return E

    def _keep_mask(self, idx: Any) -> np.ndarray:
        m = self.shape[0]
        if isinstance(idx, slice):
            remove = np.zeros(m, bool)
            remove[idx] = True
        else:
            if array_kind(idx).via_namespace:  # indices: small, read on the host
                check_lives_with(idx, "idx", self._kind, "the factors")
                idx = to_host(idx)
            idx = np.asarray(to_numpy(idx, "idx"))
            if idx.dtype == bool:
                if idx.shape != (m,):
                    raise ValueError(f"idx as a mask must have shape ({m},), got {idx.shape}")
                remove = idx
            elif idx.dtype.kind in "iu" and idx.ndim <= 1:
                if idx.size and (idx.min() < -m or idx.max() >= m):
                    raise ValueError(f"idx must hold row indices in [-{m}, {m}), got {idx}")
                remove = np.zeros(m, bool)
                remove[idx] = True
            else:
                raise TypeError(
                    f"idx must be an integer array, a slice or a boolean mask, got {idx.dtype}"
                )
        if m - np.count_nonzero(remove) < self.rank:
            raise ValueError(
                f"idx removes {np.count_nonzero(remove)} of {m} rows; at least k = {self.rank} "
                "rows must remain"
            )
        return ~remove


def _check_options(method: Any, reorth_tol: Any, krylov_rank: Any, krylov_iter: Any) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if reorth_tol is not None:
        check_real(reorth_tol, "reorth_tol", low=0.0, low_inclusive=False)
    check_int(krylov_rank, "krylov_rank", low=1, allow_none=True)
    check_int(krylov_iter, "krylov_iter", low=0)


def _owned_copy(X: Any, dtype: np.dtype, place: Placement) -> Any:
    """A copy of ``X`` in ``dtype``, where it lives: the sparse updates write into it."""
    return place.xp.asarray(X, dtype=place.dtype(dtype), copy=True)


def _check_factors(U: Any, s: np.ndarray, Vt: Any, dtype: np.dtype, place: Placement) -> None:
    """Shapes, ``s`` (on the host) non-negative non-increasing, orthonormality
    within ``√eps``."""
    (m, k), n = U.shape, Vt.shape[1]
    if s.shape != (k,):
        raise ValueError(
            f"s must have shape ({k},) to match U of shape {tuple(U.shape)}, got {s.shape}"
        )
    if Vt.shape[0] != k:
        raise ValueError(
            f"Vt must have {k} rows to match U of shape {tuple(U.shape)}, got {tuple(Vt.shape)}"
        )
    if k > min(m, n):
        raise ValueError(f"k = {k} columns of U exceed min(m, n) = {min(m, n)}")
    if np.any(s < 0):
        raise ValueError("s must be non-negative")
    if np.any(np.diff(s) > 0):
        raise ValueError("s must be non-increasing")
    tol = np.sqrt(np.finfo(dtype).eps)
    for name, X in (("U", U), ("Vt", Vt.T)):
        error = float(np.linalg.norm(place.host(X.T @ X) - np.eye(k), 2))
        if error > tol:
            raise ValueError(
                f"{name} must have orthonormal {'columns' if name == 'U' else 'rows'}; "
                f"‖{name}ᵀ{name} − I‖₂ = {error:.3g} exceeds √eps = {tol:.3g}"
            )
