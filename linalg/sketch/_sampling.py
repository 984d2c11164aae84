"""Row sampling: ``S`` keeps rows of ``A``, reweighted so that ``E[SᵀS] = I``.

Two designs. ``"iid"``: ``d`` rows drawn with replacement from ``probs``.
``"pivotal"``: rows drawn without replacement with inclusion probabilities
``π_i = min(1, c p_i)`` summing to ``d``, by Deville and Tillé's ordered
pivotal method, which gives exactly ``d`` rows and negatively correlated
inclusions (less variance than independent draws).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from linalg._core.engines import register
from linalg._core.namespace import array_kind, numpy_dtype, placement_of, to_host, to_numpy
from linalg._core.validate import as_float_array, check_int
from linalg.sketch._operator import SketchOperator, rows_into_zeros

__all__ = ["RowSamplingSketch", "row_sampling"]

register("sketch.pivotal", "reference", "linalg.sketch._sampling:pivotal_loop")
register("sketch.pivotal", "numba", "linalg.sketch._sampling_numba:pivotal_loop")

_METHODS = ("iid", "pivotal")
_SUM_RTOL = 1e-8


class RowSamplingSketch(SketchOperator):
    """Row ``t`` of S is ``weights[t] e_{indices[t]}ᵀ``: see :func:`row_sampling`.

    Attributes
    ----------
    method : {"iid", "pivotal"}
    indices : ndarray of int64, shape (d,)
        The sampled rows of ``A`` (increasing and distinct for ``"pivotal"``).
    weights : ndarray of float64, shape (d,)
        ``1 / √(d p_i)`` (iid) or ``1 / √π_i`` (pivotal).
    inclusion : ndarray of float64, shape (n,)
        Expected number of times each row is drawn: ``d p`` (iid) or ``π`` (pivotal).
    """

    kind = "row_sampling"
    sparse = True
    reads_every_row = False

    def __init__(
        self,
        probs: Any,
        d: int,
        *,
        method: str = "iid",
        rng: Any = None,
        dtype: Any = np.float64,
        engine: str | None = None,
    ) -> None:
        p = _check_probs(probs)
        super().__init__(d, p.size, rng=rng, dtype=dtype, engine=engine)
        if method not in _METHODS:
            raise ValueError(f"method must be 'iid' or 'pivotal', got {method!r}")
        self.method = method
        if method == "iid":
            self.inclusion = self.d * p
            uniforms = self.rng.uniform(self.d, engine=self._random_engine())
            cumulative = np.cumsum(p)
            self.indices = np.searchsorted(cumulative, uniforms * cumulative[-1], side="right")
            self.indices = np.minimum(self.indices, self.n - 1).astype(np.int64)
        else:
            self.inclusion = _inclusion_probabilities(p, self.d)
            loop = self._kernels("sketch.pivotal", np.dtype(np.float64))
            undecided = np.flatnonzero((self.inclusion > 0) & (self.inclusion < 1))
            uniforms = self.rng.uniform(max(undecided.size - 1, 0), engine=self._random_engine())
            selected = self.inclusion >= 1
            selected[undecided] = loop(self.inclusion[undecided], uniforms)
            self.indices = np.flatnonzero(selected).astype(np.int64)
            self.d = self.indices.size
        self.weights = 1.0 / np.sqrt(self.inclusion[self.indices])
        self._matrix = sp.csr_array(
            (self.weights.astype(self.dtype), self.indices, np.arange(self.d + 1)),
            shape=(self.d, self.n),
        )

    def _columns(self, start: int, stop: int) -> sp.csr_array:
        return self._matrix[:, start:stop]

    def _local(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows of S that fall in this block, and their row of the block's ``A``."""
        local = self.indices - self.column_offset
        inside = (local >= 0) & (local < self.n)
        return np.flatnonzero(inside), local[inside]

    def _apply_dense(self, A: np.ndarray) -> np.ndarray:
        rows, local = self._local()
        out = np.zeros((self.d, A.shape[1]), dtype=A.dtype)
        out[rows] = A[local] * self.weights[rows, None].astype(A.dtype)
        return out

    # Device data: the indices and weights (d numbers) go over, the rows are gathered there.
    draws_for_devices = True

    def _apply_drawn(self, A: Any) -> Any:
        """``S @ A`` for a device ``(n, k)`` array: one gather of the sampled rows;
        a row of S outside this block ``S[:, a:b]`` reads row 0 with weight 0."""
        place = placement_of(A)
        rows, local = self._local()
        index = np.zeros(self.d, dtype=np.int64)
        index[rows] = local
        weights = np.zeros(self.d, dtype=numpy_dtype(A.dtype))
        weights[rows] = self.weights[rows]
        return place.xp.take(A, place.put(index), axis=0) * place.put(weights)[:, None]

    def _apply_transpose_dense(self, Y: np.ndarray) -> np.ndarray:
        rows, local = self._local()
        out = np.zeros((self.n, Y.shape[1]), dtype=Y.dtype)
        np.add.at(out, local, Y[rows] * self.weights[rows, None].astype(Y.dtype))
        return out

    def _apply_transpose_device(self, Y: Any) -> Any:
        """``Sᵀ @ Y`` for a device ``(d, k)`` array: the weighted rows of ``Y`` summed
        per sampled row of ``A`` (a row drawn ``c`` times gathers ``c`` rows of ``Y``,
        in the order the host adds them), then placed in a zero ``(n, k)`` array."""
        place = placement_of(Y)
        xp = place.xp
        rows, local = self._local()
        targets, group = np.unique(local, return_inverse=True)
        repeats = np.bincount(group, minlength=targets.size)
        gathers = np.full((targets.size, max(int(repeats.max(initial=0)), 1)), self.d)
        order = np.argsort(group, kind="stable")
        rank = np.arange(order.size) - np.repeat(np.cumsum(repeats) - repeats, repeats)
        gathers[group[order], rank] = rows[order]
        weights = np.zeros(self.d + 1, dtype=numpy_dtype(Y.dtype))
        weights[rows] = self.weights[rows]
        zero = xp.zeros((1, Y.shape[1]), dtype=Y.dtype, device=place.device)
        weighted = xp.concat([Y, zero], axis=0) * place.put(weights)[:, None]
        sums = None
        for t in range(gathers.shape[1]):
            term = xp.take(weighted, place.put(gathers[:, t]), axis=0)
            sums = term if sums is None else sums + term
        return rows_into_zeros(place, sums, targets, self.n)


