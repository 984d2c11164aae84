"""Inverse empirical-Fisher vector products from a dense window of gradients (M-FAC)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from linalg._core.engines import ANY_ARRAY_LIBRARY, register, select
from linalg._core.namespace import (
    NUMPY,
    ArrayKind,
    check_lives_with,
    cholesky_or_none,
    common_kind,
    device_of,
    namespace_of,
    numpy_dtype,
    to_caller,
    to_numpy,
)
from linalg._core.operators import check_host_data
from linalg._core.results import LinAlgError
from linalg._core.validate import (
    as_float_array,
    check_finite,
    check_int,
    check_real,
    float_input,
)

__all__ = ["BlasKernels", "DenseIHVP"]

register(
    "curvature.dense_ihvp",
    "reference",
    "linalg.curvature._dense:BlasKernels",
    libraries=ANY_ARRAY_LIBRARY,
)

_SCALES = ("mean", "sum")


class BlasKernels:
    """The reference engine: BLAS-3 products with blocks of gradients, in the
    arrays' own library (NumPy on the host; CuPy or a GPU tensor's on a GPU).

    ``blocks`` is a ``(nb, m, b)`` view of the gradients ``G`` whose block
    ``j`` is ``G[:, j b:(j + 1) b]``; rows of ``V`` are vectors (ML convention).
    Every call goes to NumPy's BLAS: NumPy and SciPy wheels each bundle their
    own OpenBLAS, and alternating between the two costs up to a factor 2 on
    the next large call while the other library's threads still spin
    (measured on 2 cores: ``G @ Gᵀ`` 174 ms alone, 223 ms after a SciPy TRSM).
    """

    @staticmethod
    def gram(blocks: np.ndarray) -> np.ndarray:
        """``G_j G_jᵀ`` for every block, ``(nb, m, m)``.

        NumPy's matmul recognizes a matrix times its own transpose and calls
        SYRK (half the flops of a GEMM), on ``G`` in place: ``blocks[j]`` in C
        order is ``G_jᵀ`` in the column-major order BLAS reads, with no copy.
        Measured: as fast as ``scipy.linalg.blas.ssyrk(1.0, G.T, trans=1)``.
        """
        return blocks @ blocks.mT

    @staticmethod
    def project(blocks: np.ndarray, V: np.ndarray) -> np.ndarray:
        """``V_j G_jᵀ`` for ``V`` of shape ``(nb, k, b)``: ``(nb, k, m)``."""
        return V @ blocks.mT

    @staticmethod
    def expand(blocks: np.ndarray, T: np.ndarray) -> np.ndarray:
        """``T_j G_j`` for ``T`` of shape ``(nb, k, m)``: ``(nb, k, b)``."""
        return T @ blocks


@dataclass
class _Blocks:
    """Consecutive coordinate blocks of one size, with their capacitance factors."""

    start: int
    stop: int
    blocks: Any  # (nb, m, b) view of G[:, start:stop]
    inv_chol: Any  # (nb, m, m) float64 L_j⁻¹, with L_j L_jᵀ = G_j G_jᵀ + μ I
    whitened: Any = None  # (nb, m, b) L_j⁻¹ G_j, made by inv_diag

    def rows(self, V: Any, xp: Any) -> Any:
        """The ``(nb, k, b)`` view of this group's columns of ``V`` (k, d)."""
        nb, _, b = self.blocks.shape
        return blocks_of(V[:, self.start : self.stop], nb, b, xp)


def blocks_of(X: Any, nb: int, b: int, xp: Any) -> Any:
    """``X`` (k, nb b) seen as ``(nb, k, b)``: block ``j`` is ``X[:, j b:(j + 1) b]``."""
    return xp.permute_dims(xp.reshape(X, (X.shape[0], nb, b)), (1, 0, 2))


