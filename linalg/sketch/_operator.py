"""The sketch operator: a random ``d × n`` matrix ``S`` applied without forming it.

Every entry of ``S`` is a pure function of ``(seed, stream, column index)``
through the counter-based stream of :mod:`linalg._core.random`, so

* the same ``rng`` gives the same ``S`` on every engine, bit for bit;
* the columns ``S[:, a:b]`` are the same numbers whether or not the rest of
  ``S`` is ever drawn, which is what applying a sketch block by block (or
  chunk by chunk, on several machines) needs: ``S @ A`` equals the sum of
  ``S[:, a:b] @ A[a:b]`` over any partition of the rows of ``A``.

A kind (Gaussian, CountSketch, ...) subclasses :class:`SketchOperator` and
says how to draw a block of columns and how to apply itself to a dense block.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from linalg._core.dlpack import cupy_bridge
from linalg._core.engines import check_engine_name, register, select
from linalg._core.namespace import (
    NUMPY,
    ArrayKind,
    Placement,
    array_kind,
    namespace_of,
    numpy_dtype,
    to_caller,
    to_numpy,
)
from linalg._core.operators import as_operator, is_linear_operator, is_sparse
from linalg._core.random import RandomStream, as_random_stream
from linalg._core.validate import as_float_array, check_finite, check_int, float_dtype

__all__ = ["SketchOperator", "TransposedSketch", "rows_into_zeros"]

# Who draws the random numbers: the stream's NumPy or Numba fill (the same bits).
register("sketch.random", "reference", "linalg._core.random:RandomStream")
register("sketch.random", "numba", "linalg._core._numba_random:fill")

# Columns of S drawn at a time when a kind applies itself block by block:
# bounds the memory of a dense block of S to BLOCK_ENTRIES entries.
BLOCK_ENTRIES = 1 << 22


class SketchOperator:
    """A random ``d × n`` matrix ``S`` for ``S @ A``, defined by its seed.

    Not created directly: use :func:`~linalg.sketch.gaussian`,
    :func:`~linalg.sketch.countsketch` and the other constructors.

    Attributes
    ----------
    shape : tuple of int
        ``(d, n)``.
    dtype : numpy.dtype
        The type of the entries; ``S @ A`` has the common type of ``S`` and ``A``
        (float32 with float32 stays float32).
    rng : RandomStream
        The stream the entries come from.
    column_offset : int
        Index of this operator's first column in the stream's numbering
        (non-zero for a block ``S[:, a:b]``).
    engine : str or None
        The engine asked for (``None``: automatic).
    """

    kind: str = "sketch"
    # NumPy defers ``ndarray @ S`` to our __rmatmul__ instead of failing.
    __array_ufunc__ = None
    #: True for kinds whose S is sparse: applied to a sparse matrix they give a sparse result.
    sparse: bool = False
    #: True when every entry of A reaches S @ A (no column of S is zero), so a NaN or
    #: Inf in A shows in the result: A is then checked only if the result is not
    #: finite, which saves a second pass over A. Row sampling skips rows: False.
    reads_every_row: bool = True
    #: The engine operation whose ``sketch`` kernel applies this kind to arrays on a CUDA
    #: device (CuPy); ``None`` where the kind has no device engine yet.
    device_operation: str | None = None
    # Whether a kind without a device engine applies to device data by drawing
    # what is random from its stream (dense entries and SRHT signs where the data
    # lives, SRHT rows and sampled rows on the host) and computing on the device:
    # see ``_apply_device`` and ``_apply_drawn``.
    draws_for_devices = False

    def __init__(
        self,
        d: int,
        n: int,
        *,
        rng: Any = None,
        dtype: Any = np.float64,
        engine: str | None = None,
        column_offset: int = 0,
    ) -> None:
        self.d, self.n = check_int(d, "d", low=1), check_int(n, "n", low=1)
        self.dtype = float_dtype(dtype, "dtype")
        self.rng: RandomStream = as_random_stream(rng)
        if engine is not None:
            check_engine_name(engine, "engine")
        self.engine = engine
        self.column_offset = column_offset

    # -- what a kind provides -------------------------------------------------

    def _columns(self, start: int, stop: int) -> Any:
        """Columns ``start:stop`` (global numbering) of S: ndarray or sparse matrix."""
        raise NotImplementedError

    def _column_blocks(self, dtype: np.dtype) -> Iterator[tuple[slice, Any]]:
        """``(rows of A, S[:, rows] in dtype)`` for blocks of at most ``BLOCK_ENTRIES`` entries."""
        step = max(1, BLOCK_ENTRIES // self.d)
        for a in range(0, self.n, step):
            b = min(self.n, a + step)
            block = self._columns(self.column_offset + a, self.column_offset + b)
            yield slice(a, b), block.astype(dtype, copy=False)

    def _apply_dense(self, A: np.ndarray) -> np.ndarray:
        """``S @ A`` for a C- or F-ordered ``(n, k)`` ndarray of ``self``'s result dtype."""
        out = np.zeros((self.d, A.shape[1]), dtype=A.dtype)
        for rows, block in self._column_blocks(A.dtype):
            out += block @ A[rows]
        return out

    def _apply_drawn(self, A: Any) -> Any:
        """``S @ A`` for an ``(n, k)`` device array of the result dtype, with what is
        random drawn from the stream (kinds with ``draws_for_devices``); the dense
        kinds' ``_apply_dense`` already computes in ``A``'s namespace."""
        return self._apply_dense(A)

    def _apply_with(self, kernels: Any, A: Any) -> Any:
        """``S @ A`` for an ``(n, k)`` array by an engine's ``kernels`` (device-capable kinds)."""
        raise NotImplementedError

    def _apply_transpose_device(self, Y: Any) -> Any:
        """``Sᵀ @ Y`` for a ``(d, k)`` device array of the result dtype, where it lives
        (every built-in kind); a kind without it refuses device data."""
        raise TypeError(
            f"S.T @ Y of the {self.kind} sketch has no device path; move Y to the host "
            "(cupy.asnumpy, tensor.cpu()) or use a built-in sketch kind"
        )

    def _apply_transpose_dense(self, Y: np.ndarray) -> np.ndarray:
        """``Sᵀ @ Y`` for a ``(d, k)`` ndarray."""
        out = np.empty((self.n, Y.shape[1]), dtype=Y.dtype)
        for rows, block in self._column_blocks(Y.dtype):
            out[rows] = block.T @ Y
        return out

    # -- the public face ------------------------------------------------------

    @property
    def shape(self) -> tuple[int, int]:
        return (self.d, self.n)

    @property
    def T(self) -> TransposedSketch:
        """``Sᵀ``: ``S.T @ Y`` for ``Y`` of ``d`` rows, ``A @ S.T`` for ``A`` of ``n`` columns."""
        return TransposedSketch(self)

    def todense(self) -> np.ndarray:
        """S as a dense ``(d, n)`` ndarray of :attr:`dtype`."""
        block = self._columns(self.column_offset, self.column_offset + self.n)
        block = block.toarray() if is_sparse(block) else block
        return np.asarray(block, dtype=self.dtype)

    def __getitem__(self, key: Any) -> SketchOperator:
        """``S[:, a:b]``: the same kind of sketch restricted to columns ``a:b``."""
        if not (
            isinstance(key, tuple)
            and len(key) == 2
            and key[0] == slice(None)
            and isinstance(key[1], slice)
        ):
            raise TypeError("a sketch is sliced by columns only, as S[:, a:b]")
        start, stop, step = key[1].indices(self.n)
        if step != 1 or stop <= start:
            raise ValueError(f"S[:, a:b] needs a < b and step 1, got {key[1]}")
        return self._with_columns(start, stop)

    def _with_columns(self, start: int, stop: int) -> SketchOperator:
        block = object.__new__(type(self))
        block.__dict__.update(self.__dict__)
        block.n = stop - start
        block.column_offset = self.column_offset + start
        return block

    def __matmul__(self, A: Any) -> Any:
        return self.apply(A)

    def apply(self, A: Any) -> Any:
        """``S @ A`` for ``A`` with ``n`` rows: dense, scipy.sparse or a LinearOperator.

        Parameters
        ----------
        A : array_like, sparse matrix or LinearOperator, shape (n,) or (n, k)
            NumPy, or torch / JAX tensors on the CPU (returned as the same type).
            CuPy arrays, GPU tensors and other array-API arrays are multiplied
            on their device: by the CuPy engine for CountSketch and sparse sign
            (CuPy arrays; torch CUDA tensors through DLPack views), or torch's
            ``index_add_`` for torch tensors without CuPy; for the
            Gaussian and Rademacher kinds with entries drawn block by block
            where ``A`` lives (on the GPU for CuPy and torch CUDA, the host's
            numbers bit for bit); for the SRHT with its signs drawn there, its
            kept rows on the host and the transform on the device; for row
            sampling by a gather of the sampled rows there.
            A dask array (any chunking) gives a lazy dask array: each row chunk
            ``A[a:b]`` is multiplied by ``S[:, a:b]`` where it lives, and the
            partial products are summed by a tree reduction.

        Returns
        -------
        array or sparse matrix, shape (d,) or (d, k)
            Dense, except for a sparse kind (CountSketch, sparse sign, row
            sampling) applied to a sparse matrix: then a CSR matrix.
        """
        if is_linear_operator(A):
            return self._apply_operator(A)
        if is_sparse(A):
            return self._apply_sparse(A)
        kind = array_kind(A)
        if kind.library == "dask":
            from linalg.sketch._dask import dask_sketch

            return dask_sketch(self, A)
        if not kind.on_host:
            return self._apply_device(A, kind)
        deferred = self.reads_every_row
        X = as_float_array(to_numpy(A, "A"), "A", ndim=(1, 2), finite=not deferred)
        if X.shape[0] != self.n:
            raise ValueError(f"A must have {self.n} rows (the sketch's n), got shape {X.shape}")
        dtype = np.result_type(self.dtype, X.dtype)
        matrix = X.reshape(self.n, -1).astype(dtype, copy=False)
        with np.errstate(invalid="ignore", over="ignore"):  # judged just below
            out = self._apply_dense(matrix)
        if deferred and not np.isfinite(out).all():
            check_finite(X, "A")  # a NaN or Inf in A reaches S @ A; else the sum overflowed
            warnings.warn(f"overflow in S @ A ({self.dtype} sketch)", RuntimeWarning, stacklevel=2)
        out = out.reshape((self.d, *X.shape[1:]))
        return to_caller(out, kind) if kind != NUMPY else out

    def _apply_device(self, A: Any, kind: ArrayKind) -> Any:
        """``S @ A`` for device data, on its device: by the engine the registry picks
        (CuPy, sparse kinds), or with what is random drawn from the stream (the others)."""
        if self.device_operation is None and not self.draws_for_devices:
            raise TypeError(
                f"the {self.kind} sketch has no device path; move A to the host "
                "(cupy.asnumpy) or use one of linalg.sketch's kinds"
            )
        if A.ndim not in (1, 2) or A.shape[0] != self.n:
            shape = tuple(A.shape)
            raise ValueError(f"A must have {self.n} rows (the sketch's n), got shape {shape}")
        xp = namespace_of(A)
        dtype = np.result_type(self.dtype, float_dtype(numpy_dtype(A.dtype), "A"))
        matrix = xp.astype(xp.reshape(A, (self.n, -1)), getattr(xp, dtype.name), copy=False)
        if not self.reads_every_row and not bool(xp.all(xp.isfinite(matrix))):
            raise ValueError("A contains NaN or Inf; all entries must be finite")
        with np.errstate(invalid="ignore", over="ignore"):  # judged below (NumPy-backed xp)
            if self.device_operation is None:
                out = self._apply_drawn(matrix)
            else:
                out = self._apply_engine(matrix, kind, dtype)
        if not bool(xp.all(xp.isfinite(out))):  # one device-to-host bool, as on the host
            if not bool(xp.all(xp.isfinite(A))):
                raise ValueError("A contains NaN or Inf; all entries must be finite")
            warnings.warn(f"overflow in S @ A ({self.dtype} sketch)", RuntimeWarning, stacklevel=3)
        return xp.reshape(out, (self.d, *A.shape[1:]))

    def _apply_engine(self, matrix: Any, kind: ArrayKind, dtype: np.dtype) -> Any:
        """``S @ matrix`` by the engine's kernels: CuPy's for CuPy arrays, and for torch
        CUDA tensors through DLPack views (no copy); the registry refuses the rest."""
        bridge = cupy_bridge(kind, self.engine)
        if bridge is None:
            kernels = select(self.device_operation, engine=self.engine, kind=kind, dtype=dtype)
            return self._apply_with(kernels.load(), matrix)
        impl = select(self.device_operation, engine=self.engine, kind=bridge.kind, dtype=dtype)
        return bridge.back(self._apply_with(impl.load(), bridge.to_cupy(matrix)))

    def _apply_sparse(self, A: Any) -> Any:
        if A.shape[0] != self.n:
            raise ValueError(f"A must have {self.n} rows (the sketch's n), got shape {A.shape}")
        dtype = np.result_type(self.dtype, A.dtype, np.float32)
        block = self._columns(self.column_offset, self.column_offset + self.n)
        if is_sparse(block):
            return (block.astype(dtype).tocsr() @ A.astype(dtype)).tocsr()
        return np.asarray((A.T.astype(dtype) @ block.T.astype(dtype)).T)

    def _apply_operator(self, A: Any) -> np.ndarray:
        if A.shape[0] != self.n:
            raise ValueError(f"A must have {self.n} rows (the sketch's n), got shape {A.shape}")
        dtype = np.result_type(self.dtype, A.dtype)
        St = self.todense().T.astype(dtype)
        return as_operator(A, "A").rmatmat(St).T.astype(dtype, copy=False)

    def _kernels(self, operation: str, dtype: np.dtype) -> Any:
        """The engine's implementation of ``operation`` for data of ``dtype``."""
        return select(operation, engine=self.engine, kind=NUMPY, dtype=dtype).load()

    def _random_engine(self) -> str:
        """The RandomStream engine that draws this sketch's numbers."""
        return select("sketch.random", engine=self.engine, kind=NUMPY, dtype=self.dtype).engine

    def __repr__(self) -> str:
        offset = f" columns from {self.column_offset}" if self.column_offset else ""
        return (
            f"<{self.kind} sketch {self.d}x{self.n} {self.dtype} seed={self.rng.seed}"
            f" stream={self.rng.stream}{offset}>"
        )