def _check_probs(probs: Any) -> np.ndarray:
    """``probs`` as a float64 NumPy vector (device data copied over: the draws are made
    on the host), checked to be a probability vector."""
    host = to_host(probs) if array_kind(probs).via_namespace else to_numpy(probs, "probs")
    p = as_float_array(host, "probs", ndim=1, dtype=np.float64)
    if np.any(p < 0):
        raise ValueError("probs must be nonnegative")
    total = p.sum()
    if abs(total - 1.0) > _SUM_RTOL:
        raise ValueError(f"probs must sum to 1 (within {_SUM_RTOL:g}), got sum {total!r}")
    return p


def _inclusion_probabilities(p: np.ndarray, d: int) -> np.ndarray:
    """``π = min(1, c p)`` with ``Σ π = d``: rows whose ``c p_i`` exceeds 1 are capped in turn."""
    positive = np.count_nonzero(p)
    if d > positive:
        raise ValueError(
            f"d must be <= {positive} (the rows with probs > 0) for 'pivotal', got {d}"
        )
    capped = np.zeros(p.size, dtype=bool)
    while True:
        c = (d - np.count_nonzero(capped)) / p[~capped].sum()
        newly = ~capped & (c * p >= 1.0)
        if not newly.any():
            return np.where(capped, 1.0, c * p)
        capped |= newly


