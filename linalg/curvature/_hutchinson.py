"""Randomized estimates of a matrix's trace and diagonal from products alone.

Probes are Rademacher vectors from :class:`linalg._core.random.RandomStream`:
the probe block of a call is ``as_random_stream(rng).rademacher((dim, k))``,
so a seed gives the same probes, and the same estimate, on every machine.
Products are taken a block at a time (``op.matmat``), so a dense or sparse
matrix pays one multiplication per phase.

Device data (a CuPy array, a GPU tensor, an array of another array-API
library; or a callable with ``like=`` such an array) is estimated where it
lives: the probes are drawn there once (on the GPU for CuPy and torch CUDA
data), with the numbers NumPy gets from the same stream; the products, the
tall QR factors and the projections stay there, and only ``k``-sized results
(per-probe samples, small projected matrices) come back to the host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from linalg._core.namespace import (
    ArrayKind,
    Placement,
    array_kind,
    namespace_of,
    numpy_dtype,
    placement_of,
)
from linalg._core.operators import as_operator, is_cupyx_sparse
from linalg._core.random import as_random_stream
from linalg._core.results import EstimateResult, LinAlgError
from linalg._core.validate import check_int, float_dtype
from linalg.curvature._callables import checked_product
from linalg.solvers._device import block_operator, column_dots, fetch

__all__ = ["hutchinson_diag", "hutchinson_trace"]

# The fewest products each method can turn into an estimate with a standard error.
_MIN_MATVECS = {"hutchinson": 2, "hutch++": 4, "xtrace": 4}
# What `like` may not be: it names an array library and device.
_NOT_ARRAYS = ("python", "scipy.sparse", "dask")


@dataclass(frozen=True)
class _Probed:
    """A square operator ``A`` and where its probes are made.

    ``op.matmat`` multiplies blocks of ``place`` (NumPy on the host, else the
    device library ``xp``); probes have the NumPy ``dtype``.
    """

    op: Any
    place: Placement
    dtype: np.dtype

    @property
    def dim(self) -> int:
        return self.op.shape[0]

    @property
    def xp(self) -> Any:
        """The namespace of the blocks (array-api-compat's NumPy on the host)."""
        return namespace_of(np.empty(0)) if self.place.on_host else self.place.xp

    def probes(self, stream: Any, k: int) -> Any:
        """The call's ``(dim, k)`` Rademacher block, drawn where the blocks live."""
        return self.place.draw(stream, "rademacher", (self.dim, k), dtype=self.dtype)

    def products(self, X: Any) -> Any:
        """``A X``, refusing NaN or Inf from the operator (one look from the host)."""
        out = self.op.matmat(X)
        if self.place.on_host:
            out = np.asarray(out)
        if not bool(self.xp.all(self.xp.isfinite(out))):
            raise LinAlgError("matvec returned NaN or Inf")
        return out


def _probed(matvec: Any, dim: Any, like: Any) -> _Probed:
    """Validate ``matvec``, ``dim`` and ``like``: ``matvec`` as an operator on probes
    made where ``like`` lives (a callable), or where ``matvec`` lives (the rest)."""
    dim = check_int(dim, "dim", low=1, allow_none=True)
    plain_callable = callable(matvec) and not hasattr(matvec, "shape")
    if plain_callable and dim is None:
        raise TypeError("dim is required when matvec is a callable (it has no shape of its own)")
    kind, place, dtype = _where(matvec, like)
    shape = None if dim is None else (dim, dim)
    if place.on_host:
        op = as_operator(matvec, "matvec", shape=shape, dtype=dtype, kind=kind)
    else:
        function = _on_device(matvec) if plain_callable else matvec
        op = block_operator(function, "matvec", place.xp, kind, size=dim)
    if op.shape[0] != op.shape[1]:
        raise ValueError(f"matvec must be square, got shape {op.shape}")
    if dim is not None and op.shape[0] != dim:
        raise ValueError(f"dim is {dim} but matvec has shape {op.shape}; they must match")
    return _Probed(op, place, numpy_dtype(op.dtype) if op.dtype is not None else dtype)


def _where(matvec: Any, like: Any) -> tuple[ArrayKind, Placement, np.dtype]:
    """Where the probes are made, and their dtype for a callable: ``like``'s
    library, device and float dtype if given (float64 otherwise); else
    ``matvec``'s own place, host data on the host."""
    own = array_kind(matvec)
    if like is None:
        on_device = matvec.data if is_cupyx_sparse(matvec) else matvec
        return own, placement_of(on_device), np.dtype(np.float64)
    kind = array_kind(like)
    if kind.library in _NOT_ARRAYS:
        raise TypeError(
            f"like must be an array (NumPy, CuPy, a torch or JAX tensor, ...) of the library "
            f"and device the probes are made in, got {type(like).__name__}"
        )
    if own.library != "python" and own != kind and (own.via_namespace or kind.via_namespace):
        raise TypeError(
            f"like holds {kind} and matvec {own}: like says where a callable's probes are "
            "made; pass like where matvec lives, or leave it out"
        )
    return kind, placement_of(like), float_dtype(numpy_dtype(like.dtype), "like")


def _on_device(matvec: Any) -> Any:
    """A callable ``matvec`` whose products are checked to stay on the probes' device."""

    def product(z: Any) -> Any:
        remedy = "pass a matvec that computes on like's device, or leave like out"
        return checked_product(matvec(z), z, "matvec", remedy=remedy)

    return product


def _mean_and_error(samples: Any, axis: int = -1) -> tuple[Any, Any]:
    """The sample mean and its standard error (sample standard deviation over √n)."""
    xp, n = namespace_of(samples), samples.shape[axis]
    return xp.mean(samples, axis=axis), xp.std(samples, axis=axis, correction=1) / math.sqrt(n)


def hutchinson_trace(
    matvec: Any,
    dim: int | None = None,
    *,
    n_matvecs: int,
    method: str = "hutch++",
    rng: Any = None,
    like: Any = None,
) -> EstimateResult:
    """Estimate ``trace(A)`` from products with ``A``.

    Parameters
    ----------
    matvec : array_like, sparse matrix, LinearOperator, Operator or callable
        The square matrix ``A``. A callable ``v -> A v`` is called with
        vectors of shape ``(dim,)``: NumPy float64 ones, or, with ``like``,
        vectors of ``like``'s array type, device and dtype (a torch closure
        with ``like=`` a torch tensor receives torch tensors). Other forms
        keep their dtype (float32 stays float32). A CuPy array, GPU
        tensor or array of another array-API library is multiplied where it
        lives (see the module notes): probes, products and QR factors stay on
        its device.
    dim : int, optional
        The size of ``A``; required for a callable, checked otherwise.
    n_matvecs : int
        The budget of products with ``A``.

        - ``"hutchinson"``: ``n_matvecs`` probes (at least 2).
        - ``"hutch++"``: a sketch of ``s = min(n_matvecs // 3, dim)`` columns,
          ``s`` products for the exact part, and ``n_matvecs - 2 s`` probes of
          the deflated rest (at least 4 in all).
        - ``"xtrace"``: ``s = min(n_matvecs // 2, dim)`` probes, each used
          twice; an odd budget leaves one product unspent (at least 4).
    method : {"hutch++", "hutchinson", "xtrace"}
        ``"hutchinson"``: Girard–Hutchinson with Rademacher probes, the mean
        of ``zᵀ A z``. ``"hutch++"`` (Meyer, Musco, Musco and Woodruff, SOSA
        2021): ``Q = orth(A S)``, the exact ``trace(Qᵀ A Q)`` plus Hutchinson
        on ``(I - QQᵀ) A (I - QQᵀ)``. ``"xtrace"`` (Epperly, Tropp and Webber,
        SIMAX 2024): the mean over probes ``ω_i`` of the estimate whose
        basis ``Q_i`` spans ``A Ω`` without ``ω_i``, and which checks ``ω_i``
        against it: ``trace(Q_iᵀ A Q_i) + ω_iᵀ (I - Q_iQ_iᵀ) A (I - Q_iQ_iᵀ) ω_i``.
    rng : None, int, numpy.random.Generator or RandomStream
        Source of the probes (SPEC 7).
    like : array, optional
        For a callable ``matvec``, an array whose library, device and float
        dtype the probes are made in (the NumPy ``like=`` convention, NEP
        35): with a CuPy array or a GPU tensor, a closure computing on that
        device receives probes there, drawn there from the same stream
        (so the estimate equals the NumPy one to rounding). With an array
        ``matvec`` it must live where ``matvec`` does.

    Returns
    -------
    EstimateResult
        ``estimate`` (float), ``std_error`` (float), ``n_matvecs`` (the
        products spent) and ``info`` (``method``; ``sketch_size`` and
        ``n_probes`` where they apply). ``std_error`` is the standard error of
        the mean of the per-probe estimates: all of them for ``"hutchinson"``,
        the deflated part's for ``"hutch++"`` (the exact part has none), and
        the leave-one-out estimates' for ``"xtrace"``, XTrace's own error
        estimate.

    Raises
    ------
    ValueError
        If ``n_matvecs`` is below the method's minimum, ``dim`` does not
        match, or ``method`` is unknown.
    TypeError
        If ``like`` is not an array, lives elsewhere than an array
        ``matvec``, or a callable's products leave ``like``'s device.
    linalg.LinAlgError
        If ``matvec`` returns NaN or Inf.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.curvature import hutchinson_trace
    >>> Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((200, 200)))
    >>> A = (Q / np.arange(1.0, 201.0) ** 2) @ Q.T  # eigenvalues 1/j²
    >>> res = hutchinson_trace(A, n_matvecs=30, rng=0)
    >>> print(f"{res.estimate:.3f} ± {res.std_error:.3f}, exact {np.trace(A):.3f}")
    1.653 ± 0.010, exact 1.640
    >>> res.n_matvecs, res.info
    (30, {'method': 'hutch++', 'sketch_size': 10, 'n_probes': 10})

    A callable with a known size:

    >>> res = hutchinson_trace(lambda v: 3.0 * v, 50, n_matvecs=10, method="hutchinson", rng=1)
    >>> res.estimate, res.std_error
    (150.0, 0.0)
    """
    if method not in _MIN_MATVECS:
        raise ValueError(
            f"method must be one of {', '.join(map(repr, _MIN_MATVECS))}, got {method!r}"
        )
    probed = _probed(matvec, dim, like)
    n_matvecs = check_int(n_matvecs, "n_matvecs")
    low = _MIN_MATVECS[method]
    if n_matvecs < low:
        raise ValueError(f"n_matvecs must be >= {low} for method {method!r}, got {n_matvecs}")
    stream = as_random_stream(rng)
    estimator = {"hutchinson": _hutchinson, "hutch++": _hutch_pp, "xtrace": _xtrace}[method]
    estimate, std_error, used, info = estimator(probed, n_matvecs, stream)
    return EstimateResult(float(estimate), float(std_error), used, {"method": method} | info)


def _hutchinson(p: _Probed, n: int, stream: Any) -> tuple:
    Z = p.probes(stream, n)
    (samples,) = fetch(p.xp, column_dots(p.xp, Z, p.products(Z)))
    estimate, std_error = _mean_and_error(samples)
    return estimate, std_error, n, {}


def _hutch_pp(p: _Probed, n: int, stream: Any) -> tuple:
    xp = p.xp
    s = min(n // 3, p.dim)
    g = n - 2 * s
    Z = p.probes(stream, s + g)
    Q, _ = xp.linalg.qr(p.products(Z[:, :s]))
    G = Z[:, s:]
    PG = G - Q @ (Q.T @ G)
    exact, samples = fetch(
        xp, column_dots(xp, Q, p.products(Q)), column_dots(xp, PG, p.products(PG))
    )
    mean, std_error = _mean_and_error(samples)
    return exact.sum() + mean, std_error, n, {"sketch_size": s, "n_probes": g}


def _xtrace(p: _Probed, n: int, stream: Any) -> tuple:
    xp = p.xp
    s = min(n // 2, p.dim)
    Omega = p.probes(stream, s)
    Y = p.products(Omega)
    Q, R, perm = _pivoted_qr(Y, p.place)
    Z = p.products(Q)
    H, W, T, dots = fetch(xp, Q.T @ Z, Q.T @ Omega, Z.T @ Omega, column_dots(xp, Omega, Y))
    # Pivoting keeps the leave-one-out bases defined when A Ω is rank-deficient;
    # the estimator is symmetric in the probes, so their order does not matter.
    W, T, dots = W[:, perm], T[:, perm], dots[perm]
    S = _leave_one_out_normals(R)
    d = np.einsum("ji,ji->i", S, W)
    C = W - S * d  # Q C[:, i] is the projection of ω_i on the basis without ω_i
    samples = (
        np.trace(H)
        - np.einsum("ji,ji->i", S, H @ S)
        + dots
        - np.einsum("ji,ji->i", T, C)
        - np.einsum("ji,ji->i", C, R)
        + np.einsum("ji,ji->i", C, H @ C)
    )
    estimate, std_error = _mean_and_error(samples)
    return estimate, std_error, 2 * s, {"n_probes": s}


def _pivoted_qr(Y: Any, place: Placement) -> tuple[Any, np.ndarray, np.ndarray]:
    """``Y[:, perm] = Q R`` with column pivoting: ``Q`` where ``Y`` lives, ``R`` and
    ``perm`` on the host. A device ``Y`` is first factored without pivoting
    (``Y = Q₀ R₀``, the array API has no pivoted QR) and the small ``R₀`` with
    pivoting on the host, which picks the same columns (``R₀`` has ``Y``'s
    column norms)."""
    if place.on_host:
        return scipy.linalg.qr(Y, mode="economic", pivoting=True)
    Q0, R0 = place.xp.linalg.qr(Y)
    Q1, R, perm = scipy.linalg.qr(place.host(R0), pivoting=True)
    return Q0 @ place.put(Q1), R, perm


def _leave_one_out_normals(R: np.ndarray) -> np.ndarray:
    """Unit columns ``s_i`` orthogonal to every column of ``R`` but the ``i``-th.

    ``s_i`` is the normalized ``i``-th column of ``R⁻ᵀ``. A numerically
    singular trailing block of the pivoted ``R`` (its rows below the
    numerical rank) is replaced by a tiny multiple of the identity first.
    """
    s = R.shape[0]
    diagonal = np.abs(np.diagonal(R))
    tol = max(R.shape) * np.finfo(R.dtype).eps * diagonal[0]
    rank = int(np.count_nonzero(diagonal > tol))
    if rank < s:
        R = R.copy()
        R[rank:, rank:] = np.eye(s - rank, dtype=R.dtype) * (tol if tol > 0 else 1.0)
    S = scipy.linalg.solve_triangular(R, np.eye(s, dtype=R.dtype), trans="T")
    return S / np.linalg.norm(S, axis=0)


def hutchinson_diag(
    matvec: Any,
    dim: int | None = None,
    *,
    n_matvecs: int,
    rng: Any = None,
    like: Any = None,
) -> EstimateResult:
    """Estimate the diagonal of ``A`` from products with ``A``.

    The estimator of Bekas, Kokiopoulou and Saad (Appl. Numer. Math. 2007)
    with Rademacher probes: ``diag(A) ≈ (1/m) Σ_j z_j ⊙ A z_j`` (for
    Rademacher ``z``, ``z ⊙ z = 1``). Entry ``i`` has variance
    ``Σ_{k≠i} A_ik² / m``; the estimate is exact for a diagonal ``A``.

    Parameters
    ----------
    matvec : array_like, sparse matrix, LinearOperator, Operator or callable
        The square matrix ``A``, as for :func:`hutchinson_trace`.
    dim : int, optional
        The size of ``A``; required for a callable, checked otherwise.
    n_matvecs : int
        Probes, one product each (at least 2).
    rng : None, int, numpy.random.Generator or RandomStream
        Source of the probes (SPEC 7).
    like : array, optional
        For a callable ``matvec``: the array whose library, device and float
        dtype the probes are made in, as for :func:`hutchinson_trace`.

    Returns
    -------
    EstimateResult
        ``estimate`` and ``std_error``: arrays of shape ``(dim,)`` in the
        operator's dtype (float64 for a callable without ``like``): NumPy
        for host data, whatever array type ``A`` came in; arrays of the
        device library on the device for device data (or a device
        ``like``); ``n_matvecs``; ``info`` (``method``).

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.curvature import hutchinson_diag
    >>> A = np.diag([1.0, 2.0, 3.0])
    >>> hutchinson_diag(A, n_matvecs=2, rng=0).estimate
    array([1., 2., 3.])
    """
    probed = _probed(matvec, dim, like)
    n_matvecs = check_int(n_matvecs, "n_matvecs")
    if n_matvecs < 2:
        raise ValueError(f"n_matvecs must be >= 2, got {n_matvecs}")
    Z = probed.probes(as_random_stream(rng), n_matvecs)
    estimate, std_error = _mean_and_error(Z * probed.products(Z), axis=1)
    return EstimateResult(estimate, std_error, n_matvecs, {"method": "hutchinson"})
