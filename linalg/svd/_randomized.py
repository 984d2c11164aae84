"""Randomized SVD: subspace iteration, block Krylov and block Lanczos with a
tolerance on one range-finder iteration (see ``_iteration.py``); Lanczos to
machine precision by one-sided block Lanczos (``_lanczos.py``)."""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np

from linalg._core.engines import check_engine_name
from linalg._core.namespace import Placement, array_kind, placement_of, to_caller, to_numpy
from linalg._core.operators import MatrixOperator, Operator, as_operator, is_sparse
from linalg._core.random import RandomStream, as_random_stream
from linalg._core.results import ConvergenceWarning
from linalg._core.validate import as_float_namespace_array, check_bool, check_int, check_real
from linalg.sketch._kinds import make_sketch
from linalg.svd._basis import column_norms
from linalg.svd._iteration import Iteration, Ritz
from linalg.svd._lanczos import lanczos_svd
from linalg.svd._result import SVDResult, flip_signs

__all__ = ["randomized_svd"]

_METHODS = ("auto", "subspace", "block_krylov", "lanczos")
_NORMALIZERS = ("auto", "qr", "lu", "none")
# Gaussian probe vectors for the a-posteriori error estimate, and the factor on
# their largest residual: ||M||₂ <= 2 max_i ||M ω_i|| fails with probability
# at most P(|N(0, 1)| < 1/2)^8 < 5e-4 (Mω_i has a component σ₁(M) g_i).
_PROBES = 16
_PROBE_FACTOR = 1.0
# "auto" continues as subspace iteration when the first Ritz values decay at
# least this fast from the k-th to the last (s_b / s_k), else as block Krylov.
_FAST_DECAY = 0.1
# Entries of the two Krylov bases together when they grow until a stopping
# test holds (2**25: 256 MB in float64), and the fewest blocks allowed anyway.
_BASIS_ENTRIES = 1 << 25
_MIN_GROWTH_BLOCKS = 8
# Below this many blocks in min(m, n) a Krylov basis would span most of the
# space: the exact SVD is cheaper.
_MIN_BLOCKS = 3
_SPARSE_KINDS = ("countsketch", "sparse_sign")
# Block size of method="lanczos" (at most k + oversample): a product with a
# block of a few vectors costs little more than with one (the matrix is read
# once), while the Krylov dimension needed grows with the block.
_LANCZOS_BLOCK = 4


