"""The subsampled randomized trigonometric transform: ``S = √(N/d) R F D``.

``D`` flips the sign of each row of ``A`` at random, ``F`` is an orthonormal
transform that spreads every row's mass over all coordinates (the DCT-II, or
the normalized Walsh–Hadamard matrix on ``A`` zero-padded to a power of two),
and ``R`` keeps ``d`` of its ``N`` rows, chosen uniformly without replacement.

Applied to a dense ``(n, k)`` matrix, only the ``d`` kept rows of ``F D A``
are computed, by splitting each index into a high and a low part,
``j = j_hi Q + j_lo`` with ``N = P Q``: a fast transform of length ``P`` over
``j_hi`` (all rows), then, for each kept row, a dot product of length ``Q``
over ``j_lo``. That costs ``O(N k (log P + d / P))`` instead of the
``O(N k log N)`` of the full transform, and runs chunk by chunk over ``j_lo``
so that the working set stays small. The Hadamard product is an engine
operation (``"sketch.srht_hadamard"``): NumPy here, one fused kernel in
:mod:`linalg.sketch._srht_numba`.

On device data (CuPy, GPU tensors, other array-API libraries) the signs are
drawn where the data lives (on the GPU for CuPy and torch CUDA data, with the
host's numbers), the ``d`` kept rows on the host and moved over; the transform
runs on the device through the data's namespace on the whole zero-padded
``(N, k)`` block, a few columns at a time: ``log₂ N`` passes
of reshapes and adds (Walsh–Hadamard), or one real FFT of length ``2N`` (DCT),
then a gather of the ``d`` kept rows. That is ``O(N k log N)`` work and about
three ``(N, w)`` temporaries for a block of ``w`` columns, more arithmetic than
the split above but a handful of large, regular array operations, which is what
a GPU runs well.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.fft

from linalg._core.engines import register
from linalg._core.namespace import numpy_dtype, placement_of
from linalg._core.validate import check_int
from linalg.sketch._operator import SketchOperator, rows_into_zeros

__all__ = ["SRHTSketch", "srht"]

register("sketch.srht_hadamard", "reference", "linalg.sketch._srht:hadamard_apply")
register("sketch.srht_hadamard", "numba", "linalg.sketch._srht_numba:hadamard_apply")

_TRANSFORMS = ("dct", "hadamard")
# Entries of the (P, L, k) buffer of one chunk of the fast path.
_CHUNK_ENTRIES = 1 << 21
# The explicit product costs 2 d flops per entry of the block of A; the fast
# path costs about this many per entry of the padded (N, k) matrix.
_FAST_COST = 48.0
_WORKERS = -1  # scipy.fft threads: all cores
# Entries of the zero-padded (N, w) block transformed at a time on a device.
_DEVICE_BLOCK_ENTRIES = 1 << 24


class SRHTSketch(SketchOperator):
    """``S = √(N/d) R F D``: see :func:`srht`.

    Attributes
    ----------
    transform : {"dct", "hadamard"}
    n_total : int
        Columns of the whole sketch (``n`` of a block ``S[:, a:b]`` is ``b - a``).
    N : int
        Length of the transform: ``n_total`` for the DCT, the next power of
        two for the Hadamard transform.
    rows : ndarray of int64, shape (d,)
        The kept rows of ``F``, increasing.
    """

    kind = "srht"

    def __init__(
        self,
        d: int,
        n: int,
        *,
        transform: str = "hadamard",
        rng: Any = None,
        dtype: Any = np.float64,
        engine: str | None = None,
    ) -> None:
        super().__init__(d, n, rng=rng, dtype=dtype, engine=engine)
        if transform not in _TRANSFORMS:
            raise ValueError(f"transform must be 'dct' or 'hadamard', got {transform!r}")
        self.transform = transform
        self.n_total = self.n
        self.N = self.n if transform == "dct" else 1 << (self.n - 1).bit_length()
        if self.d > self.N:
            raise ValueError(
                f"d must be <= {self.N} (the length of the {transform} transform), got {self.d}"
            )
        uniforms = self.rng.spawn(1)[0].uniform(self.d, engine=self._random_engine())
        self.rows = _floyd_sample(self.N, uniforms)

    # -- entries --------------------------------------------------------------

    def _signs(self, start: int, stop: int) -> np.ndarray:
        """Signs of columns ``start:stop``: Rademacher elements ``start:stop`` of the stream."""
        return self.rng.rademacher(stop - start, offset=start, engine=self._random_engine())

    def _row_weights(self) -> np.ndarray:
        """``√(N/d)`` times the normalization of each kept row of ``F``."""
        if self.transform == "hadamard":
            return np.full(self.d, 1.0 / np.sqrt(self.d))
        weights = np.full(self.d, np.sqrt(2.0 / self.d))
        weights[self.rows == 0] = np.sqrt(1.0 / self.d)
        return weights

    def _columns(self, start: int, stop: int) -> np.ndarray:
        columns = np.arange(start, stop, dtype=np.int64)
        block = _trig(self.transform, self.N, self.rows[:, None], columns[None, :])
        block *= self._row_weights()[:, None]
        block *= self._signs(start, stop)
        return block.astype(self.dtype, copy=False)

    # -- fast products ----------------------------------------------------------

    def _fast_pays(self) -> bool:
        return 2.0 * self.d * self.n > _FAST_COST * self.N

    def _apply_dense(self, A: np.ndarray) -> np.ndarray:
        if not self._fast_pays():
            return super()._apply_dense(A)
        start = self.column_offset
        signs = self._signs(start, start + self.n).astype(A.dtype)
        if self.transform == "hadamard":
            apply = self._kernels("sketch.srht_hadamard", A.dtype)
            return apply(A, signs, start, self.N, self.rows, self._row_weights())
        return dct_apply(A, signs, start, self.N, self.rows, self._row_weights())

    # Device data: signs drawn there, rows here, the transform on the device.
    draws_for_devices = True

    def _apply_drawn(self, A: Any) -> Any:
        """``S @ A`` for a device ``(n, k)`` array: the transform of the zero-padded
        ``D A`` on its device, by blocks of columns, then the kept rows (module notes)."""
        place = placement_of(A)
        xp, dtype = place.xp, numpy_dtype(A.dtype)
        start = self.column_offset
        signs = place.draw(self.rng, "rademacher", (self.n,), dtype=dtype, offset=start)
        rows = place.put(self.rows)
        weights = place.put(self._row_weights().astype(dtype))
        if self.transform == "dct":  # cos(π r (2j+1) / 2N) = Re(e^{-iπr/2N} e^{-iπrj/N})
            angle = np.pi * self.rows / (2.0 * self.N)
            twiddles = [place.put(f(angle).astype(dtype))[:, None] for f in (np.cos, np.sin)]
        step = max(1, _DEVICE_BLOCK_ENTRIES // self.N)
        blocks = []
        k = A.shape[1]
        for a in range(0, k, step):
            signed = signs[:, None] * A[:, a : min(k, a + step)]
            width = signed.shape[1]
            before = xp.zeros((start, width), dtype=signed.dtype, device=place.device)
            if self.transform == "hadamard":
                after = xp.zeros(
                    (self.N - start - self.n, width), dtype=signed.dtype, device=place.device
                )
                full = fwht(xp, xp.concat([before, signed, after], axis=0))
                blocks.append(xp.take(full, rows, axis=0))
            else:
                spectrum = xp.fft.rfft(xp.concat([before, signed], axis=0), n=2 * self.N, axis=0)
                kept = xp.take(spectrum, rows, axis=0)
                blocks.append(twiddles[0] * xp.real(kept) + twiddles[1] * xp.imag(kept))
        return xp.concat(blocks, axis=1) * weights[:, None]

    def _apply_transpose_dense(self, Y: np.ndarray) -> np.ndarray:
        if not self._fast_pays():
            return super()._apply_transpose_dense(Y)
        full = np.zeros((self.N, Y.shape[1]), dtype=Y.dtype)
        if self.transform == "hadamard":
            full[self.rows] = Y * self._row_weights().astype(Y.dtype)[:, None]
            _fwht(full)
        else:
            full[self.rows] = Y * Y.dtype.type(np.sqrt(self.N / self.d))
            full = scipy.fft.idct(full, type=2, norm="ortho", axis=0, workers=_WORKERS)
        start = self.column_offset
        out = full[start : start + self.n]
        out *= self._signs(start, start + self.n).astype(Y.dtype)[:, None]
        return out

    def _apply_transpose_device(self, Y: Any) -> Any:
        """``Sᵀ @ Y`` for a device ``(d, k)`` array, by blocks of columns: the weighted
        rows of ``Y`` placed at the kept rows of a zero ``(N, k)`` block, its
        Walsh–Hadamard transform (self-adjoint) or, for the DCT, one inverse rFFT
        of length ``2N``, then this block's rows times the signs."""
        place = placement_of(Y)
        xp, dtype = place.xp, numpy_dtype(Y.dtype)
        start, N = self.column_offset, self.N
        signs = place.draw(self.rng, "rademacher", (self.n,), dtype=dtype, offset=start)
        weights = self._row_weights().astype(dtype)
        if self.transform == "dct":
            # Σ_r y_r cos(π r (2j+1) / 2N) = 2N irfft(Z)_j with Z_r = y_r e^{iπr/2N},
            # halved for r > 0 (irfft adds each Z_r and its conjugate)
            twiddles = np.exp(0.5j * np.pi * self.rows / N) * np.where(self.rows, N, 2 * N)
            weights = (self._row_weights() * twiddles).astype(np.result_type(dtype, np.complex64))
            complex_dtype = place.dtype(weights.dtype)
        weighted = place.put(weights)[:, None]
        step = max(1, _DEVICE_BLOCK_ENTRIES // N)
        blocks = []
        for a in range(0, Y.shape[1], step):
            block = Y[:, a : min(Y.shape[1], a + step)]
            if self.transform == "hadamard":
                full = fwht(xp, rows_into_zeros(place, block * weighted, self.rows, N))
            else:
                spectrum = xp.astype(block, complex_dtype) * weighted
                full = xp.fft.irfft(
                    rows_into_zeros(place, spectrum, self.rows, N + 1), n=2 * N, axis=0
                )
            blocks.append(full[start : start + self.n, :])
        return xp.concat(blocks, axis=1) * signs[:, None]


def _chunks(
    A: np.ndarray, signs: np.ndarray, start: int, P: int, Q: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(j_lo values, (P, L k) block of D A)`` for chunks of ``L`` values of ``j_lo``.

    Row ``p`` of a block holds rows ``p Q + j_lo - start`` of ``A`` side by
    side, times their signs; rows outside ``A`` are zero.
    """
    n, k = A.shape
    step = max(1, min(Q, _CHUNK_ENTRIES // (P * k)))
    for l0 in range(0, Q, step):
        lows = np.arange(l0, min(Q, l0 + step), dtype=np.int64)
        rows = np.arange(P)[:, None] * Q + lows[None, :] - start
        inside = (rows >= 0) & (rows < n)
        rows = np.where(inside, rows, 0)
        block = A[rows.ravel()]
        block *= (signs[rows] * inside).reshape(-1, 1)
        yield lows, block.reshape(P, lows.size * k)


def _groups(group: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """``order`` sorting ``group`` (stably), the slices of ``order`` per group, their groups."""
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    slices = np.split(np.arange(group.size), bounds)
    return order, slices, group[order][[s[0] for s in slices]]


def _unsorted(out: np.ndarray, order: np.ndarray) -> np.ndarray:
    result = np.empty_like(out)
    result[order] = out
    return result


def hadamard_apply(
    A: np.ndarray,
    signs: np.ndarray,
    start: int,
    N: int,
    rows: np.ndarray,
    weights: np.ndarray,
) -> np.ndarray:
    """Rows ``rows`` of ``H_N D A``, row ``i`` times ``weights[i]`` (NumPy reference).

    ``A`` holds rows ``start, ..., start + n - 1`` of an ``(N, k)`` matrix that
    is zero elsewhere, ``signs`` the diagonal of ``D`` on them. ``H_N`` is
    split as ``H_P ⊗ H_Q`` (Sylvester ordering): a fast transform over
    ``j_hi`` per chunk, then a product with the kept rows' ``H_Q`` entries.
    """
    P = _split("hadamard", N, rows.size)
    Q = N // P
    high, low = np.divmod(rows, Q)
    order, slices, heads = _groups(high)
    weights = weights[order]
    out = np.zeros((rows.size, A.shape[1]), dtype=A.dtype)
    for lows, block in _chunks(A, signs, start, P, Q):
        _fwht(block)
        W = block.reshape(P, lows.size, -1)
        coef = (_trig("hadamard", 1, low[order][:, None], lows[None, :]) * weights[:, None]).astype(
            A.dtype
        )
        for s, h in zip(slices, heads, strict=True):
            out[s] += coef[s] @ W[h]
    return _unsorted(out, order)


def dct_apply(
    A: np.ndarray,
    signs: np.ndarray,
    start: int,
    N: int,
    rows: np.ndarray,
    weights: np.ndarray,
) -> np.ndarray:
    """Rows ``rows`` of ``C_N D A`` (unnormalized DCT-II), row ``i`` times ``weights[i]``.

    As :func:`hadamard_apply`; the transform over ``j_hi`` is a real FFT of
    length ``2P``, and ``cos(a + b)`` splits each kept row into a cosine and a
    sine combination over ``j_lo``.
    """
    P = _split("dct", N, rows.size)
    residue, sign = _residue(rows, P)
    order, slices, heads = _groups(residue)
    weights, sign = weights[order], sign[order]
    out = np.zeros((rows.size, A.shape[1]), dtype=A.dtype)
    for lows, block in _chunks(A, signs, start, P, N // P):
        Z = scipy.fft.rfft(block, n=2 * P, axis=0, workers=_WORKERS)
        Z = Z.reshape(P + 1, lows.size, -1)
        phase = (rows[order][:, None] * (2 * lows[None, :] + 1)) % (4 * N)
        angle = np.pi * phase / (2.0 * N)
        cos = (np.cos(angle) * weights[:, None]).astype(A.dtype)
        sin = (np.sin(angle) * (weights * sign)[:, None]).astype(A.dtype)
        for s, r in zip(slices, heads, strict=True):
            out[s] += cos[s] @ Z[r].real + sin[s] @ Z[r].imag
    return _unsorted(out, order)


def _trig(transform: str, N: int, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Unnormalized entries of ``F``: ``(-1)^popcount(i & j)`` or ``cos(π i (2j + 1) / 2N)``.

    The DCT angle is reduced exactly in integers (``i (2j + 1) mod 4N``) first.
    """
    if transform == "hadamard":
        return 1.0 - 2.0 * (np.bitwise_count(rows & columns) & 1)
    phase = (rows * (2 * columns + 1)) % (4 * N)
    return np.cos(np.pi * phase / (2.0 * N))


def _residue(rows: np.ndarray, P: int) -> tuple[np.ndarray, np.ndarray]:
    """``r`` in ``[0, P]`` and ``±1`` with ``cos(π i t / P) = cos(π r t / P)`` and
    ``sin(π i t / P) = ± sin(π r t / P)`` for every integer ``t``."""
    r = rows % (2 * P)
    upper = r > P
    return np.where(upper, 2 * P - r, r), np.where(upper, -1.0, 1.0)


def _split(transform: str, N: int, d: int) -> int:
    """``P``, the length of the fast transform over the high index (``P`` divides ``N``)."""
    target = max(1, d // 4)
    if transform == "hadamard":
        return min(N, 1 << max(0, target.bit_length() - 1))
    divisors = [p for p in range(1, min(N, 4 * target) + 1) if N % p == 0]
    return min(divisors, key=lambda p: abs(np.log(p / target)))


def _fwht(X: np.ndarray) -> None:
    """In-place unnormalized Walsh–Hadamard transform of ``X`` along axis 0 (a power of two)."""
    P = X.shape[0]
    flat = X.reshape(P, -1)
    h = 1
    while h < P:
        pairs = flat.reshape(P // (2 * h), 2, h, -1)
        a, b = pairs[:, 0], pairs[:, 1]
        difference = a - b
        a += b
        b[...] = difference
        h *= 2


def fwht(xp: Any, X: Any) -> Any:
    """The unnormalized Walsh–Hadamard transform of ``X`` along axis 0 (a power of
    two), in ``X``'s namespace: ``log₂ N`` passes, each a reshape, an add and a subtract
    (the butterflies of :func:`_fwht`, without writing into ``X``)."""
    N, m = X.shape
    h = 1
    while h < N:
        pairs = xp.reshape(X, (N // (2 * h), 2, h, m))
        a, b = pairs[:, 0, ...], pairs[:, 1, ...]
        X = xp.reshape(xp.stack([a + b, a - b], axis=1), (N, m))
        h *= 2
    return X


def _floyd_sample(N: int, uniforms: np.ndarray) -> np.ndarray:
    """``len(uniforms)`` distinct integers of ``[0, N)``, uniformly (Floyd's algorithm), sorted.

    Step ``t`` (for ``j = N - d + t``) picks ``floor(u_t (j + 1))`` in ``[0, j]``
    and keeps ``j`` instead if that one was already taken.
    """
    d = uniforms.size
    chosen: set[int] = set()
    for t, j in enumerate(range(N - d, N)):
        pick = min(int(uniforms[t] * (j + 1)), j)
        chosen.add(j if pick in chosen else pick)
    return np.sort(np.fromiter(chosen, dtype=np.int64, count=d))


_SRHT_PARAMETERS = """
    Parameters
    ----------
    d : int
        Sketch size: rows of S, at most ``N``.
    n : int
        Rows of the matrices S is applied to.
    transform : {"hadamard", "dct"}, default "hadamard"
        ``"hadamard"``: the normalized Walsh–Hadamard matrix of length ``N``,
        the next power of two, applied to ``A`` padded with zero rows (up to
        twice the work when ``n`` is just above a power of two).
        ``"dct"``: the orthonormal DCT-II of length ``N = n`` (any ``n``;
        SciPy's FFT, several times slower than the fused Hadamard kernel).
    rng : None, int, numpy.random.Generator or RandomStream
        The seed (SPEC 7); the same seed gives the same S on every engine.
    dtype : {numpy.float64, numpy.float32}
    engine : {"auto", "reference", "numba"}, optional
        Who draws the random numbers and, for ``"hadamard"``, computes
        ``S @ A``: ``"numba"`` with one fused multithreaded kernel (one read
        of ``A``), the default when Numba is installed. The DCT's transform
        is SciPy's FFT on every engine.
"""


def srht(
    d: int,
    n: int,
    *,
    transform: str = "hadamard",
    rng: Any = None,
    dtype: Any = np.float64,
    engine: str | None = None,
) -> SRHTSketch:
    """A subsampled randomized trigonometric transform: ``S = √(N/d) R F D``.

    ``D = diag(s)`` holds random signs, ``F`` is an orthonormal ``N × N``
    transform and ``R`` keeps ``d`` of its rows, distinct and uniformly
    chosen; ``E[SᵀS] = I``. Applied to a dense ``(n, k)`` matrix it costs
    ``O(N k (log P + d / P))`` with ``P ≈ d / 4`` (see the module notes), about
    a constant number of passes over ``A``; ``d ≈ (r + log n) log r`` rows
    embed an ``r``-dimensional subspace. ``S @ A`` of device data (a CuPy
    array, a GPU tensor, another array-API array) is computed on its device:
    the signs and rows come from the host (the same numbers), the full
    transform runs there in ``O(N k log N)``, by blocks of columns.
    {params}
    Returns
    -------
    SRHTSketch
        A :class:`~linalg.sketch.SketchOperator`.

    Raises
    ------
    ValueError
        If ``d`` is not in ``[1, N]`` or ``transform`` is unknown.

    Notes
    -----
    Entry ``(i, j)`` is ``√(N/d) F[rows[i], j] s_j``: the sign ``s_j`` is
    Rademacher element ``j`` of ``rng``; ``rows`` comes from Floyd's
    algorithm on uniform elements ``0, ..., d - 1`` of the first child stream
    ``rng.spawn(1)[0]``. ``F[i, j]`` is ``c_i √(2/N) cos(π i (2j + 1) / 2N)``
    (``c_0 = 1/√2``, else 1) or ``(-1)^popcount(i & j) / √N``.

    References
    ----------
    N. Ailon and B. Chazelle, "The fast Johnson–Lindenstrauss transform and
    approximate nearest neighbors", SIAM J. Comput. 39 (2009).

    J. A. Tropp, "Improved analysis of the subsampled randomized Hadamard
    transform", Adv. Adapt. Data Anal. 3 (2011).

    R. W. Floyd and J. Bentley, "Programming pearls: a sample of brilliance",
    Commun. ACM 30 (1987).

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.sketch import srht
    >>> S = srht(40, 1000, rng=0)
    >>> A = np.random.default_rng(1).standard_normal((1000, 3))
    >>> (S @ A).shape
    (40, 3)
    >>> bool(np.allclose(S @ A, S.todense() @ A))
    True
    >>> bool(np.allclose(S @ A, S[:, :400] @ A[:400] + S[:, 400:] @ A[400:]))
    True
    >>> H = srht(8, 6, transform="hadamard", rng=0)
    >>> H.N, sorted(set(np.abs(H.todense()).ravel().round(4).tolist()))
    (8, [0.3536])
    """
    d = check_int(d, "d", low=1)
    return SRHTSketch(d, n, transform=transform, rng=rng, dtype=dtype, engine=engine)


srht.__doc__ = srht.__doc__.replace("{params}", _SRHT_PARAMETERS)
