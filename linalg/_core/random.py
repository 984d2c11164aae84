"""Counter-based random streams: same seed, same numbers on every engine.

Element ``i`` of a stream is a pure function of ``(seed, stream, i)``: the
Philox4x32-10 block cipher (Salmon et al., "Parallel random numbers: as easy
as 1, 2, 3", SC 2011) encrypts the counter ``(i_lo, i_hi, stream_lo,
stream_hi)`` under the key ``(seed_lo, seed_hi)``, and the four 32-bit output
words are turned into one uniform, normal or Rademacher number. A draw never
depends on how the work is split into blocks, and the NumPy reference, the
Numba kernels (:mod:`linalg._core._numba_random`) and the CUDA engines
(``cuda/random.cu`` through CuPy, :mod:`linalg._core._cupy_random`;
numba-cuda, :mod:`linalg._core._cuda_random`) give the same bits.

Bit-identity rests on doing the same IEEE operations in the same order on
both engines. The arithmetic helpers below are therefore written once, for
NumPy arrays and scalars alike, and the Numba engine compiles these very
functions. Only ``+ - * /``, ``sqrt`` and ``frexp`` are used: they are
correctly rounded (or exact) everywhere, while library ``log`` functions may
differ in the last bit, so :func:`_log` is implemented here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linalg._core.validate import check_int

__all__ = ["RandomStream", "as_random_stream"]

_UINT64_LIMIT = 2**64
_CHUNK = 2**20  # elements per block of the NumPy path
_DEVICE_ENGINES = ("cupy", "numba-cuda")
_ENGINES = ("reference", "numba", *_DEVICE_ENGINES)

# Philox4x32-10; every integer lives in a uint64 holding a 32-bit value, so a
# 32x32-bit product is exact and its high and low words are a shift and a mask.
_ROUNDS = 10
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)

# Uniform conversions: midpoints of 2**52 (float64) or 2**23 (float32) equal
# bins of (0, 1). Both are exact in the target precision and never 0 or 1.
_SHIFT6 = np.uint64(6)
_SHIFT9 = np.uint64(9)
_TWO26 = np.uint64(2**26)
_ONE = np.uint64(1)

# log(1 + f) = 2 atanh(s), s = f / (2 + f); |s| <= 0.1716 after range reduction.
# 2 atanh(s) = 2s + s * R with R = sum_k 2 s**(2k) / (2k + 1), k = 1..10, which is
# accurate to far below an ulp. Coefficients of R / s**2 in s**2, highest first.
_ATANH_SERIES = tuple(2.0 / k for k in range(21, 2, -2))
_SQRT_HALF = 0.7071067811865476
_LN2_HI = 6.93147180369123816490e-01  # 0x3FE62E42FEE00000: e * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10  # log(2) - _LN2_HI

# Wichura, "Algorithm AS 241: The percentage points of the normal distribution",
# Applied Statistics 37 (1988): PPND16, coefficients highest degree first.
_CENTRAL_LIMIT = 0.425
_CENTRAL_R = 0.180625
_CENTRAL_NUM = (
    2509.0809287301226727,
    33430.575583588128105,
    67265.770927008700853,
    45921.953931549871457,
    13731.693765509461125,
    1971.5909503065514427,
    133.14166789178437745,
    3.387132872796366608,
)
_CENTRAL_DEN = (
    5226.495278852545925,
    28729.085735721942674,
    39307.89580009271061,
    21213.794301586595867,
    5394.1960214247511077,
    687.1870074920579083,
    42.313330701600911252,
    1.0,
)
_NEAR_LIMIT = 5.0
_NEAR_SHIFT = 1.6
_NEAR_NUM = (
    7.7454501427834140764e-4,
    0.0227238449892691845833,
    0.24178072517745061177,
    1.27045825245236838258,
    3.64784832476320460504,
    5.7694972214606914055,
    4.6303378461565452959,
    1.42343711074968357734,
)
_NEAR_DEN = (
    1.05075007164441684324e-9,
    5.475938084995344946e-4,
    0.0151986665636164571966,
    0.14810397642748007459,
    0.68976733498510000455,
    1.6763848301838038494,
    2.05319162663775882187,
    1.0,
)
_FAR_SHIFT = 5.0
_FAR_NUM = (
    2.01033439929228813265e-7,
    2.71155556874348757815e-5,
    0.0012426609473880784386,
    0.026532189526576123093,
    0.29656057182850489123,
    1.7848265399172913358,
    5.4637849111641143699,
    6.6579046435011037772,
)
_FAR_DEN = (
    2.04426310338993978564e-15,
    1.4215117583164458887e-7,
    1.8463183175100546818e-5,
    7.868691311456132591e-4,
    0.0148753612908506148525,
    0.13692988092273580531,
    0.59983220655588793769,
    1.0,
)


# --- arithmetic shared by both engines (NumPy arrays or Numba scalars) --------


def _philox4x32_10(c0: Any, c1: Any, c2: Any, c3: Any, k0: Any, k1: Any) -> tuple:
    """Philox4x32-10 of counter ``(c0, c1, c2, c3)`` under key ``(k0, k1)``.

    All arguments are uint64 values below 2**32; so are the four words returned.
    """
    for _ in range(_ROUNDS):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (
            (p1 >> _SHIFT32) ^ c1 ^ k0,
            p1 & _MASK32,
            (p0 >> _SHIFT32) ^ c3 ^ k1,
            p0 & _MASK32,
        )
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return c0, c1, c2, c3


def _uniform_f64(words: tuple) -> Any:
    """A float64 in (0, 1) from 52 bits of words 0 and 1: (k + 1/2) 2**-52."""
    bits = (words[0] >> _SHIFT6) * _TWO26 + (words[1] >> _SHIFT6)
    return (bits + 0.5) * 2.0**-52


def _uniform_f32(words: tuple) -> Any:
    """A float32-exact value in (0, 1) from 23 bits of word 0: (k + 1/2) 2**-23."""
    return ((words[0] >> _SHIFT9) + 0.5) * 2.0**-23


def _rademacher(words: tuple) -> Any:
    """+1.0 where the lowest bit of word 0 is 0, else -1.0."""
    return 1.0 - 2.0 * (words[0] & _ONE)


def _horner(x: Any, coefficients: tuple) -> Any:
    """The polynomial with ``coefficients`` (highest degree first) at ``x``."""
    value = coefficients[0]
    for i in range(1, len(coefficients)):
        value = value * x + coefficients[i]
    return value


def _log_reduced(m: Any, e: Any) -> Any:
    """log(m * 2**e) for m in [sqrt(1/2), sqrt(2)) and an integral float ``e``.

    With f = m - 1 (exact) and s = f / (2 + f), log(m) = 2s + s R(s**2) and
    2s = f - f**2/2 + s f**2/2, so the large terms f and f**2/2 are kept apart
    from the rounding errors of the series.
    """
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    series = z * _horner(z, _ATANH_SERIES)
    half_f2 = 0.5 * f * f
    return e * _LN2_HI - ((half_f2 - (s * (half_f2 + series) + e * _LN2_LO)) - f)


def _ppnd_central(q: Any) -> Any:
    """AS241 for |p - 1/2| <= 0.425, with q = p - 1/2."""
    r = _CENTRAL_R - q * q
    return q * _horner(r, _CENTRAL_NUM) / _horner(r, _CENTRAL_DEN)


def _ppnd_tail(r: Any, shift: float, numerator: tuple, denominator: tuple) -> Any:
    """AS241 in a tail, with r = sqrt(-log(min(p, 1 - p))); positive."""
    r = r - shift
    return _horner(r, numerator) / _horner(r, denominator)


# --- the NumPy reference -------------------------------------------------------


def _log(x: np.ndarray) -> np.ndarray:
    """Natural logarithm of positive finite ``x``, the same bits as the Numba engine."""
    m, e = np.frexp(x)
    low = m < _SQRT_HALF
    m = np.where(low, 2.0 * m, m)
    return _log_reduced(m, (e - low).astype(np.float64))


def _ppnd(p: np.ndarray) -> np.ndarray:
    """Inverse standard normal CDF of ``p`` in (0, 1), Wichura's AS241 (PPND16)."""
    q = p - 0.5
    out = np.empty_like(p)
    central = np.abs(q) <= _CENTRAL_LIMIT
    out[central] = _ppnd_central(q[central])
    tail = ~central
    r = np.where(q[tail] < 0.0, p[tail], 1.0 - p[tail])
    r = np.sqrt(-_log(r))
    near = r <= _NEAR_LIMIT
    value = np.empty_like(r)
    value[near] = _ppnd_tail(r[near], _NEAR_SHIFT, _NEAR_NUM, _NEAR_DEN)
    value[~near] = _ppnd_tail(r[~near], _FAR_SHIFT, _FAR_NUM, _FAR_DEN)
    out[tail] = np.where(q[tail] < 0.0, -value, value)
    return out


