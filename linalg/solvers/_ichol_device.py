"""IC(0) triangular solves on device data, by level scheduling.

A sweep ``y_i = r_i - Σ_j t_ij y_j`` over a strictly triangular ``T`` is
sequential row by row, but the rows fall into *levels*: a row's level is one
more than the highest level among the rows it reads (0 for a row that reads
none), so all the rows of a level depend only on earlier levels and can be
computed together (Anderson & Saad, "Solving sparse triangular linear systems
on parallel computers", 1989; cuSPARSE's triangular solves use the same
analysis). The rows are renumbered level by level, so that every level is a
contiguous slice of the work array, and the entries of each level are stored
as a dense ``(rows, width)`` block of positions and weights, padded with zero
weights to the widest row of the level. A level is then one gather, one
multiply-add reduction and one slice update in the data's own array-API
namespace: a few kernel launches per level on a GPU, and the same code on any
array library that can write a slice in place (not JAX, whose arrays are
immutable).

The schedule is computed once, on the host, when the preconditioner is made.
Everything accumulates in float64, as the host sweeps do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from linalg._core.namespace import ArrayKind, Placement
from linalg.solvers._ichol_reference import TriangularSweeps

__all__ = ["DeviceTriangularSolves"]


@dataclass(frozen=True)
class _Level:
    """Rows ``start:stop`` of the level order, and where their entries are stored."""

    start: int
    stop: int
    offset: int
    width: int


@dataclass(frozen=True)
class _LevelSweep:
    """One sweep over a strictly triangular matrix, laid out by levels.

    ``order`` lists the rows level by level (host, int64). ``positions`` and
    ``weights`` (device) hold, for every level after the first, a
    ``(rows, width)`` block: the level-order positions of the entries each row
    reads, and the entries, zero-padded.
    """

    order: np.ndarray
    levels: tuple[_Level, ...]
    positions: Any
    weights: Any

    def run(self, xp: Any, Y: Any) -> None:
        """Finish the sweep on ``Y`` (float64, ``(n, k)``, level order), in place:
        on entry ``Y`` holds the right-hand sides, on return the solution."""
        k = Y.shape[1]
        for level in self.levels:
            rows, end = (
                level.stop - level.start,
                level.offset + (level.stop - level.start) * level.width,
            )
            read = xp.take(Y, self.positions[level.offset : end], axis=0)
            products = xp.reshape(read, (rows, level.width, k)) * xp.reshape(
                self.weights[level.offset : end], (rows, level.width, 1)
            )
            Y[level.start : level.stop, :] = Y[level.start : level.stop, :] - xp.sum(
                products, axis=1
            )


def _level_sweep(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, place: Placement
) -> _LevelSweep:
    """Lay out the sweep over the strictly triangular CSR matrix ``T`` by levels."""
    n = indptr.size - 1
    indptr, indices = indptr.astype(np.int64), indices.astype(np.int64)
    levels = _levels_of(indptr, indices, n)
    order = np.concatenate(levels)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    sizes = np.array([level.size for level in levels])
    level_of_position = np.repeat(np.arange(len(levels)), sizes)
    row_nnz = np.diff(indptr)
    widths = np.zeros(len(levels), dtype=np.int64)
    np.maximum.at(widths, level_of_position, row_nnz[order])
    offsets = np.concatenate([[0], np.cumsum(sizes * widths)])
    starts = np.concatenate([[0], np.cumsum(sizes)])
    rank_in_level = np.arange(n) - starts[level_of_position]
    first_slot = offsets[level_of_position] + rank_in_level * widths[level_of_position]
    entry_row = np.repeat(np.arange(n), row_nnz)
    slots = first_slot[position[entry_row]] + (np.arange(indices.size) - indptr[entry_row])
    positions = np.zeros(offsets[-1], dtype=np.int64)
    weights = np.zeros(offsets[-1], dtype=np.float64)
    positions[slots] = position[indices]
    weights[slots] = data
    schedule = tuple(
        _Level(int(starts[j]), int(starts[j + 1]), int(offsets[j]), int(widths[j]))
        for j in range(len(levels))
        if widths[j] > 0
    )
    return _LevelSweep(order, schedule, place.put(positions), place.put(weights))


def _levels_of(indptr: np.ndarray, indices: np.ndarray, n: int) -> list[np.ndarray]:
    """The rows of each level, in increasing row order (Kahn's topological sort,
    one frontier at a time: O(nnz log nnz) in all, a few NumPy calls per level)."""
    waiting = np.diff(indptr)  # how many rows each row still reads
    readers = sp.csr_array(
        (np.ones(indices.size, dtype=np.int8), indices, indptr), shape=(n, n)
    ).T.tocsr()  # row j of readers: the rows that read row j
    frontier = np.flatnonzero(waiting == 0)
    levels = []
    while frontier.size:
        levels.append(frontier)
        lo, hi = readers.indptr[frontier], readers.indptr[frontier + 1]
        counts = hi - lo
        reached = readers.indices[
            np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        ]
        np.subtract.at(waiting, reached, 1)
        candidates = np.unique(reached)
        frontier = candidates[waiting[candidates] == 0]
    return levels


class DeviceTriangularSolves:
    """``Z = (L Lᵀ)⁻¹ R`` on device data: a forward sweep with ``D⁻¹ L`` and a
    backward sweep with ``D⁻¹ Lᵀ`` (see :class:`TriangularSweeps`), each by
    levels, in the namespace of the arrays it was laid out for.

    Parameters
    ----------
    sweeps : TriangularSweeps
        The host layout of ``L``.
    place : Placement
        Where the solves run (not the host).
    kind : ArrayKind
        The kind of array they take and return.
    """

    def __init__(self, sweeps: TriangularSweeps, place: Placement, kind: ArrayKind) -> None:
        self.kind = kind
        self._xp = place.xp
        forward = _level_sweep(*sweeps[0:3], place)
        backward = _level_sweep(*sweeps[3:6], place)
        inverse = sweeps.inverse_diagonal
        after_forward = np.empty_like(forward.order)
        after_forward[forward.order] = np.arange(forward.order.size)
        after_backward = np.empty_like(backward.order)
        after_backward[backward.order] = np.arange(backward.order.size)
        self._forward, self._backward = forward, backward
        self._gather_in = place.put(forward.order)
        self._scale_in = place.put(inverse[forward.order][:, None])
        self._between = place.put(after_forward[backward.order])
        self._scale_between = place.put(inverse[backward.order][:, None])
        self._gather_out = place.put(after_backward)

    def __call__(self, R: Any, dtype: Any) -> Any:
        """``Z`` with ``L Lᵀ Z = R`` for ``R`` of shape ``(n,)`` or ``(n, k)``, in ``dtype``."""
        xp = self._xp
        columns = R if R.ndim == 2 else xp.reshape(R, (-1, 1))
        Y = xp.take(xp.astype(columns, xp.float64), self._gather_in, axis=0) * self._scale_in
        self._forward.run(xp, Y)
        Y = xp.take(Y, self._between, axis=0) * self._scale_between
        self._backward.run(xp, Y)
        Z = xp.astype(xp.take(Y, self._gather_out, axis=0), dtype)
        return Z if R.ndim == 2 else xp.reshape(Z, (-1,))