def pivotal_loop(pi: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Deville–Tillé's ordered pivotal method on ``0 < π_i < 1``: which units are selected.

    The carried unit ``a`` duels unit ``b = 1, 2, ...`` in order, duel ``b - 1``
    using ``uniforms[b - 1]``; each duel settles one of the two (to 0 or 1)
    and leaves the other with the pooled probability. Compiled as is by Numba
    (:mod:`linalg.sketch._sampling_numba`), so both engines agree bit for bit.
    """
    n = pi.size
    selected = np.zeros(n, dtype=np.bool_)
    if n == 0:
        return selected
    a = 0
    x = pi[0]
    for b in range(1, n):
        y = pi[b]
        u = uniforms[b - 1]
        total = x + y
        if total < 1.0:
            if u * total < y:
                a = b
            x = total
        else:
            if u * (2.0 - total) < 1.0 - y:
                selected[a] = True
                a = b
            else:
                selected[b] = True
            x = total - 1.0
    if x > 0.5:
        selected[a] = True
    return selected


_PARAMETERS = """
    Parameters
    ----------
    probs : array_like, shape (n,)
        Sampling probabilities of the rows of ``A``: nonnegative, summing to 1
        (within 1e-8), for example leverage scores divided by their sum. A
        device array (CuPy, a GPU tensor, another array-API library) is read
        to the host once: the draws (and the pivotal method, a sequential
        loop) run there, on ``n`` numbers.
    d : int
        Number of rows to draw, >= 1 (for ``"pivotal"``, at most the number
        of positive ``probs``).
    method : {"iid", "pivotal"}, default "iid"
        ``"iid"``: ``d`` independent draws with replacement, row ``t`` of S
        being ``e_{i_t}ᵀ / √(d p_{i_t})``. ``"pivotal"``: inclusion
        probabilities ``π_i = min(1, c p_i)`` with ``Σ π_i = d``, exactly
        ``d`` distinct rows ``e_iᵀ / √π_i`` by the ordered pivotal method.
    rng : None, int, numpy.random.Generator or RandomStream
        The seed (SPEC 7); the same seed gives the same S on every engine.
    dtype : {numpy.float64, numpy.float32}
    engine : {"auto", "reference", "numba"}, optional
        Who draws the random numbers and runs the pivotal loop.
"""


def row_sampling(
    probs: Any,
    d: int,
    *,
    method: str = "iid",
    rng: Any = None,
    dtype: Any = np.float64,
    engine: str | None = None,
) -> RowSamplingSketch:
    """A row-sampling sketch: ``S @ A`` keeps ``d`` reweighted rows of ``A``; ``E[SᵀS] = I``.

    With ``probs`` proportional to the leverage scores of ``A``, ``d = O(r log r / ε²)``
    rows embed the ``r``-dimensional column space of ``A``. Applying S costs a
    gather of ``d`` rows; for ``A`` on a device (CuPy, a GPU tensor, another
    array-API library) the ``d`` indices and weights are moved there and the
    rows gathered on the device.
    {params}
    Returns
    -------
    RowSamplingSketch
        A sparse :class:`~linalg.sketch.SketchOperator` (a CSR matrix when
        applied to a sparse matrix).

    Raises
    ------
    ValueError
        If ``probs`` has negative, NaN or infinite entries or does not sum
        to 1, ``d < 1``, or ``method`` is unknown.

    Notes
    -----
    iid: draw ``t`` inverts the cumulative sum of ``probs`` at uniform element
    ``t`` of ``rng``. Pivotal: the rows with ``0 < π_i < 1``, in order, hold
    duels; duel ``t`` uses uniform element ``t`` of ``rng``.

    References
    ----------
    J.-C. Deville and Y. Tillé, "Unequal probability sampling without
    replacement through a splitting method", Biometrika 85 (1998).

    P. Drineas, M. W. Mahoney and S. Muthukrishnan, "Sampling algorithms for
    l2 regression and applications", SODA 2006.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.sketch import row_sampling
    >>> p = np.full(10, 0.1)
    >>> S = row_sampling(p, 4, method="pivotal", rng=0)
    >>> S.indices.size, np.unique(S.indices).size
    (4, 4)
    >>> A = np.arange(20.0).reshape(10, 2)
    >>> bool(np.allclose(S @ A, A[S.indices] * np.sqrt(10 / 4)))
    True
    """
    d = check_int(d, "d", low=1)
    return RowSamplingSketch(probs, d, method=method, rng=rng, dtype=dtype, engine=engine)


row_sampling.__doc__ = row_sampling.__doc__.replace("{params}", _PARAMETERS)