def _normal(words: tuple) -> np.ndarray:
    return _ppnd(_uniform_f64(words))


_REFERENCE_TRANSFORMS = {
    "uniform64": _uniform_f64,
    "uniform32": _uniform_f32,
    "normal": _normal,
    "rademacher": _rademacher,
}


def _fill_reference(
    transform: str, out: np.ndarray, key: tuple, stream: tuple, offset: int
) -> None:
    """Write elements ``offset, offset + 1, ...`` of a stream into the flat ``out``."""
    function = _REFERENCE_TRANSFORMS[transform]
    for start in range(0, out.size, _CHUNK):
        stop = min(start + _CHUNK, out.size)
        index = np.uint64(offset + start) + np.arange(stop - start, dtype=np.uint64)
        words = _philox4x32_10(index & _MASK32, index >> _SHIFT32, *stream, *key)
        out[start:stop] = function(words)


def _fill_numba(transform: str, out: np.ndarray, key: tuple, stream: tuple, offset: int) -> None:
    try:
        from linalg._core import _numba_random
    except ImportError as exc:
        raise ImportError(
            "engine='numba' needs Numba: pip install 'linalg-backend[numba]'"
        ) from exc
    _numba_random.fill(transform, out, key, stream, np.uint64(offset))


_FILLERS = {"reference": _fill_reference, "numba": _fill_numba}


