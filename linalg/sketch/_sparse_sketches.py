"""Sparse sketches: CountSketch and the sparse sign sketch, a few signs per column.

Column ``j`` of S holds ``ζ`` non-zeros (``ζ = 1`` for CountSketch), at
distinct rows, each ``±1/√ζ``. Non-zero ``t`` of column ``j`` comes from stream
element ``e = j·ζ + t``: its row from the float64 uniform ``u_e`` and its sign
from the Rademacher bit of the same element. The rows are sampled without
replacement by Floyd's algorithm, which takes exactly ``ζ`` draws: with
``top = d − ζ + t``, the candidate is ``r = min(⌊u_e·(top + 1)⌋, top)``, and
``top`` is taken instead if ``r`` was already chosen in this column. For
CountSketch this is simply ``row = min(⌊u_j·d⌋, d − 1)``.

Applying S to a dense ``(n, k)`` matrix is one pass over it (``O(ζ n k)``
additions), the reason these sketches are the fastest to apply. It is a
scatter-add, which the array API lacks: on device data it is the CuPy
engine's kernel (CuPy arrays; torch CUDA tensors through DLPack views) or, for
torch tensors without CuPy, torch's own ``index_add_``, with the hashes drawn
where the data lives. ``Sᵀ Y`` is a gather, computed in any namespace.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linalg._core.engines import register
from linalg._core.namespace import Placement, numpy_dtype, placement_of
from linalg._core.random import RandomStream
from linalg._core.validate import check_int
from linalg.sketch._operator import SketchOperator

__all__ = ["CountSketch", "SparseSignSketch", "countsketch", "sparse_sign"]

register(
    "sketch.sparse",
    "reference",
    "linalg.sketch._sparse_sketches:REFERENCE_KERNELS",
    libraries=("numpy", "torch"),
)
register("sketch.sparse", "numba", "linalg.sketch._sparse_numba:NUMBA_KERNELS")
register("sketch.sparse", "cupy", "linalg.sketch._cupy:CUPY_KERNELS", libraries=("cupy",))


def _floyd_rows_on(xp: Any, u: Any, d: int) -> list[Any]:
    """:func:`floyd_rows` in ``u``'s namespace: the ``ζ`` columns of rows, as a list."""
    nnz = u.shape[1]
    columns: list[Any] = []
    for t in range(nnz):
        top = d - nnz + t
        candidate = xp.clip(xp.astype(u[:, t] * float(top + 1), xp.int64), max=top)
        if columns:
            taken = xp.any(xp.stack(columns, axis=1) == candidate[:, None], axis=1)
            candidate = xp.where(taken, xp.full_like(candidate, top), candidate)
        columns.append(candidate)
    return columns


def floyd_rows(u: np.ndarray, d: int) -> np.ndarray:
    """Floyd's sampling without replacement, one column per row of ``u`` ``(m, ζ)``."""
    nnz = u.shape[1]
    rows = np.empty(u.shape, dtype=np.int64)
    for t in range(nnz):
        top = d - nnz + t
        candidate = np.minimum((u[:, t] * float(top + 1)).astype(np.int64), top)
        taken = (rows[:, :t] == candidate[:, None]).any(axis=1)
        rows[:, t] = np.where(taken, top, candidate)
    return rows