class TransposedSketch:
    """``Sᵀ`` of a :class:`SketchOperator`: ``S.T @ Y`` and ``A @ S.T``."""

    __array_ufunc__ = None

    def __init__(self, sketch: SketchOperator) -> None:
        self.T = sketch

    @property
    def shape(self) -> tuple[int, int]:
        return (self.T.n, self.T.d)

    @property
    def dtype(self) -> np.dtype:
        return self.T.dtype

    def todense(self) -> np.ndarray:
        """``Sᵀ`` as a dense ``(n, d)`` ndarray."""
        return self.T.todense().T

    def __matmul__(self, Y: Any) -> Any:
        """``Sᵀ @ Y`` for ``Y`` of shape ``(d,)`` or ``(d, k)`` (dask: a lazy dask array)."""
        kind = array_kind(Y)
        if kind.library == "dask":
            from linalg.sketch._dask import dask_transposed_sketch

            return dask_transposed_sketch(self.T, Y)
        if kind.via_namespace:
            return self._apply_device(Y)
        X = as_float_array(to_numpy(Y, "Y"), "Y", ndim=(1, 2))
        if X.shape[0] != self.T.d:
            raise ValueError(f"Y must have {self.T.d} rows (the sketch's d), got shape {X.shape}")
        dtype = np.result_type(self.T.dtype, X.dtype)
        out = self.T._apply_transpose_dense(X.reshape(self.T.d, -1).astype(dtype, copy=False))
        out = out.reshape((self.T.n, *X.shape[1:]))
        return to_caller(out, kind) if kind != NUMPY else out

    def _apply_device(self, Y: Any) -> Any:
        """``Sᵀ @ Y`` for a device ``Y``, on its device (the dense kinds)."""
        if Y.ndim not in (1, 2) or Y.shape[0] != self.T.d:
            shape = tuple(Y.shape)
            raise ValueError(f"Y must have {self.T.d} rows (the sketch's d), got shape {shape}")
        xp = namespace_of(Y)
        dtype = np.result_type(self.T.dtype, float_dtype(numpy_dtype(Y.dtype), "Y"))
        matrix = xp.astype(xp.reshape(Y, (self.T.d, -1)), getattr(xp, dtype.name), copy=False)
        out = self.T._apply_transpose_device(matrix)
        return xp.reshape(out, (self.T.n, *Y.shape[1:]))

    def __rmatmul__(self, A: Any) -> Any:
        """``A @ Sᵀ = (S @ Aᵀ)ᵀ`` for ``A`` of shape ``(m, n)`` (dask: a lazy dask array;
        device data: on its device, where ``S @ Aᵀ`` is)."""
        if array_kind(A).via_namespace:
            if A.ndim != 2:
                raise ValueError(f"A must be 2-D for A @ S.T, got shape {tuple(A.shape)}")
            return self.T.apply(A.T).T
        if is_sparse(A) or is_linear_operator(A) or array_kind(A).library == "dask":
            out = self.T.apply(A.T)
            return out.T
        kind = array_kind(A)
        X = as_float_array(to_numpy(A, "A"), "A", ndim=2)
        out = self.T.apply(X.T).T
        return to_caller(out, kind) if kind != NUMPY else out

    def __repr__(self) -> str:
        return f"{self.T!r}.T"


def rows_into_zeros(place: Placement, values: Any, targets: np.ndarray, length: int) -> Any:
    """The ``(length, k)`` array, where ``values`` ``(m, k)`` lives, that is zero but for
    row ``targets[i]``, which is ``values[i]`` (``targets``: distinct host indices).

    One gather from ``values`` with a zero row appended, so that it needs no
    scatter (which the array API lacks); the ``length`` gather indices go over
    as int32 where they fit.
    """
    xp = place.xp
    m, k = values.shape
    index = np.int32 if m < 2**31 - 1 else np.int64
    slot = np.full(length, m, dtype=index)
    slot[targets] = np.arange(m, dtype=index)
    zero = xp.zeros((1, k), dtype=values.dtype, device=place.device)
    return xp.take(xp.concat([values, zero], axis=0), place.put(slot), axis=0)
