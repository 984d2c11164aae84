"""Sketch-and-precondition least squares (Blendenpik / LSRN): a sketch ``S A``
gives a preconditioner ``M`` that makes ``A M`` well conditioned, and LSQR on
``A M`` converges in a few tens of iterations whatever the condition of ``A``."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import scipy.linalg as sla

from linalg._core.namespace import (
    HOST,
    Placement,
    array_kind,
    common_kind,
    namespace_of,
    numpy_dtype,
    placement_of,
    to_caller,
    to_host,
    to_numpy,
)
from linalg._core.operators import Operator, as_operator, is_linear_operator, is_sparse
from linalg._core.results import ConvergenceWarning, SolveResult
from linalg._core.validate import (
    as_float_array,
    check_bool,
    check_int,
    check_real,
    float_dtype,
    float_input,
    result_dtype,
)
from linalg.sketch._kinds import make_sketch
from linalg.solvers import lsqr

__all__ = ["sketched_lstsq"]

# LSQR's convergence factor per iteration on A M is about 1/sqrt(d/n); never
# assume better than this when sizing the default iteration limit.
_WORST_RATE = 1.0 / 1.1
_EXTRA_ITERATIONS = 100


def check_tall(shape: tuple[int, ...], name: str) -> None:
    """Raise unless ``shape`` has at least as many rows as columns."""
    if shape[0] < shape[1]:
        raise ValueError(
            f"{name} must have at least as many rows as columns (m >= n), got shape {shape}"
        )


class TriangularInverse(Operator):
    """``R⁻¹`` for an upper-triangular ``R``, applied by triangular solves."""

    def __init__(self, R: np.ndarray) -> None:
        super().__init__(R.shape, R.dtype)
        self.R = np.asfortranarray(R)

    def _matmat(self, V: np.ndarray) -> np.ndarray:
        return sla.solve_triangular(self.R, V, check_finite=False)

    def _rmatmat(self, V: np.ndarray) -> np.ndarray:
        return sla.solve_triangular(self.R, V, trans="T", check_finite=False)

    def dense(self) -> np.ndarray:
        """``R⁻¹`` as a matrix (triangular solves with the identity)."""
        return self.matmat(np.eye(self.shape[0], dtype=self.dtype))


@dataclass
class _Preconditioner:
    """The right preconditioner ``M``, the sketch-and-solve start ``X0 = M (...)``."""

    M: Any
    X0: np.ndarray
    rank: int
    kind: str


def sketched_lstsq(
    A: Any,
    b: Any,
    *,
    sketch: Any = "countsketch",
    oversampling: float = 4,
    rtol: float = 1e-12,
    maxiter: int | None = None,
    rng: Any = None,
    warn: bool = True,
) -> SolveResult:
    """Solve ``min ||A x - b||`` for a tall ``A`` by sketch-and-precondition LSQR.

    A random sketch ``S`` of ``d = oversampling · n`` rows compresses ``A``
    to ``S A``; the QR factorization ``S A = Q R`` gives the right
    preconditioner ``R⁻¹``, for which ``A R⁻¹`` has all its singular values
    in ``[1 - ε, 1 + ε]`` with high probability (``ε ≈ 1/√oversampling``).
    LSQR on ``A R⁻¹``, started from the sketch-and-solve answer
    ``x₀ = R⁻¹ Qᵀ S b``, then converges by a factor of about ``ε`` per
    iteration, independently of the condition number of ``A`` (up to
    ``1 / eps``).

    Parameters
    ----------
    A : array_like, sparse matrix or LinearOperator, shape (m, n)
        The matrix, ``m >= n``. NumPy, torch / JAX tensors on the CPU,
        scipy.sparse, or a :class:`scipy.sparse.linalg.LinearOperator` with
        ``rmatvec`` (the sketch is then applied through ``rmatmat``). A dense
        CuPy array or GPU tensor (or an array of another array-API library),
        with ``b`` of the same library, is solved where it lives (see Notes).
        A dask
        array runs on its scheduler: the sketch chunk by chunk, then
        conjugate gradients on the normal equations of ``A M`` (well
        conditioned), one pass over ``A`` per iteration, with only
        ``n``-vectors collected (``info["solver"] == "cgnr"``); ``x`` comes
        back as NumPy.
    b : array_like, shape (m,) or (m, k)
        Right-hand side(s); with ``k`` columns each is solved and reported on
        its own (one sketch and one factorization for all of them).
    sketch : str or SketchOperator
        ``"countsketch"`` (one pass over ``A``, the fastest), ``"sparse_sign"``,
        ``"srht"``, ``"gaussian"``, ``"rademacher"``; or a ready
        :class:`~linalg.sketch.SketchOperator` of shape ``(d, m)``.
    oversampling : float
        ``d = max(ceil(oversampling · n), n + 1)`` sketch rows, ``>= 1``.
        More rows make ``A R⁻¹`` better conditioned (fewer iterations) at a
        higher cost of the sketch and of its QR.
    rtol : float
        LSQR's ``atol`` and ``btol``: stop when ``||(A M)ᵀ r|| <= rtol ||A M|| ||r||``
        (least squares) or ``||r|| <= rtol ||r₀||`` (consistent system), on
        LSQR's estimates for the preconditioned problem. Because ``A M`` is
        well conditioned these estimates bound the true error:
        ``||A (x - x*)|| <~ rtol ||r||``, so ``||r||`` exceeds the optimum by a
        relative ``~ rtol² / 2``, and ``||x - x*|| <~ rtol κ(A) ||r|| / ||A||``.
    maxiter : int, optional
        LSQR iteration limit per column (default ``100`` plus the iterations
        ``ε`` predicts for ``rtol``).
    rng : None, int, numpy.random.Generator or RandomStream
        Seed of the sketch (SPEC 7); the same seed gives the same answer.
        Ignored when ``sketch`` is a SketchOperator.
    warn : bool
        Emit :class:`linalg.ConvergenceWarning` if a column did not converge.

    Returns
    -------
    SolveResult
        ``x`` (shape ``(n,)`` or ``(n, k)``, in the caller's array type),
        ``converged``, ``n_iter`` (LSQR iterations), ``residual_norm``
        (``||b - A x||`` recomputed from the returned ``x``), ``history``
        (LSQR's residual estimates) and ``info``: ``time_sketch``,
        ``time_factorization``, ``time_iterations`` (seconds), ``sketch_size``
        (``d``), ``rank`` (numerical rank of ``S A``), ``preconditioner``
        (``"qr"`` or ``"svd"``) and ``stop_reason`` (LSQR's).

    Raises
    ------
    ValueError
        If ``m < n``, ``b`` does not have ``m`` rows, ``A`` or ``b`` holds NaN
        or Inf, ``oversampling < 1`` or ``sketch`` is not a known kind.
    TypeError
        If ``A`` has no adjoint product (a plain callable) or is complex.
    linalg.LinAlgError
        If the residual becomes non-finite (an operator returned NaN or Inf).

    Notes
    -----
    The time goes to one sketch of ``[A, b]`` (one pass over ``A`` for a
    CountSketch, ``O(d m n)`` for a Gaussian sketch), one QR of the
    ``d × (n + k)`` sketch (``O(d n²)``), and per iteration one product with
    ``A``, one with ``Aᵀ`` and two triangular solves with ``R``: on a dense
    ``A`` the iterations are bound by memory bandwidth.

    If ``S A`` is numerically rank deficient (the reciprocal condition
    estimate of ``R`` below ``max(d, n) · eps``), ``R⁻¹`` is useless and the
    LSRN preconditioner is used instead: with the SVD ``R = U Σ Vᵀ``,
    ``M = V_r Σ_r⁻¹`` over the singular values above ``max(d, n) · eps · σ₁``
    (the rule of :func:`numpy.linalg.lstsq`), padded with zero columns. The
    iterates then stay in the row space of ``A`` and the answer is the
    minimum-norm least-squares solution. In the QR case ``A`` has full
    column rank and the solution is unique.

    On device data the sketch ``[S A, S b]`` is taken on the device (a
    ``sketch`` kind without a device path there is refused with a TypeError
    naming the ones that have one) and factored there by the library's QR;
    only the ``(n + k) × (n + k)`` triangular factor comes to the host, where
    the preconditioner is formed (the explicit ``R⁻¹``, or ``V_r Σ_r⁻¹``) and
    sent back, ``n × n``, with the ``n × k`` start. LSQR then runs on the
    device (:func:`~linalg.solvers.lsqr`'s device path, every column at
    once), and ``x`` comes back in the caller's array type.

    References
    ----------
    H. Avron, P. Maymounkov and S. Toledo, "Blendenpik: Supercharging
    LAPACK's least-squares solver", SIAM J. Sci. Comput. 32 (2010).

    X. Meng, M. A. Saunders and M. W. Mahoney, "LSRN: A parallel iterative
    solver for strongly over- or underdetermined systems", SIAM J. Sci.
    Comput. 36 (2014).

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.sketch import sketched_lstsq
    >>> gen = np.random.default_rng(0)
    >>> A = gen.standard_normal((2000, 20)) * np.geomspace(1, 1e-6, 20)
    >>> b = gen.standard_normal(2000)
    >>> res = sketched_lstsq(A, b, rng=0)
    >>> res.converged, res.info["preconditioner"], res.n_iter < 60
    (True, 'qr', True)
    >>> best = np.linalg.norm(A @ np.linalg.lstsq(A, b)[0] - b)
    >>> bool(res.residual_norm <= best * (1 + 1e-12))
    True
    """
    if array_kind(A).library == "dask":
        from linalg.sketch._dask import dask_sketched_lstsq

        options = {"oversampling": oversampling, "rtol": rtol, "maxiter": maxiter}
        return dask_sketched_lstsq(A, b, sketch=sketch, **options, rng=rng, warn=warn)
    check_real(oversampling, "oversampling", low=1.0)
    check_real(rtol, "rtol", low=0.0)
    check_int(maxiter, "maxiter", low=1, allow_none=True)
    check_bool(warn, "warn")
    kind = common_kind(A, b)
    A_in, A_dtype, B, placement = (_device_inputs if kind.via_namespace else _inputs)(A, b)
    m, n = A_in.shape
    check_tall(tuple(A_in.shape), "A")
    if B.shape[0] != m:
        raise ValueError(f"b must have {m} rows (the rows of A), got shape {tuple(B.shape)}")
    dtype = result_dtype(A_dtype, B.dtype)
    if placement.on_host:
        sketch_of = partial(_sketch, A=A_in, B=B.astype(dtype, copy=False), n=n)
    else:
        A_in, B_in = (placement.xp.astype(Y, placement.dtype(dtype)) for Y in (A_in, B))
        sketch_of = partial(_device_sketch, A=A_in, B=B_in, sketch=sketch)
    pre, info = sketch_and_factor(sketch, (m, n), dtype, oversampling, rng, sketch_of)
    M = pre.M if placement.on_host else placement.put(_dense(pre.M).astype(dtype))
    X0 = placement.put(pre.X0.astype(dtype, copy=False))

    start = time.perf_counter()
    iterations = default_maxiter(rtol, info["sketch_size"], n, dtype, maxiter)
    res = lsqr(
        A_in,
        B,
        x0=X0[:, 0] if B.ndim == 1 else X0,
        M=M,
        atol=rtol,
        btol=rtol,
        conlim=math.inf,
        maxiter=iterations,
        warn=False,
    )
    info |= {"time_iterations": time.perf_counter() - start}
    if warn:
        warn_if_not_converged(res.converged, res.n_iter, res.residual_norm, rtol, "LSQR", 3)
    info |= {"stop_reason": res.info["stop_reason"]}
    return SolveResult(
        to_caller(res.x, kind),
        res.converged,
        res.n_iter,
        res.residual_norm,
        res.history,
        info,
    )


def _inputs(A: Any, b: Any) -> tuple[Any, np.dtype, np.ndarray, Placement]:
    """Host ``A`` (as both the sketch and lsqr take it) with its float dtype, and
    ``b`` as NumPy."""
    A_in, A_dtype = _check_matrix(A)
    return A_in, A_dtype, as_float_array(to_numpy(b, "b"), "b", ndim=(1, 2)), HOST


def _device_inputs(A: Any, b: Any) -> tuple[Any, np.dtype, Any, Placement]:
    """``A`` and ``b`` where they live: both dense arrays of one library."""
    B, _, kind = float_input(b, "b", ndim=(1, 2))
    if array_kind(A) != kind:
        raise TypeError(
            f"b holds {kind}, so A must be a dense array of the same library (got "
            f"{type(A).__name__}): pass A as one, or move b to the host"
        )
    A_in = float_input(A, "A", ndim=2)[0]
    return A_in, numpy_dtype(A_in.dtype), B, placement_of(A_in)


def _check_matrix(A: Any) -> tuple[Any, np.dtype]:
    """``A`` as something both the sketch and lsqr take, with its float dtype."""
    if isinstance(A, Operator):
        A = A.as_linear_operator()
    if is_linear_operator(A):
        if len(A.shape) != 2:
            raise ValueError(f"A must be 2-D, got shape {A.shape}")
        return A, float_dtype(A.dtype if A.dtype is not None else np.float64, "A")
    if callable(A) and not hasattr(A, "shape"):
        raise TypeError(
            "A must be a matrix, a sparse matrix or a LinearOperator with rmatvec; a plain "
            "callable gives only A v, and sketched_lstsq needs Aᵀ v too"
        )
    A = to_numpy(A, "A")
    if is_sparse(A):
        op = as_operator(A, "A")  # validates: 2-D, non-empty, real, finite; CSR or CSC
        return op.A, op.dtype
    A = as_float_array(A, "A", ndim=2)
    return A, A.dtype


def _sketch(S: Any, A: Any, B: np.ndarray, n: int) -> np.ndarray:
    """``[S A, S B]`` as one Fortran-ordered ``d × (n + k)`` array, ready for QR."""
    B2 = B.reshape(B.shape[0], -1)
    SA = S @ A
    SA = SA.toarray() if is_sparse(SA) else np.asarray(SA)
    W = np.empty((S.shape[0], n + B2.shape[1]), dtype=B.dtype, order="F")
    W[:, :n] = SA
    W[:, n:] = S @ B2
    return W


def _device_sketch(S: Any, A: Any, B: Any, sketch: Any) -> Any:
    """``[S A, S B]`` on the device of ``A`` (``d × (n + k)``)."""
    xp = namespace_of(A)
    try:
        SA = S @ A
    except TypeError as exc:
        raise TypeError(
            f"sketched_lstsq cannot take the {sketch!r} sketch of A here: {exc} (the "
            "'gaussian' and 'rademacher' sketches run on every device)"
        ) from exc
    return xp.concat([SA, S @ xp.reshape(B, (B.shape[0], -1))], axis=1)


def _triangular_factor(W: Any) -> np.ndarray:
    """``R`` of ``W = Q R``, on the host: by LAPACK for a host ``W``; for a device
    ``W`` by its library's QR, of which only ``R`` comes to the host."""
    if array_kind(W).via_namespace:
        return to_host(namespace_of(W).linalg.qr(W)[1])
    (Raug,) = sla.qr(W, mode="r", overwrite_a=True, check_finite=False)
    return Raug


def _dense(M: Any) -> np.ndarray:
    """The preconditioner as a matrix, to send to a device."""
    return M.dense() if isinstance(M, TriangularInverse) else M


def _preconditioner(W: Any, n: int, *, tol: float) -> _Preconditioner:
    """QR of ``W = [S A, S B]``: ``R⁻¹`` and ``X0 = R⁻¹ Qᵀ S B``, or the LSRN
    SVD preconditioner if ``R`` is numerically singular (see the Notes above)."""
    Raug = _triangular_factor(W)
    R = np.array(Raug[:n, :n], order="F")
    Z = Raug[:n, n:]  # Qᵀ S B
    (trcon,) = sla.get_lapack_funcs(("trcon",), (R,))
    rcond, _ = trcon(R, norm="1", uplo="U", diag="N")
    if rcond > tol:
        M = TriangularInverse(R)
        return _Preconditioner(M, M.matmat(Z), n, "qr")
    U, s, Vt = sla.svd(R, check_finite=False)
    keep = s > tol * s[0]
    weights = np.zeros_like(s)
    weights[keep] = 1.0 / s[keep]
    N = Vt.T * weights
    return _Preconditioner(N, N @ (U.T @ Z), int(keep.sum()), "svd")


def sketch_and_factor(
    sketch: Any,
    shape: tuple[int, int],
    dtype: np.dtype,
    oversampling: float,
    rng: Any,
    sketch_of: Callable[[Any], np.ndarray],
) -> tuple[_Preconditioner, dict[str, Any]]:
    """The first two stages of both solvers: a sketch ``S`` of ``oversampling · n``
    rows (at least ``n + 1``), ``W = [S A, S B]`` from ``sketch_of(S)``, and the
    preconditioner from ``W``; with the info both report about them."""
    m, n = shape
    start = time.perf_counter()
    S = make_sketch(sketch, max(math.ceil(oversampling * n), n + 1), m, rng=rng, dtype=dtype)
    d = S.shape[0]
    W = sketch_of(S)
    time_sketch = time.perf_counter() - start
    start = time.perf_counter()
    pre = _preconditioner(W, n, tol=max(d, n) * float(np.finfo(dtype).eps))
    info = {"time_sketch": time_sketch, "time_factorization": time.perf_counter() - start}
    return pre, info | {"sketch_size": d, "rank": pre.rank, "preconditioner": pre.kind}


def warn_if_not_converged(
    converged: Any, n_iter: Any, residual: Any, rtol: float, method: str, stacklevel: int
) -> None:
    """The ConvergenceWarning of :func:`sketched_lstsq` (``stacklevel`` from here)."""
    if not np.all(converged):
        warnings.warn(
            f"sketched_lstsq did not converge after {int(np.max(n_iter))} {method} iterations "
            f"(residual norm {float(np.max(residual)):.3g}, rtol {rtol:g})",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )


def default_maxiter(rtol: float, d: int, n: int, dtype: np.dtype, maxiter: int | None) -> int:
    """``maxiter`` if given, else 100 plus the iterations a convergence factor of
    ``√(n/d)`` needs to reach ``rtol``."""
    if maxiter is not None:
        return maxiter
    target = max(rtol, float(np.finfo(dtype).eps))
    rate = min(math.sqrt(n / d), _WORST_RATE)
    return _EXTRA_ITERATIONS + math.ceil(math.log(target) / math.log(rate))