class DenseIHVP:
    """Inverse-Fisher vector products ``F⁻¹ v`` for ``F = λ I + (1/m) Gᵀ G`` (M-FAC).

    ``G`` holds ``m`` gradients of dimension ``d`` as rows. Following M-FAC
    (Frantar, Kurtic and Alistarh, 2021), products with the inverse of the
    damped empirical Fisher come from the Woodbury identity, here in BLAS-3
    form rather than M-FAC's ``O(d m²)`` recurrence:

        F⁻¹ v = (1/λ) (v − Gᵀ C⁻¹ G v),   C = G Gᵀ + μ I,

    with ``μ = m λ`` (``scale="mean"``) or ``μ = λ`` (``scale="sum"``, where
    ``F = λ I + Gᵀ G``). Set-up forms the ``m x m`` Gram matrix by one SYRK,
    adds ``μ`` and factors it by Cholesky; nothing of size ``d m`` besides
    ``G`` is made. A solve then costs two memory-bound passes over ``G``.

    Parameters
    ----------
    grads : array_like, shape (m, d)
        The gradients, as rows. NumPy, or torch / JAX tensors on the CPU:
        a C-contiguous float32/float64 array is kept by reference, not
        copied (do not modify it while this object is in use); anything else
        is copied once into that form. CuPy arrays, torch / JAX GPU tensors
        and arrays of other array-API libraries stay where they are: every
        method then computes in their library and returns its arrays, and
        ``v`` must live there too.
    damping : float
        ``λ > 0``.
    scale : {"mean", "sum"}, default "mean"
        ``F = λ I + (1/m) Gᵀ G`` or ``F = λ I + Gᵀ G``.
    block_size : int, optional
        Make ``F`` block-diagonal over consecutive blocks of ``block_size``
        coordinates (the last block is shorter when ``block_size`` does not
        divide ``d``), as M-FAC's blocked variant; every method works blocked.
        Default: one block, the full ``F``.
    engine : {"auto", "reference"}, optional
        Only ``"reference"`` is registered, for every array library (see Notes).

    Attributes
    ----------
    damping : float
    scale : str
    n_grads : int
        ``m``.
    dim : int
        ``d``.
    dtype : dtype
        The dtype of ``grads`` (integers promoted to float64), as its library
        spells it.
    block_size : int or None
        As given.
    engine : str
        The engine used.

    Raises
    ------
    TypeError
        If ``grads`` is complex or not numeric, or an option has the wrong type.
    ValueError
        If ``grads`` is not 2-D, empty or not finite; ``damping <= 0``;
        ``scale`` is unknown; ``block_size`` is not in ``[1, d]``.
    LinAlgError
        If a capacitance is not numerically positive definite (``damping``
        too small for the rounding of the Gram matrix in this dtype).

    Notes
    -----
    Costs: set-up ``O(d m²)`` flops (the SYRK) and ``O(m³)`` per block for
    the Cholesky factor ``L`` and its triangular inverse ``L⁻¹``, which
    ``solve`` applies by two batched GEMMs; ``solve``/``matvec`` of ``k``
    vectors ``O(d m k)``;
    :meth:`inv_diag` ``O(d m²)`` once, after which :meth:`inv_entry` is
    ``O(m)``. Memory: ``G``; ``nb m²`` float64 for the factors of ``nb``
    blocks, about ``m / block_size`` times the memory of float64 ``G`` (use
    blocks of at least ``m`` coordinates); after :meth:`inv_diag`,
    ``W = L⁻¹ G``, the size of ``G``.

    Precision: the ``m x m`` factorizations are in float64 (milliseconds, and
    a more accurate :meth:`logdet`); the passes over ``G`` stay in its dtype.
    The Woodbury form subtracts two terms of size ``‖v‖ / λ``, so its error
    is about ``eps ‖v‖ / λ``. Relative to ``‖F⁻¹ v‖`` that is about ``eps``
    where ``v`` has a fair part outside the span of the gradients (the usual
    regime ``m << d``: float32 measured 1e-7 at damping ``1e-4`` times the
    mean eigenvalue), but up to ``eps ‖F‖ / λ`` where ``F`` is curved in
    every direction (``m >= d``, or blocks narrower than ``m``; float32
    measured 4e-4 there, 5e-6 at damping ``1e-2`` times the mean eigenvalue).

    Engines: the work is BLAS-3 (SYRK, batched GEMM) and memory-bound BLAS-2,
    which NumPy already hands to the optimized BLAS; a Numba engine would
    bring nothing, so only ``"reference"`` is registered. It is written
    against the array API and runs in the gradients' own library: on a GPU,
    CuPy's or torch's cuBLAS and cuSOLVER calls (not yet measured on one).

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.curvature import DenseIHVP
    >>> rng = np.random.default_rng(0)
    >>> G = rng.standard_normal((8, 100))
    >>> F = 0.1 * np.eye(100) + G.T @ G / 8
    >>> ihvp = DenseIHVP(G, damping=0.1)
    >>> v = rng.standard_normal(100)
    >>> np.allclose(ihvp.solve(v), np.linalg.solve(F, v))
    True
    >>> np.allclose(ihvp.matvec(v), F @ v)
    True
    >>> bool(np.isclose(ihvp.logdet(), np.linalg.slogdet(F)[1]))
    True
    """

    def __init__(
        self,
        grads: Any,
        *,
        damping: float,
        scale: str = "mean",
        block_size: int | None = None,
        engine: str | None = None,
    ) -> None:
        G, self._xp, self._kind = _check_grads(grads)
        m, d = G.shape
        self.damping = _check_damping(damping, m, d)
        if scale not in _SCALES:
            raise ValueError(f"scale must be 'mean' or 'sum', got {scale!r}")
        self.block_size = check_int(block_size, "block_size", low=1, allow_none=True)
        if self.block_size is not None and self.block_size > d:
            raise ValueError(
                f"block_size must be <= dim = {d} (the columns of grads), got {block_size}"
            )
        kind = self._kind if self._kind.via_namespace else NUMPY
        implementation = select(
            "curvature.dense_ihvp", engine=engine, kind=kind, dtype=numpy_dtype(G.dtype)
        )
        self._kernels = implementation.load()
        self.engine = implementation.engine
        self.scale, self.n_grads, self.dim, self.dtype = scale, m, d, G.dtype
        self._weight = 1.0 / m if scale == "mean" else 1.0  # F = λ I + weight Gᵀ G
        self._G = G
        self._groups = [self._factor(*span) for span in _partition(d, self.block_size or d)]

    def _factor(self, start: int, stop: int, size: int) -> _Blocks:
        m, xp = self.n_grads, self._xp
        blocks = blocks_of(self._G[:, start:stop], (stop - start) // size, size, xp)
        capacitance = xp.astype(self._kernels.gram(blocks), xp.float64)
        mu = self.damping / self._weight
        capacitance = capacitance + mu * xp.eye(m, dtype=xp.float64, device=device_of(blocks))
        chol = cholesky_or_none(capacitance)
        if chol is None:
            raise LinAlgError(
                f"G Gᵀ + μ I (columns {start}:{stop} of grads) is not numerically positive "
                f"definite: damping = {self.damping:g} is too small for the rounding of the "
                f"Gram matrix in {self.dtype}; increase damping or use float64 gradients"
            )
        # L⁻¹ as the transpose of inv(Lᵀ): LU with partial pivoting never pivots on an
        # upper-triangular matrix, so this is LAPACK's triangular inverse, exactly lower
        # triangular, from NumPy's LAPACK (see BlasKernels on mixing libraries).
        return _Blocks(start, stop, blocks, xp.linalg.inv(chol.mT).mT)

    def solve(self, v: Any) -> Any:
        """The inverse-Fisher vector product ``F⁻¹ v``.

        Parameters
        ----------
        v : array_like, shape (d,) or (k, d)
            One vector, or ``k`` vectors as rows.

        Returns
        -------
        array
            ``F⁻¹ v``, the shape of ``v``, in the caller's array type (that of
            ``v``, else that of ``grads``). Computed in :attr:`dtype`; returned
            in the wider of ``v``'s dtype and :attr:`dtype`.

        Examples
        --------
        >>> import numpy as np
        >>> from linalg.curvature import DenseIHVP
        >>> ihvp = DenseIHVP(np.array([[3.0, 4.0]]), damping=1.0, scale="sum")
        >>> ihvp.solve(np.array([[3.0, 4.0], [4.0, -3.0]]))  # eigenvalues 26 and 1
        array([[ 0.11538462,  0.15384615],
               [ 4.        , -3.        ]])
        """
        return self._public(v, self._solve_rows)

    def matvec(self, v: Any) -> Any:
        """The Fisher vector product ``F v = λ v + (1/m) Gᵀ (G v)`` (not the inverse).

        Parameters
        ----------
        v : array_like, shape (d,) or (k, d)
            One vector, or ``k`` vectors as rows.

        Returns
        -------
        array
            ``F v``, like :meth:`solve`.

        Examples
        --------
        >>> import numpy as np
        >>> from linalg.curvature import DenseIHVP
        >>> ihvp = DenseIHVP(np.array([[3.0, 4.0]]), damping=1.0)
        >>> ihvp.matvec(np.array([3.0, 4.0]))
        array([ 78., 104.])
        """
        return self._public(v, self._matvec_rows)

    def inv_diag(self) -> Any:
        """The diagonal of ``F⁻¹``, ``(1/λ) (1 − ‖W[:, i]‖²)`` with ``W = L⁻¹ G``.

        The first call computes and keeps ``W`` (triangular solves, ``O(d m²)``,
        the memory of ``G``); later calls and :meth:`inv_entry` reuse it.

        Returns
        -------
        array, shape (d,)
            In :attr:`dtype` and the array type of ``grads``.

        Examples
        --------
        >>> import numpy as np
        >>> from linalg.curvature import DenseIHVP
        >>> ihvp = DenseIHVP(np.array([[3.0, 4.0]]), damping=1.0, scale="sum")
        >>> ihvp.inv_diag()  # F = I + g gᵀ: 1 − g_i² / 26
        array([0.65384615, 0.38461538])
        """
        xp = self._xp
        pieces = []
        for group in self._groups:
            squares = _column_squares(self._whitened(group), xp)
            pieces.append((1.0 - xp.reshape(squares, (-1,))) / self.damping)
        out = pieces[0] if len(pieces) == 1 else xp.concat(pieces)
        return to_caller(xp.astype(out, self.dtype), self._kind)

    def inv_entry(self, i: int, j: int) -> float:
        """The entry ``(F⁻¹)_ij = (1/λ) (δ_ij − W[:, i] · W[:, j])``, in ``O(m)``.

        Computes ``W`` on first use, as :meth:`inv_diag`. Entries across two
        blocks of a blocked ``F`` are 0.

        Parameters
        ----------
        i, j : int
            Indices in ``[0, d)``.

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np
        >>> from linalg.curvature import DenseIHVP
        >>> ihvp = DenseIHVP(np.array([[3.0, 4.0]]), damping=1.0, scale="sum")
        >>> round(ihvp.inv_entry(0, 1), 10)  # − 12 / 26
        -0.4615384615
        """
        (group, block, a), (group_j, block_j, b) = self._locate(i, "i"), self._locate(j, "j")
        if group is not group_j or block != block_j:
            return 0.0
        xp, W = self._xp, self._whitened(group)[block, ...]
        inner = float(xp.sum(xp.astype(W[:, a], xp.float64) * xp.astype(W[:, b], xp.float64)))
        return (float(i == j) - inner) / self.damping

    def logdet(self) -> float:
        """``log det F = d log λ + Σ_blocks (log det C_j − m log μ)``, from the Cholesky factors.

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np
        >>> from linalg.curvature import DenseIHVP
        >>> ihvp = DenseIHVP(np.array([[3.0, 4.0]]), damping=1.0, scale="sum")
        >>> import math
        >>> math.isclose(ihvp.logdet(), math.log(26.0))  # F = I + g gᵀ, ‖g‖² = 25
        True
        """
        xp, mu = self._xp, self.damping / self._weight
        total = self.dim * math.log(self.damping)
        for group in self._groups:
            pivots = xp.linalg.diagonal(group.inv_chol)  # 1 / diag(L_j)
            total -= 2.0 * float(xp.sum(xp.log(pivots))) + math.prod(pivots.shape) * math.log(mu)
        return total

    def as_linear_operator(self):
        """``F⁻¹`` (not ``F``) as a :class:`scipy.sparse.linalg.LinearOperator`.

        Its products take and return NumPy columns, ``(d,)`` or ``(d, k)``;
        ``F⁻¹`` is symmetric, so the adjoint products are the same. Useful as
        a preconditioner ``M=`` for SciPy's or linalg's Krylov solvers.

        Examples
        --------
        >>> import numpy as np
        >>> from linalg.curvature import DenseIHVP
        >>> op = DenseIHVP(np.array([[3.0, 4.0]]), damping=1.0).as_linear_operator()
        >>> op.shape, np.allclose(op @ np.array([4.0, -3.0]), [4.0, -3.0])
        ((2, 2), True)
        """
        from scipy.sparse.linalg import LinearOperator

        check_host_data(self._kind, "gradients in host memory", "use solve() on the device")

        def columns(X: np.ndarray) -> np.ndarray:
            X = np.asarray(X).astype(self.dtype, copy=False)
            return self._solve_rows(X.reshape(self.dim, -1).T).T.reshape(X.shape)

        products = dict.fromkeys(("matvec", "rmatvec", "matmat", "rmatmat"), columns)
        return LinearOperator((self.dim, self.dim), dtype=self.dtype, **products)

    def __repr__(self) -> str:
        blocks = "" if self.block_size is None else f", block_size={self.block_size}"
        return (
            f"<DenseIHVP of {self.n_grads} gradients of dim {self.dim}, damping={self.damping:g}, "
            f"scale={self.scale!r}{blocks}, dtype={self.dtype}>"
        )

    def _public(self, v: Any, apply: Callable[[Any], Any]) -> Any:
        check_lives_with(v, "v", self._kind, "grads")
        V, xp, kind = float_input(v, "v", ndim=(1, 2))
        if V.shape[-1] != self.dim:
            raise ValueError(
                f"v must have last dimension {self.dim} (dim, the columns of grads), "
                f"got shape {tuple(V.shape)}"
            )
        out = apply(xp.astype(xp.reshape(V, (-1, self.dim)), self.dtype, copy=False))
        dtype = xp.result_type(self.dtype, V.dtype)
        out = xp.astype(xp.reshape(out, tuple(V.shape)), dtype, copy=False)
        return to_caller(out, self._kind if kind == NUMPY else kind)

    def _sandwich(
        self,
        V: Any,
        inner: Callable[[_Blocks, Any], Any],
        combine: Callable[[Any, Any], Any],
    ) -> Any:
        """``combine(V, inner(V Gᵀ) G)`` block by block, for rows ``V`` (k, d).

        ``combine`` makes one new array and works in place on it, so that no
        temporary the size of ``V`` is made beyond ``inner(V Gᵀ) G``; with one
        block per group (the default) the result needs no copy back.
        """
        xp, pieces = self._xp, []
        for group in self._groups:
            rows = group.rows(V, xp)
            T = inner(group, self._kernels.project(group.blocks, rows))
            block = combine(rows, self._kernels.expand(group.blocks, T))
            pieces.append(xp.reshape(xp.permute_dims(block, (1, 0, 2)), (V.shape[0], -1)))
        return pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=1)

    def _solve_rows(self, V: Any) -> Any:
        xp, damping = self._xp, self.damping

        def inner(group: _Blocks, T: Any) -> Any:
            # Rows of T C⁻¹ = (T L⁻ᵀ) L⁻¹: two batched GEMMs with the stored L⁻¹ for all
            # blocks at once (triangular solves would loop over blocks in SciPy).
            inverse = group.inv_chol
            return xp.astype((xp.astype(T, xp.float64) @ inverse.mT) @ inverse, self.dtype)

        def combine(rows: Any, Y: Any) -> Any:
            out = rows - Y
            out /= damping
            return out

        return self._sandwich(V, inner, combine)

    def _matvec_rows(self, V: Any) -> Any:
        damping, weight = self.damping, self._weight

        def combine(rows: Any, Y: Any) -> Any:
            out = rows * damping
            out += Y
            return out

        return self._sandwich(V, lambda group, T: T * weight, combine)

    def _whitened(self, group: _Blocks) -> Any:
        if group.whitened is None:
            group.whitened = self._xp.astype(group.inv_chol, self.dtype) @ group.blocks
        return group.whitened

    def _locate(self, index: Any, name: str) -> tuple[_Blocks, int, int]:
        """The group, block and offset in the block of coordinate ``index``."""
        index = check_int(index, name, low=0)
        if index >= self.dim:
            raise ValueError(f"{name} must be < dim = {self.dim}, got {index}")
        group = next(g for g in self._groups if index < g.stop)
        block, offset = divmod(index - group.start, group.blocks.shape[2])
        return group, block, offset