def _device_engine(engine: str) -> Any:
    """The module of a device engine (``empty``, ``flat_view``, ``fill``), once
    :func:`~linalg._core.engines.require_usable` has said it can run here."""
    from linalg._core.engines import require_usable

    require_usable(engine)
    if engine == "cupy":
        from linalg._core import _cupy_random as module
    else:
        from linalg._core import _cuda_random as module
    return module


# --- validation ------------------------------------------------------------------


def _check_uint64(value: Any, name: str) -> int:
    value = check_int(value, name, low=0)
    if value >= _UINT64_LIMIT:
        raise ValueError(f"{name} must be < 2**64, got {value}")
    return value


def _check_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, tuple | list):
        return tuple(check_int(n, "shape", low=0) for n in shape)
    return (check_int(shape, "shape", low=0),)


def _check_dtype(dtype: Any) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _check_engine(engine: Any) -> str:
    if not isinstance(engine, str) or engine not in _ENGINES:
        raise ValueError(
            f"engine must be 'reference', 'numba', 'cupy' or 'numba-cuda', got {engine!r}"
        )
    return engine


def _split(value: int) -> tuple[np.uint64, np.uint64]:
    """The low and high 32-bit words of a 64-bit integer."""
    return np.uint64(value & 0xFFFFFFFF), np.uint64(value >> 32)


def _splitmix64(x: int) -> int:
    """Vigna's SplitMix64 finalizer: a bijective 64-bit mix."""
    x = (x + 0x9E3779B97F4A7C15) % _UINT64_LIMIT
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) % _UINT64_LIMIT
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) % _UINT64_LIMIT
    return x ^ (x >> 31)


# --- public API -------------------------------------------------------------------