def randomized_svd(
    A: Any,
    k: int,
    *,
    oversample: int = 10,
    n_iter: int | str = "auto",
    method: str = "auto",
    sketch: Any = "gaussian",
    normalizer: str = "auto",
    tol: float | None = None,
    rng: Any = None,
    warn: bool = True,
    engine: str | None = None,
    compute: bool = True,
) -> SVDResult:
    """The leading ``k`` singular triplets of a matrix, by a randomized range finder.

    Parameters
    ----------
    A : array_like, sparse matrix or LinearOperator, shape (m, n)
        NumPy, SciPy sparse, a SciPy ``LinearOperator`` (with ``rmatmat`` or
        ``rmatvec``), or a torch / JAX tensor on the CPU (``U``, ``s``, ``Vt``
        are then returned as the same type). A dense CuPy array, torch / JAX
        GPU tensor or array of another array-API library is computed where it
        lives: the products with ``A`` and the tall bases stay on its device,
        the ``(k + p)``-sized factors are handled on the host, and ``U``,
        ``s``, ``Vt`` come back in its type (``normalizer="lu"`` is for host
        data only). A dask array runs on its scheduler (see ``compute``);
        ``U`` is then a dask array and ``s``, ``Vt`` NumPy arrays.
    k : int
        Number of singular triplets, ``1 <= k <= min(m, n)``. With ``tol``,
        the largest rank allowed.
    oversample : int, default 10
        Extra columns of the random block: its width is ``b = k + oversample``
        (at most ``min(m, n)``). ``"lanczos"`` without ``tol`` grows its
        Krylov space by blocks of ``min(b, 4)`` columns (see the Notes).
    n_iter : int or "auto"
        Iterations after the first pass; each costs two passes over ``A``.
        ``"auto"``: subspace iteration 7 when ``k < min(m, n) / 10``, else 4
        (as scikit-learn); block Krylov 3 (2 when ``k >= min(m, n) / 10``);
        Lanczos, and block Krylov given ``tol``, until the stopping test holds
        or the bases reach ``2**25`` entries together (256 MB in float64; at
        least 8 blocks; Lanczos without ``tol`` keeps only the basis of the
        short side). With a stopping test, an integer is the most
        iterations: not meeting the test then warns (for Lanczos the block
        then widens so that ``n_iter + 1`` blocks hold at least ``b`` columns).
    method : {"auto", "subspace", "block_krylov", "lanczos"}
        ``"subspace"``: power iteration on the latest block (Halko, Martinsson
        and Tropp). ``"block_krylov"``: keep every block and extract from the
        whole Krylov space (Musco and Musco): much faster convergence when
        the spectrum decays slowly, for ``n_iter`` times more memory.
        ``"lanczos"``: a Krylov space grown until the residuals of the ``k``
        triplets are below ``sqrt(eps) · σ₁`` (singular values then accurate
        to about ``eps``), checked on the returned triplets. ``"auto"``:
        after the first Rayleigh–Ritz step, subspace iteration if the
        observed values fall tenfold from the ``k``-th to the ``b``-th (fast
        decay), else block Krylov.
    sketch : str or SketchOperator, default "gaussian"
        The test matrix ``Ω = Sᵀ`` of the first pass: a kind known to
        :mod:`linalg.sketch` (``"countsketch"`` or ``"sparse_sign"`` make the
        first pass over a sparse matrix cost ``O(nnz)``) or a ``(b, n)``
        :class:`~linalg.sketch.SketchOperator`.
    normalizer : {"auto", "qr", "lu", "none"}
        How subspace iteration rescales its intermediate blocks (the last is
        always orthonormalized). ``"auto"`` is ``"qr"``. Krylov methods
        always orthonormalize and accept only ``"auto"`` or ``"qr"``.
    tol : float, optional
        In (0, 1): stop as soon as the error estimate of some rank ``r <= k``
        is at most ``tol · σ₁``, and return the smallest such rank.
    rng : None, int, numpy.random.Generator or RandomStream
        Seed of ``Ω`` and of the probe vectors (SPEC 7).
    warn : bool, default True
        Warn (:class:`~linalg.ConvergenceWarning`) when ``tol`` or Lanczos's
        test is not met.
    engine : {"auto", "reference", "numba"}, optional
        Who draws the random numbers (the same numbers on every engine).
    compute : bool, default True
        Dask input only: ``True`` persists ``U`` on the workers; ``False``
        leaves it lazy (a product of the kept basis, held on the workers,
        with a small factor). ``method="lanczos"`` and ``tol`` are not
        available for dask arrays.

    Returns
    -------
    SVDResult
        ``U`` (m, r), ``s`` (r,), ``Vt`` (r, n) with ``r = k`` (or the rank
        chosen by ``tol``), the spectral-norm ``error_estimate`` of
        ``A - U diag(s) Vt``, ``n_passes`` over ``A``, ``converged``, and
        ``info`` (method, iterations, block size). Unpacks as ``U, s, Vt``.

    Raises
    ------
    ValueError
        ``k`` out of range, an unknown method, sketch or normalizer, ``tol``
        outside (0, 1), NaN or Inf in ``A``.
    TypeError
        ``A`` is complex, or an operator without an adjoint product.

    Notes
    -----
    Every method runs one block Golub–Kahan iteration: ``U₁ = orth(A Ω)``,
    then ``V_j = orth(Aᵀ U_j)`` and ``U_{j+1} = orth(A V_j)``, each block
    orthonormalized against the kept ones (Gram–Schmidt twice, then QR).
    The coefficients recorded on the way give ``Uᵀ A = Cᵀ Vᵀ``, so the
    Rayleigh–Ritz triplets need no extra pass, and the next half-step gives
    their residuals. ``n_iter = q`` costs ``2q + 2`` passes in every method
    (Lanczos: see below).

    ``method="lanczos"`` without ``tol`` runs a one-sided block Lanczos
    bidiagonalization instead (Simon and Zha, 2000): blocks of ``min(b, 4)``
    columns, started from ``Ω``'s first columns on the short side (``A Ω``
    when ``A`` is wide), full reorthogonalization of the short side's basis
    only, the three-term recurrence on the long side. Once the residuals
    estimated from the small block bidiagonal matrix meet the test, a final
    Rayleigh–Ritz step on ``A V_k`` (one pass with ``k`` columns) gives the
    triplets and one pass with ``Aᵀ`` their true residuals ``||Aᵀu - σv||``
    (``A v = σ u`` holds by construction); the iteration goes on unless they
    meet the test too. ``n_iter = q`` then costs ``2q + 4`` passes (one
    more for wide ``A``). A block Krylov space holds at most as many vectors
    of a repeated singular value as its block has columns: when that many of
    the ``k`` values agree to ``sqrt(eps) · σ₁``, the run is repeated with
    twice wider blocks (up to ``b``), and ``n_passes`` counts every run.

    When fewer than three blocks of ``b`` columns fit in ``min(m, n)``, the
    Krylov methods (and ``"auto"``) compute the exact SVD instead
    (``info["method"] == "dense"``): their basis would span most of the space.

    The error estimate adds 8 Gaussian probes ``ω_i`` to the first pass:
    ``e = (4 max_i ||(I - U Uᵀ) A ω_i||² + σ_{r+1}²)^{1/2}`` bounds
    ``||A - U_r Σ_r V_rᵀ||₂`` unless every probe misses the top residual
    direction by a factor 2 (probability below 5e-4; Halko et al., 2011, §4.3).
    It can overestimate by up to ``√min(m, n)`` when the residual spectrum is flat.

    Signs follow ``svd_flip``: the entry of largest magnitude in each column
    of ``U`` is positive. float32 input is computed in float32.

    References
    ----------
    N. Halko, P.-G. Martinsson and J. A. Tropp, "Finding structure with
    randomness", SIAM Review 53 (2011). C. Musco and C. Musco, "Randomized
    block Krylov methods for stronger and faster approximate singular value
    decomposition", NeurIPS 2015. H. D. Simon and H. Zha, "Low-rank matrix
    approximation using the Lanczos bidiagonalization process with
    applications", SIAM J. Sci. Comput. 21 (2000).

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.svd import randomized_svd
    >>> rng = np.random.default_rng(0)
    >>> Q1, _ = np.linalg.qr(rng.standard_normal((300, 40)))
    >>> Q2, _ = np.linalg.qr(rng.standard_normal((200, 40)))
    >>> sigma = 0.8 ** np.arange(40)
    >>> A = (Q1 * sigma) @ Q2.T
    >>> U, s, Vt = randomized_svd(A, 5, rng=0)
    >>> np.allclose(s, sigma[:5])
    True
    >>> result = randomized_svd(A, 40, tol=1e-3, rng=0)
    >>> result.s.shape[0], bool(result.error_estimate <= 1e-3)
    (31, True)
    """
    if array_kind(A).library == "dask":
        from linalg.svd._dask import dask_randomized_svd

        options = {"oversample": oversample, "n_iter": n_iter, "method": method, "tol": tol}
        options |= {"sketch": sketch, "normalizer": normalizer, "rng": rng, "warn": warn}
        return dask_randomized_svd(A, k, **options, engine=engine, compute=compute)
    kind, place = array_kind(A), placement_of(A)
    if place.on_host:
        op = as_operator(to_numpy(A, "A"), "A")
    else:  # CuPy, a GPU tensor: the tall blocks stay on its device
        op = MatrixOperator(as_float_namespace_array(A, "A", place.xp, ndim=2))
    plan, warn = make_plan(op.shape, k, oversample, n_iter, method, normalizer, tol, warn, engine)
    if not place.on_host and plan.normalizer == "lu":
        raise ValueError(f"normalizer='lu' needs A in host memory; A holds {kind}: use 'qr'")
    compute = check_bool(compute, "compute")
    sketch_stream, probe_stream = as_random_stream(rng).spawn(2)
    S = make_sketch(sketch, plan.b, op.shape[1], rng=sketch_stream, dtype=op.dtype, engine=engine)
    result = _run(op, S, probe_stream, plan, place)
    if warn and not result.converged:
        warnings.warn(
            f"randomized_svd: {result.info['stop']} (error estimate "
            f"{result.error_estimate:.3g}, {result.n_passes} passes)",
            ConvergenceWarning,
            stacklevel=2,
        )
    U, Vt = flip_signs(result.U, result.Vt, place)
    s = place.put(result.s)
    return dataclasses.replace(
        result, U=to_caller(U, kind), s=to_caller(s, kind), Vt=to_caller(Vt, kind)
    )