class _ReferenceKernels:
    """NumPy and SciPy: hashes by the stream's NumPy draws, products by sparse BLAS."""

    @staticmethod
    def hashes(
        rng: RandomStream, d: int, nnz: int, start: int, stop: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``(m, ζ)`` and signs ``(m, ζ)`` of columns ``start:stop``."""
        count, offset = (stop - start) * nnz, start * nnz
        u = rng.uniform(count, offset=offset).reshape(-1, nnz)
        signs = rng.rademacher(count, offset=offset).reshape(-1, nnz)
        return floyd_rows(u, d), signs

    @staticmethod
    def sketch(rng: RandomStream, d: int, nnz: int, start: int, A: Any, scale: float) -> Any:
        """``S @ A`` for S's columns ``start, ..., start + n - 1``, values ``scale`` times
        signs: by a SciPy sparse product for NumPy ``A``, by ``index_add_`` for torch."""
        if not isinstance(A, np.ndarray):
            return _torch_scatter(rng, d, nnz, start, A, scale)
        rows, signs = REFERENCE_KERNELS.hashes(rng, d, nnz, start, start + A.shape[0])
        values = (signs * scale).astype(A.dtype, copy=False)
        return np.asarray(as_csc(rows, values, d) @ A)

    @staticmethod
    def apply_transpose(rows: np.ndarray, values: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """``Sᵀ @ Y``: row ``j`` gathers ``Σ_t values[j, t] Y[rows[j, t]]``."""
        out = values[:, 0, None] * Y[rows[:, 0]]
        for t in range(1, rows.shape[1]):
            out += values[:, t, None] * Y[rows[:, t]]
        return out


REFERENCE_KERNELS = _ReferenceKernels()


def device_hashes(
    rng: RandomStream, d: int, nnz: int, start: int, stop: int, place: Placement, dtype: np.dtype
) -> tuple[list[Any], Any]:
    """The hashes of columns ``start:stop`` drawn where ``place`` keeps its arrays: the
    ``ζ`` columns of rows (a list of int64 vectors) and the signs ``(m, ζ)`` in ``dtype``."""
    shape, offset = (stop - start, nnz), start * nnz
    u = place.draw(rng, "uniform", shape, dtype=np.dtype(np.float64), offset=offset)
    signs = place.draw(rng, "rademacher", shape, dtype=dtype, offset=offset)
    return _floyd_rows_on(place.xp, u, d), signs


def _torch_scatter(rng: RandomStream, d: int, nnz: int, start: int, A: Any, scale: float) -> Any:
    """``S @ A`` for a torch tensor ``A``: one ``index_add_`` per non-zero of a column."""
    place = placement_of(A)
    rows, signs = device_hashes(rng, d, nnz, start, start + A.shape[0], place, numpy_dtype(A.dtype))
    values = signs * scale
    out = place.xp.zeros((d, A.shape[1]), dtype=A.dtype, device=place.device)
    for t, column in enumerate(rows):
        out.index_add_(0, column, A * values[:, t : t + 1])
    return out


def as_csc(rows: np.ndarray, values: np.ndarray, d: int) -> Any:
    """The ``(d, m)`` CSC matrix with column ``j`` holding ``values[j]`` at ``rows[j]``."""
    from scipy import sparse

    m, nnz = rows.shape
    indptr = np.arange(0, m * nnz + 1, nnz, dtype=np.int64)
    return sparse.csc_matrix((values.ravel(), rows.ravel(), indptr), shape=(d, m))


class _HashedSketch(SketchOperator):
    sparse = True
    device_operation = "sketch.sparse"
    nnz_per_col: int

    def _scale(self) -> float:
        return 1.0 / np.sqrt(self.nnz_per_col)

    def _hashed(self, start: int, stop: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        kernels = self._kernels("sketch.sparse", self.dtype)
        rows, signs = kernels.hashes(self.rng, self.d, self.nnz_per_col, start, stop)
        return rows, (signs * self._scale()).astype(dtype, copy=False)

    def _columns(self, start: int, stop: int) -> Any:
        return as_csc(*self._hashed(start, stop, self.dtype), self.d)

    def _apply_dense(self, A: np.ndarray) -> np.ndarray:
        return self._apply_with(self._kernels("sketch.sparse", A.dtype), A)

    def _apply_with(self, kernels: Any, A: Any) -> Any:
        return kernels.sketch(
            self.rng, self.d, self.nnz_per_col, self.column_offset, A, self._scale()
        )

    def _apply_transpose_dense(self, Y: np.ndarray) -> np.ndarray:
        start = self.column_offset
        rows, values = self._hashed(start, start + self.n, Y.dtype)
        return self._kernels("sketch.sparse", Y.dtype).apply_transpose(rows, values, Y)

    def _apply_transpose_device(self, Y: Any) -> Any:
        """``Sᵀ @ Y`` where ``Y`` lives: the hashes drawn there (the host's numbers,
        rows by Floyd's rule in ``Y``'s namespace), then ``ζ`` gathers of rows of ``Y``."""
        place = placement_of(Y)
        start = self.column_offset
        hashed, signs = device_hashes(
            self.rng, self.d, self.nnz_per_col, start, start + self.n, place, numpy_dtype(Y.dtype)
        )
        values = signs * float(self._scale())
        out = None
        for t, rows in enumerate(hashed):
            term = values[:, t : t + 1] * place.xp.take(Y, rows, axis=0)
            out = term if out is None else out + term
        return out


class CountSketch(_HashedSketch):
    kind = "countsketch"
    nnz_per_col = 1


class SparseSignSketch(_HashedSketch):
    kind = "sparse_sign"

    def __init__(self, d: int, n: int, *, nnz_per_col: int = 8, **options: Any) -> None:
        super().__init__(d, n, **options)
        self.nnz_per_col = check_int(nnz_per_col, "nnz_per_col", low=1)
        if self.nnz_per_col > self.d:
            raise ValueError(
                f"nnz_per_col must be <= d (each column has distinct rows), "
                f"got {nnz_per_col} > {self.d}"
            )

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f" nnz_per_col={self.nnz_per_col}>"


_COMMON_PARAMETERS = """rng : None, int, numpy.random.Generator or RandomStream
        The seed (SPEC 7); the same seed gives the same S on every engine.
    dtype : {numpy.float64, numpy.float32}
    engine : {"auto", "reference", "numba"}, optional
        ``"numba"`` draws the hashes and applies S to dense matrices with
        multithreaded kernels (the default when Numba is installed)."""


def countsketch(
    d: int, n: int, *, rng: Any = None, dtype: Any = np.float64, engine: str | None = None
) -> CountSketch:
    """CountSketch (Clarkson–Woodruff): one ``±1`` per column, at a random row.

    ``S @ A`` adds each row of ``A``, with a random sign, to one of ``d``
    buckets: one pass over ``A``, and ``nnz(A)`` work for a sparse ``A``.
    It needs more rows than the dense sketches for the same distortion
    (``d = O(r²)`` for an ``r``-dimensional subspace in theory; a few times
    ``r`` works well in practice for preconditioning). Column ``j``: row
    ``min(⌊u_j d⌋, d − 1)`` and the sign of stream element ``j``.

    Parameters
    ----------
    d : int
        Sketch size: rows of S.
    n : int
        Rows of the matrices S is applied to.
    {common}

    Returns
    -------
    CountSketch
        A :class:`~linalg.sketch.SketchOperator`; sparse: ``S @ A`` of a
        sparse ``A`` is a CSR matrix.

    References
    ----------
    K. L. Clarkson and D. P. Woodruff, "Low-rank approximation and regression
    in input sparsity time", J. ACM 63 (2017).

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.sketch import countsketch
    >>> S = countsketch(3, 5, rng=1)
    >>> dense = S.todense()
    >>> (np.abs(dense).sum(axis=0) == 1).all()
    np.True_
    >>> A = np.arange(10.0).reshape(5, 2)
    >>> bool(np.allclose(S @ A, dense @ A))
    True
    """
    return CountSketch(d, n, rng=rng, dtype=dtype, engine=engine)


def sparse_sign(
    d: int,
    n: int,
    *,
    nnz_per_col: int = 8,
    rng: Any = None,
    dtype: Any = np.float64,
    engine: str | None = None,
) -> SparseSignSketch:
    """Sparse sign sketch: ``ζ`` entries ``±1/√ζ`` per column, at distinct random rows.

    Between CountSketch (``ζ = 1``) and the dense sketches: with ``ζ = 8`` it
    embeds an ``r``-dimensional subspace with ``d = O(r log r)`` rows, at
    ``ζ`` times CountSketch's arithmetic (Tropp et al. recommend ``ζ = 8``).

    Parameters
    ----------
    d : int
        Sketch size: rows of S.
    n : int
        Rows of the matrices S is applied to.
    nnz_per_col : int, default 8
        ``ζ``, in ``[1, d]``.
    {common}

    Returns
    -------
    SparseSignSketch
        A :class:`~linalg.sketch.SketchOperator`; sparse: ``S @ A`` of a
        sparse ``A`` is a CSR matrix.

    References
    ----------
    J. A. Tropp, A. Yurtsever, M. Udell and V. Cevher, "Streaming low-rank
    matrix approximation with an application to scientific simulation",
    SIAM J. Sci. Comput. 41 (2019).

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.sketch import sparse_sign
    >>> S = sparse_sign(16, 100, nnz_per_col=4, rng=0)
    >>> dense = S.todense()
    >>> sorted(set((dense != 0).sum(axis=0).tolist()))
    [4]
    >>> float(np.abs(dense[dense != 0]).max())
    0.5
    """
    return SparseSignSketch(d, n, nnz_per_col=nnz_per_col, rng=rng, dtype=dtype, engine=engine)


countsketch.__doc__ = countsketch.__doc__.replace("{common}", _COMMON_PARAMETERS)
sparse_sign.__doc__ = sparse_sign.__doc__.replace("{common}", _COMMON_PARAMETERS)