class RandomStream:
    """A reproducible counter-based stream: same seed -> same numbers on every engine.

    Element ``i`` of stream ``stream`` under ``seed`` is Philox4x32-10 of the
    counter ``(i mod 2**32, i // 2**32, stream mod 2**32, stream // 2**32)``
    under the key ``(seed mod 2**32, seed // 2**32)``. Draws fill their array in
    C order from element ``offset`` upwards, so any block of a draw equals the
    same block of one long draw, and every engine gives the same bits: the
    ``"reference"`` (NumPy) and ``"numba"`` engines into host memory,
    ``"cupy"`` and ``"numba-cuda"`` on the current CUDA device (a CuPy array,
    a numba-cuda device array; ``fill`` writes torch CUDA tensors too).

    Parameters
    ----------
    seed : int
        The key, in [0, 2**64).
    stream : int, default 0
        The stream id, in [0, 2**64). Streams of one seed are independent.

    Notes
    -----
    From the four 32-bit words ``w0..w3`` of element ``i``:

    - float64 uniform: ``(k + 1/2) * 2**-52`` with ``k`` the top 26 bits of
      ``w0`` followed by the top 26 bits of ``w1``; in the open interval (0, 1).
    - float32 uniform: ``(k + 1/2) * 2**-23`` with ``k`` the top 23 bits of ``w0``.
    - normal: the float64 uniform through Wichura's AS241 inverse normal CDF
      (relative accuracy about 1e-16), then cast to ``dtype``; ``|x| < 8.3``.
    - Rademacher: ``+1`` if the lowest bit of ``w0`` is 0, else ``-1``.

    References
    ----------
    J. K. Salmon, M. A. Moraes, R. O. Dror and D. E. Shaw, "Parallel random
    numbers: as easy as 1, 2, 3", SC 2011.

    M. J. Wichura, "Algorithm AS 241: The percentage points of the normal
    distribution", Applied Statistics 37 (1988), 477-484.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg._core.random import RandomStream
    >>> rs = RandomStream(42)
    >>> x = rs.normal((3, 4))
    >>> x.shape, x.dtype
    ((3, 4), dtype('float64'))
    >>> np.array_equal(rs.normal(5, offset=2), x.ravel()[2:7])
    True
    >>> bool(np.all((rs.uniform(1000) > 0) & (rs.uniform(1000) < 1)))
    True
    """

    __slots__ = ("_seed", "_stream")

    def __init__(self, seed: int, stream: int = 0) -> None:
        self._seed = _check_uint64(seed, "seed")
        self._stream = _check_uint64(stream, "stream")

    @property
    def seed(self) -> int:
        """The key, in [0, 2**64)."""
        return self._seed

    @property
    def stream(self) -> int:
        """The stream id, in [0, 2**64)."""
        return self._stream

    def __repr__(self) -> str:
        return f"RandomStream(seed={self._seed}, stream={self._stream})"

    def uniform(
        self,
        shape: int | tuple[int, ...],
        *,
        dtype: Any = np.float64,
        offset: int = 0,
        engine: str = "reference",
    ) -> np.ndarray:
        """Uniform numbers in the open interval (0, 1).

        Parameters
        ----------
        shape : int or tuple of int
            Shape of the result.
        dtype : {numpy.float64, numpy.float32}
            float64 values are multiples of 2**-53, float32 values of 2**-24.
        offset : int, default 0
            Stream index of the first element; element ``j`` (in C order) of
            the result is stream element ``offset + j``.
        engine : {"reference", "numba", "cupy", "numba-cuda"}
            NumPy reference or Numba kernels on the host; ``"cupy"`` and
            ``"numba-cuda"`` draw on the current CUDA device. The numbers
            are identical on every engine.

        Returns
        -------
        numpy.ndarray, cupy.ndarray or numba-cuda device array
            Of ``shape`` and ``dtype``, from the engine's library.

        Examples
        --------
        >>> from linalg._core.random import RandomStream
        >>> u = RandomStream(7).uniform((2, 3), dtype="float32")
        >>> u.shape, u.dtype
        ((2, 3), dtype('float32'))
        """
        dtype = _check_dtype(dtype)
        kind = "uniform32" if dtype == np.float32 else "uniform64"
        return self._draw(kind, shape, dtype, offset, engine)

    def normal(
        self,
        shape: int | tuple[int, ...],
        *,
        dtype: Any = np.float64,
        offset: int = 0,
        engine: str = "reference",
    ) -> np.ndarray:
        """Standard normal numbers, by inversion of the float64 uniforms.

        Parameters
        ----------
        shape : int or tuple of int
            Shape of the result.
        dtype : {numpy.float64, numpy.float32}
            Computed in float64 and rounded to ``dtype``.
        offset : int, default 0
            Stream index of the first element; element ``j`` (in C order) of
            the result is stream element ``offset + j``.
        engine : {"reference", "numba", "cupy", "numba-cuda"}
            NumPy reference or Numba kernels on the host; ``"cupy"`` and
            ``"numba-cuda"`` draw on the current CUDA device. The numbers
            are identical on every engine.

        Returns
        -------
        numpy.ndarray, cupy.ndarray or numba-cuda device array
            Of ``shape`` and ``dtype``, from the engine's library.

        Examples
        --------
        >>> import numpy as np
        >>> from linalg._core.random import RandomStream
        >>> rs = RandomStream(3, stream=1)
        >>> np.array_equal(rs.normal((2, 2)), rs.normal(4).reshape(2, 2))
        True
        """
        return self._draw("normal", shape, _check_dtype(dtype), offset, engine)

    def rademacher(
        self,
        shape: int | tuple[int, ...],
        *,
        dtype: Any = np.float64,
        offset: int = 0,
        engine: str = "reference",
    ) -> np.ndarray:
        """Random signs: +1 and -1 with probability 1/2 each.

        Parameters
        ----------
        shape : int or tuple of int
            Shape of the result.
        dtype : {numpy.float64, numpy.float32}
            Type of the result.
        offset : int, default 0
            Stream index of the first element; element ``j`` (in C order) of
            the result is stream element ``offset + j``.
        engine : {"reference", "numba", "cupy", "numba-cuda"}
            NumPy reference or Numba kernels on the host; ``"cupy"`` and
            ``"numba-cuda"`` draw on the current CUDA device. The numbers
            are identical on every engine.

        Returns
        -------
        numpy.ndarray, cupy.ndarray or numba-cuda device array
            Of ``shape`` and ``dtype``, from the engine's library.

        Examples
        --------
        >>> from linalg._core.random import RandomStream
        >>> s = RandomStream(0).rademacher(8)
        >>> sorted(set(s.tolist())) in ([-1.0, 1.0], [-1.0], [1.0])
        True
        """
        return self._draw("rademacher", shape, _check_dtype(dtype), offset, engine)

    def fill(
        self, out: np.ndarray, kind: str, *, offset: int = 0, engine: str = "reference"
    ) -> np.ndarray:
        """Overwrite ``out`` with stream elements: a draw without an allocation.

        ``rs.fill(out, "normal", offset=o)`` equals
        ``out[...] = rs.normal(out.shape, dtype=out.dtype, offset=o)``, bit for
        bit, for reusing one buffer across many blocks of a large draw.

        Parameters
        ----------
        out : numpy.ndarray or CUDA array
            C-contiguous, writeable, float32 or float64: a NumPy array for the
            host engines; for ``"cupy"`` and ``"numba-cuda"`` a CuPy array,
            numba-cuda device array or any object with
            ``__cuda_array_interface__`` (a torch CUDA tensor), written in
            place without a copy.
        kind : {"uniform", "normal", "rademacher"}
        offset : int, default 0
            Stream index of ``out``'s first element (in C order).
        engine : {"reference", "numba", "cupy", "numba-cuda"}

        Returns
        -------
        array
            ``out``.

        Examples
        --------
        >>> import numpy as np
        >>> from linalg._core.random import RandomStream
        >>> rs, buffer = RandomStream(4), np.empty((2, 3))
        >>> np.array_equal(rs.fill(buffer, "normal", offset=6), rs.normal((2, 3), offset=6))
        True
        """
        engine = _check_engine(engine)
        if kind not in ("uniform", "normal", "rademacher"):
            raise ValueError(f"kind must be 'uniform', 'normal' or 'rademacher', got {kind!r}")
        if engine in _DEVICE_ENGINES:
            flat = _device_engine(engine).flat_view(out)
        elif isinstance(out, np.ndarray) and out.flags.c_contiguous and out.flags.writeable:
            flat = out.reshape(-1)
        else:
            raise TypeError(
                f"out must be a writeable C-contiguous numpy.ndarray for engine={engine!r} "
                "(engine='cupy' or 'numba-cuda' fill CUDA arrays)"
            )
        dtype = _check_dtype(flat.dtype)
        if kind == "uniform":
            kind = "uniform32" if dtype == np.float32 else "uniform64"
        self._draw(kind, flat.shape, dtype, offset, engine, out=flat)
        return out

    def spawn(self, n: int) -> list[RandomStream]:
        """``n`` independent child streams, the same on every call.

        Children keep the seed and take stream ids from a SplitMix64 hash of
        ``(stream, child index)``; they differ from each other, and
        ``spawn(n)`` is a prefix of ``spawn(n + 1)``.

        Parameters
        ----------
        n : int
            Number of children, >= 0.

        Returns
        -------
        list of RandomStream

        Examples
        --------
        >>> from linalg._core.random import RandomStream
        >>> a, b = RandomStream(5).spawn(2)
        >>> a.seed == b.seed == 5 and a.stream != b.stream
        True
        """
        n = check_int(n, "n", low=0)
        base = _splitmix64(self._stream)
        return [RandomStream(self._seed, _splitmix64(base ^ (k + 1))) for k in range(n)]

    def _draw(
        self,
        kind: str,
        shape: Any,
        dtype: np.dtype,
        offset: Any,
        engine: Any,
        out: Any = None,
    ) -> Any:
        """Draw ``shape`` elements from ``offset`` on; into the flat ``out`` if given."""
        shape = _check_shape(shape)
        size = int(np.prod(shape, dtype=object))
        offset = check_int(offset, "offset", low=0)
        if offset + size > _UINT64_LIMIT:
            raise ValueError(
                f"offset + size must be <= 2**64 (the stream's length), got {offset} + {size}"
            )
        engine = _check_engine(engine)
        if engine in _DEVICE_ENGINES:
            module = _device_engine(engine)
            fill, flat = module.fill, module.empty(size, dtype) if out is None else out
        else:
            fill, flat = _FILLERS[engine], np.empty(size, dtype=dtype) if out is None else out
        if size:
            fill(kind, flat, _split(self._seed), _split(self._stream), offset)
        return flat.reshape(shape)