class _Plan:
    """The resolved options: method, iterations and stopping rule."""

    def __init__(
        self,
        k: int,
        b: int,
        method: str,
        n_iter: int | None,
        tol: float | None,
        normalizer: str,
        shape: tuple[int, int],
    ) -> None:
        min_dim = min(shape)
        self.k, self.b, self.tol, self.shape = k, b, tol, shape
        self.method = method
        self.small_k = k < min_dim / 10
        self.has_test = method == "lanczos" or tol is not None
        self.n_iter = n_iter
        self.normalizer = "qr" if normalizer == "auto" else normalizer
        self.blocks_that_fit = min_dim // b
        if n_iter is None:
            blocks = max(_MIN_GROWTH_BLOCKS, _BASIS_ENTRIES // (sum(shape) * b))
        else:
            blocks = n_iter + 1
        self.max_blocks = min(blocks, self.blocks_that_fit)
        # method="lanczos" without tol: one-sided block Lanczos (``_lanczos.py``)
        # with small blocks; only the short side's basis is kept.
        self.lanczos_block = min(b, _LANCZOS_BLOCK)
        if n_iter is not None:  # the Krylov dimension at the cap is at least b
            self.lanczos_block = max(self.lanczos_block, -(-b // (n_iter + 1)))
        self.lanczos_blocks = self.lanczos_limit(self.lanczos_block)

    def lanczos_limit(self, block: int) -> int:
        """Most blocks of ``block`` columns for method "lanczos": ``n_iter + 1``,
        else while the kept (short) basis holds at most ``2**25`` entries."""
        short = min(self.shape)
        if self.n_iter is not None:
            blocks = self.n_iter + 1
        else:
            blocks = max(_MIN_GROWTH_BLOCKS, _BASIS_ENTRIES // (short * block) - 1)
        return max(1, min(blocks, short // block - 1))

    def iterations(self, method: str) -> int | None:
        """``q`` for ``method``; None when only the stopping test (or a full basis) ends it."""
        if self.n_iter is not None:
            return self.n_iter
        if method == "subspace":
            return 7 if self.small_k else 4
        if self.has_test:
            return None
        return 3 if self.small_k else 2


def make_plan(
    shape: tuple[int, int],
    k: Any,
    oversample: Any,
    n_iter: Any,
    method: Any,
    normalizer: Any,
    tol: Any,
    warn: Any,
    engine: Any,
) -> tuple[_Plan, bool]:
    """Validate the options of :func:`randomized_svd` for a matrix of ``shape``;
    the resolved plan and ``warn``."""
    m, n = shape
    k = check_int(k, "k", low=1)
    if k > min(m, n):
        raise ValueError(f"k must be <= min(m, n) = {min(m, n)} for A of shape {shape}")
    oversample = check_int(oversample, "oversample", low=0)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, _METHODS))}, got {method!r}")
    if normalizer not in _NORMALIZERS:
        known = ", ".join(map(repr, _NORMALIZERS))
        raise ValueError(f"normalizer must be one of {known}, got {normalizer!r}")
    if method in ("block_krylov", "lanczos") and normalizer in ("lu", "none"):
        raise ValueError(f"normalizer={normalizer!r} is for method='subspace' only")
    fixed = n_iter != "auto"
    if fixed:
        n_iter = check_int(n_iter, "n_iter", low=0)
    if tol is not None:
        tol = check_real(tol, "tol", low=0.0, high=1.0, low_inclusive=False)
    warn = check_bool(warn, "warn")
    if engine is not None:
        check_engine_name(engine, "engine")
    b = min(k + oversample, min(m, n))
    plan = _Plan(k, b, method, n_iter if fixed else None, tol, normalizer, (m, n))
    return plan, warn


def _first_pass(op: Operator, S: Any, probes: Any, place: Placement) -> tuple[Any, Any]:
    """``A Sᵀ`` and ``A Ω_probe``, in one product unless a sparse sketch
    multiplies a host matrix directly."""
    if not place.on_host:
        test = _test_matrix(S, op.dtype, place)
        both = op.matmat(place.xp.concat([test, probes], axis=1))
        return both[:, : S.d], both[:, S.d :]
    if isinstance(op, MatrixOperator) and (is_sparse(op.A) or S.kind in _SPARSE_KINDS):
        Y = op.A @ S.T
        Y = Y.toarray() if is_sparse(Y) else Y
        return np.asarray(Y, dtype=op.dtype), np.asarray(op.matmat(probes), dtype=op.dtype)
    both = np.asarray(op.matmat(np.hstack([S.T.todense().astype(op.dtype), probes])))
    return both[:, : S.d].astype(op.dtype), both[:, S.d :].astype(op.dtype)


def _test_matrix(S: Any, dtype: np.dtype, place: Placement) -> Any:
    """``Sᵀ`` (``n × d``) in ``dtype`` where ``place`` keeps its large arrays (a dense
    sketch drawn there: on the GPU for CuPy and torch CUDA, see ``Placement.draw``)."""
    if place.on_host or not hasattr(S, "dense_on"):
        return place.put(np.asarray(S.T.todense(), dtype=dtype))
    return place.xp.astype(S.dense_on(place).T, place.dtype(dtype), copy=False)


def _run(
    op: Operator, S: Any, probe_stream: RandomStream, plan: _Plan, place: Placement
) -> SVDResult:
    if plan.method != "subspace" and plan.blocks_that_fit < _MIN_BLOCKS:
        return _dense(op, plan, place)
    n = op.shape[1]
    # Drawn where A's products are (on the GPU for CuPy and torch CUDA: Placement.draw).
    probes = place.draw(probe_stream, "normal", (n, _PROBES), dtype=op.dtype)
    if plan.method == "lanczos" and plan.tol is None:
        return _run_lanczos(op, S, probes, plan, place)
    Y, probe_images = _first_pass(op, S, probes, place)
    method = plan.method
    keep = method != "subspace"
    options = {"max_blocks": plan.max_blocks, "normalizer": plan.normalizer, "place": place}
    it = Iteration(op, Y, keep=keep, **options)
    q = plan.iterations("block_krylov" if method == "auto" else method)
    watch = plan.tol is not None or method in ("auto", "lanczos")
    stop, converged = "iterations done", True
    step = 0
    while True:
        final = step == q or it.full
        ritz = it.right(need_ritz=final or watch or keep)
        if method == "auto":
            method = _choose(ritz.s, plan)
            keep = it.keep = method != "subspace"
            q = plan.iterations(method)
            watch = plan.tol is not None
            final = step == q or it.full
        if plan.tol is not None:
            rank, estimate = _rank_for_tol(ritz, probe_images, plan)
            if rank is not None:
                return _finish(ritz, rank, estimate, it, method, step, "tol met", True)
        if final:
            if plan.has_test:
                converged = False
                stop = "tol not met" if plan.tol is not None else "Lanczos not converged"
            break
        it.left(orthonormal=keep or plan.tol is not None or step + 1 == q)
        if method == "lanczos" and _lanczos_converged(it, ritz, plan.k):
            stop = "Lanczos converged"
            break
        step += 1
    estimate = math.hypot(_residual_norm(ritz, probe_images), _tail(ritz.s, plan.k))
    return _finish(ritz, plan.k, estimate, it, method, step, stop, converged)


def _run_lanczos(op: Operator, S: Any, probes: Any, plan: _Plan, place: Placement) -> SVDResult:
    """Method "lanczos" without ``tol``: one-sided block Lanczos on ``Ω``'s first columns.

    A block Krylov space holds at most ``block`` vectors of a repeated singular
    value. When ``block`` of the converged values agree (to the tolerance), more
    copies may be missing: the run is repeated with a twice wider block (up to
    ``k + oversample``), its passes added to the first's."""
    Omega = _test_matrix(S, op.dtype, place)
    block, blocks, passes = plan.lanczos_block, plan.lanczos_blocks, 0
    while True:
        start = Omega[:, :block]
        out = lanczos_svd(op, start, plan.k, max_blocks=blocks, probes=probes, place=place)
        passes += out.passes
        if block >= plan.b or not (out.converged and _has_run(out.s, block)):
            break
        block = min(2 * block, plan.b)
        blocks = plan.lanczos_limit(block)
    U = out.U
    R = out.probe_images - U @ (U.T @ out.probe_images)
    perp = _PROBE_FACTOR * float(np.max(column_norms(R, place)))
    info = {"method": "lanczos", "n_iter": out.steps, "block_size": out.block, "rank": plan.k}
    info["stop"] = out.stop
    estimate = math.hypot(perp, out.tail)
    return SVDResult(U, out.s[: plan.k].copy(), out.Vt, estimate, passes, out.converged, info)


def _has_run(s: np.ndarray, length: int) -> bool:
    """Whether ``length`` consecutive values of ``s`` (non-increasing) agree to
    ``sqrt(eps) · s[0]``, the accuracy of the Lanczos residuals."""
    if length > s.size or s[0] == 0:
        return False
    close = math.sqrt(np.finfo(s.dtype).eps) * float(s[0])
    return bool(np.any(s[: s.size - length + 1] - s[length - 1 :] <= close))


def _choose(s: np.ndarray, plan: _Plan) -> str:
    """Subspace iteration when the Ritz values ``s`` decay fast past ``k``, else block Krylov."""
    if s[plan.k - 1] > 0 and s[-1] <= _FAST_DECAY * s[plan.k - 1]:
        return "subspace"
    return "block_krylov"


def _lanczos_converged(it: Iteration, ritz: Ritz, k: int) -> bool:
    """Residuals of the ``k`` triplets below ``sqrt(eps) · σ₁``."""
    rtol = math.sqrt(np.finfo(it.dtype).eps)
    return bool(np.max(it.residuals(ritz, k)) <= rtol * ritz.s[0])


def _residual_norm(ritz: Ritz, probe_images: np.ndarray) -> float:
    """``2 max_i ||(I - U Uᵀ) A ω_i||``: bounds ``||(I - U Uᵀ) A||₂`` (see the Notes)."""
    U = ritz.U
    R = probe_images - U @ (U.T @ probe_images)
    return _PROBE_FACTOR * float(np.max(column_norms(R, ritz.place)))


def _tail(s: np.ndarray, rank: int) -> float:
    """``σ_{rank+1}`` of the projection (0 past its size)."""
    return float(s[rank]) if rank < s.size else 0.0


def _smallest_rank(estimates: np.ndarray, threshold: float) -> int | None:
    within = np.flatnonzero(estimates <= threshold)
    return int(within[0]) + 1 if within.size else None


def _rank_for_tol(ritz: Ritz, probe_images: np.ndarray, plan: _Plan) -> tuple[int | None, float]:
    """The smallest rank ``r <= k`` whose error estimate is ``<= tol · σ₁``, and that estimate."""
    perp = _residual_norm(ritz, probe_images)
    estimates = np.hypot(perp, [_tail(ritz.s, r) for r in range(1, plan.k + 1)])
    rank = _smallest_rank(estimates, plan.tol * ritz.s[0])
    return rank, float(estimates[(rank or plan.k) - 1])


def _finish(
    ritz: Ritz,
    rank: int,
    estimate: float,
    it: Iteration,
    method: str,
    step: int,
    stop: str,
    converged: bool,
) -> SVDResult:
    info = {"method": method, "n_iter": step, "block_size": it.b, "rank": rank, "stop": stop}
    U, s, Vt = ritz.left(rank), ritz.s[:rank].copy(), ritz.right_t(rank)
    return SVDResult(U, s, Vt, estimate, it.passes, converged, info)


def _dense(op: Operator, plan: _Plan, place: Placement) -> SVDResult:
    """The exact SVD, when fewer than three blocks fit in ``min(m, n)``."""
    n = op.shape[1]
    if not place.on_host:
        U, s, Vt = place.xp.linalg.svd(op.A, full_matrices=False)
        return _dense_result(U, place.host(s), Vt, plan, n)
    if isinstance(op, MatrixOperator):
        M = op.A.toarray() if is_sparse(op.A) else op.A
    else:
        M = op.matmat(np.eye(n, dtype=op.dtype))
    U, s, Vt = np.linalg.svd(np.asarray(M, dtype=op.dtype), full_matrices=False)
    return _dense_result(U, s, Vt, plan, n)


def _dense_result(U: Any, s: np.ndarray, Vt: Any, plan: _Plan, n: int) -> SVDResult:
    """The leading triplets of a full SVD (``s`` on the host), truncated at ``k`` or at ``tol``."""
    rank = plan.k
    if plan.tol is not None:
        tails = np.array([_tail(s, r) for r in range(1, plan.k + 1)])
        rank = _smallest_rank(tails, plan.tol * s[0]) or plan.k
    info = {"method": "dense", "n_iter": 0, "block_size": n, "rank": rank, "stop": "exact"}
    return SVDResult(U[:, :rank], s[:rank], Vt[:rank, :], _tail(s, rank), 1, True, info)
