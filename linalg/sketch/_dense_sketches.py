"""Dense sketches: Gaussian and Rademacher entries, applied by matrix products."""

from __future__ import annotations

from typing import Any

import numpy as np

from linalg._core.namespace import Placement, numpy_dtype, placement_of
from linalg.sketch._operator import BLOCK_ENTRIES, SketchOperator

__all__ = ["GaussianSketch", "RademacherSketch", "gaussian", "rademacher"]


class _DenseEntries(SketchOperator):
    """Entry ``(i, j)`` is stream element ``j·d + i`` (Sᵀ in C order), divided by √d."""

    _draw_name: str  # "normal" or "rademacher"

    def _columns(self, start: int, stop: int) -> np.ndarray:
        St = np.empty((stop - start, self.d), dtype=self.dtype)
        self._fill(St, start)
        St *= self._scale()
        return St.T

    def _scale(self) -> np.floating:
        return self.dtype.type(1.0 / np.sqrt(self.d))

    def _fill(self, St: np.ndarray, start: int) -> None:
        """Rows ``start : start + len(St)`` of ``Sᵀ`` (global numbering), unscaled."""
        self.rng.fill(St, self._draw_name, offset=start * self.d, engine=self._random_engine())

    # Off the host, the entries are drawn block by block where A lives.
    draws_for_devices = True

    def _apply_dense(self, A: Any) -> Any:
        """``S @ A`` block by block, scaled once at the end: ``A`` in host memory
        (blocks drawn into one reused buffer), or on a device (each block drawn
        there, on the GPU for CuPy and torch CUDA data: see ``Placement.draw``)."""
        place = placement_of(A)
        xp, dtype = place.xp, place.dtype(numpy_dtype(A.dtype))
        out = xp.zeros((self.d, A.shape[1]), dtype=dtype, device=place.device)
        step = max(1, BLOCK_ENTRIES // self.d)
        buffer = np.empty((min(step, self.n), self.d), dtype=self.dtype) if place.on_host else None
        for a in range(0, self.n, step):
            b = min(self.n, a + step)
            St = self._block(place, buffer, self.column_offset + a, b - a)
            out += xp.astype(St.T, dtype, copy=False) @ A[a:b, :]
        out *= float(self._scale())  # a Python float: rounded to A's dtype, as NumPy scalars were
        return out

    def _apply_transpose_device(self, Y: Any) -> Any:
        """``Sᵀ @ Y`` block by block where ``Y`` lives (each block of ``Sᵀ`` drawn
        there, as in :meth:`_apply_dense`), scaled once at the end."""
        place = placement_of(Y)
        xp, dtype = place.xp, place.dtype(numpy_dtype(Y.dtype))
        step = max(1, BLOCK_ENTRIES // self.d)
        parts = []
        for a in range(0, self.n, step):
            rows = min(self.n, a + step) - a
            St = self._block(place, None, self.column_offset + a, rows)
            parts.append(xp.astype(St, dtype, copy=False) @ Y)
        return xp.concat(parts, axis=0) * float(self._scale())

    def dense_on(self, place: Placement) -> Any:
        """S as a dense ``(d, n)`` array where ``place`` keeps its large arrays:
        :meth:`todense` on the host, drawn on the device otherwise (the same numbers)."""
        if place.on_host:
            return self.todense()
        St = self._block(place, None, self.column_offset, self.n)
        return St.T * float(self._scale())

    def _block(self, place: Placement, buffer: np.ndarray | None, start: int, rows: int) -> Any:
        """Rows ``start : start + rows`` of ``Sᵀ`` (unscaled) where ``place`` keeps its
        arrays: filled into the host ``buffer``, or drawn on the device."""
        if buffer is not None:
            self._fill(buffer[:rows], start)
            return buffer[:rows]
        shape = (rows, self.d)
        return place.draw(self.rng, self._draw_name, shape, dtype=self.dtype, offset=start * self.d)


class GaussianSketch(_DenseEntries):
    kind = "gaussian"
    _draw_name = "normal"


class RademacherSketch(_DenseEntries):
    kind = "rademacher"
    _draw_name = "rademacher"


_DENSE_SEE_ALSO = """
    Parameters
    ----------
    d : int
        Sketch size: rows of S.
    n : int
        Rows of the matrices S is applied to.
    rng : None, int, numpy.random.Generator or RandomStream
        The seed (SPEC 7); the same seed gives the same S on every engine.
    dtype : {numpy.float64, numpy.float32}
    engine : {"auto", "reference", "numba"}, optional
        Who draws the entries (the product itself is a BLAS GEMM).
"""


def gaussian(
    d: int, n: int, *, rng: Any = None, dtype: Any = np.float64, engine: str | None = None
) -> GaussianSketch:
    """A Gaussian sketch: ``S[i, j] ~ N(0, 1/d)``, so ``E[SᵀS] = I``.

    The densest and best-understood sketch (``O(d n k)`` to apply to an
    ``(n, k)`` matrix); ``d ≈ r + 10`` rows embed an ``r``-dimensional
    subspace well. Entry ``(i, j)`` is normal number ``j·d + i`` of the
    stream, divided by ``√d``.
    {params}
    Returns
    -------
    GaussianSketch
        A :class:`~linalg.sketch.SketchOperator`.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.sketch import gaussian
    >>> S = gaussian(20, 1000, rng=0)
    >>> A = np.random.default_rng(1).standard_normal((1000, 3))
    >>> (S @ A).shape
    (20, 3)
    >>> bool(np.allclose(S @ A, S.todense() @ A))
    True
    >>> bool(np.allclose(S @ A, S[:, :400] @ A[:400] + S[:, 400:] @ A[400:]))
    True
    """
    return GaussianSketch(d, n, rng=rng, dtype=dtype, engine=engine)


def rademacher(
    d: int, n: int, *, rng: Any = None, dtype: Any = np.float64, engine: str | None = None
) -> RademacherSketch:
    """A Rademacher sketch: ``S[i, j] = ±1/√d`` with equal probability.

    As :func:`gaussian`, with random signs in place of normal numbers (cheaper
    to draw, the same embedding guarantees up to constants). Entry ``(i, j)``
    is Rademacher number ``j·d + i`` of the stream, divided by ``√d``.
    {params}
    Returns
    -------
    RademacherSketch
        A :class:`~linalg.sketch.SketchOperator`.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.sketch import rademacher
    >>> S = rademacher(4, 6, rng=0)
    >>> sorted(set(np.abs(S.todense()).ravel().tolist()))
    [0.5]
    """
    return RademacherSketch(d, n, rng=rng, dtype=dtype, engine=engine)


gaussian.__doc__ = gaussian.__doc__.replace("{params}", _DENSE_SEE_ALSO)
rademacher.__doc__ = rademacher.__doc__.replace("{params}", _DENSE_SEE_ALSO)