def as_random_stream(rng: Any) -> RandomStream:
    """Turn an ``rng`` argument (SPEC 7) into a :class:`RandomStream`.

    Parameters
    ----------
    rng : None, int, numpy.random.Generator or RandomStream
        ``None``: a fresh stream seeded from OS entropy; an int: the seed;
        a Generator: a seed drawn from it (one uint64, advancing it);
        a RandomStream: returned as is.

    Returns
    -------
    RandomStream

    Examples
    --------
    >>> import numpy as np
    >>> from linalg._core.random import RandomStream, as_random_stream
    >>> as_random_stream(12)
    RandomStream(seed=12, stream=0)
    >>> rs = RandomStream(1, stream=2)
    >>> as_random_stream(rs) is rs
    True
    >>> a = as_random_stream(np.random.default_rng(0))
    >>> b = as_random_stream(np.random.default_rng(0))
    >>> a.seed == b.seed
    True
    """
    if isinstance(rng, RandomStream):
        return rng
    if rng is None:
        rng = np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return RandomStream(int(rng.integers(_UINT64_LIMIT, dtype=np.uint64)))
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return RandomStream(rng)
    raise TypeError(
        "rng must be None, an int, a numpy.random.Generator or a RandomStream, "
        f"got {type(rng).__name__}"
    )