def _check_grads(grads: Any) -> tuple[Any, Any, ArrayKind]:
    """``(G, xp, kind)``: host gradients as a C-contiguous NumPy array, others in
    their own namespace (see :func:`~linalg._core.validate.float_input`)."""
    kind = common_kind(grads)
    if kind.via_namespace:
        return float_input(grads, "grads", ndim=2)
    G = as_float_array(to_numpy(grads, "grads"), "grads", ndim=2, finite=False)
    # One summation pass rather than a mask the size of G: NaN or Inf anywhere makes
    # the sum non-finite; only then (or on overflow) is the exact check run.
    if not np.isfinite(G.sum()):
        check_finite(G, "grads")
    return np.ascontiguousarray(G), namespace_of(G), kind


def _check_damping(damping: Any, m: int, d: int) -> float:
    damping = check_real(damping, "damping", low=0.0)
    if damping == 0.0:
        why = (
            f"with n_grads = {m} < dim = {d}, F = Gᵀ G / m has rank <= {m} and is singular"
            if m < d
            else "the Woodbury form F⁻¹ v = (v − Gᵀ C⁻¹ G v) / damping needs damping > 0"
        )
        raise ValueError(f"damping must be > 0: {why}")
    return damping


def _partition(d: int, size: int) -> list[tuple[int, int, int]]:
    """``(start, stop, block size)`` of the full blocks, then of the shorter last block."""
    full = d - d % size
    spans = [(0, full, size)]
    if full < d:
        spans.append((full, d, d - full))
    return spans


def _column_squares(W: Any, xp: Any) -> Any:
    """``Σ_m W[j, m, b]²`` in float64, ``(nb, b)``: by einsum for NumPy (no float64
    copy of ``W``), else squares in ``W``'s dtype summed in float64."""
    if isinstance(W, np.ndarray):
        return np.einsum("jmb,jmb->jb", W, W, dtype=np.float64)
    return xp.sum(W * W, axis=1, dtype=xp.float64)
