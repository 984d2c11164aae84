"""Randomized estimates of a matrix's trace and diagonal from products alone.

Probes are Rademacher vectors from :class:`linalg._core.random.RandomStream`:
the probe block of a call is ``as_random_stream(rng).rademacher((dim, k))``,
so a seed gives the same probes, and the same estimate, on every machine.
Products are taken a block at a time (``op.matmat``), so a dense or sparse
matrix pays one multiplication per phase.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from linalg._core.operators import Operator, as_operator
from linalg._core.random import as_random_stream
from linalg._core.results import EstimateResult, LinAlgError
from linalg._core.validate import check_int

__all__ = ["hutchinson_diag", "hutchinson_trace"]

# The fewest products each method can turn into an estimate with a standard error.
_MIN_MATVECS = {"hutchinson": 2, "hutch++": 4, "xtrace": 4}


def _operator(matvec: Any, dim: Any) -> Operator:
    """``matvec`` as a square :class:`Operator` of size ``dim``."""
    dim = check_int(dim, "dim", low=1, allow_none=True)
    shape = None if dim is None else (dim, dim)
    if callable(matvec) and not hasattr(matvec, "shape") and dim is None:
        raise TypeError("dim is required when matvec is a callable (it has no shape of its own)")
    op = as_operator(matvec, "matvec", shape=shape)
    if op.shape[0] != op.shape[1]:
        raise ValueError(f"matvec must be square, got shape {op.shape}")
    if dim is not None and op.shape[0] != dim:
        raise ValueError(f"dim is {dim} but matvec has shape {op.shape}; they must match")
    return op


def _products(op: Operator, X: np.ndarray) -> np.ndarray:
    """``A X``, refusing NaN or Inf from the operator."""
    out = np.asarray(op.matmat(X))
    if not np.isfinite(out).all():
        raise LinAlgError("matvec returned NaN or Inf")
    return out


def _column_dots(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``x_jᵀ y_j`` for every column ``j``, accumulated in float64."""
    return np.einsum("ij,ij->j", X, Y, dtype=np.float64)


def _mean_and_error(samples: np.ndarray, axis: int = -1) -> tuple[Any, Any]:
    """The sample mean and its standard error (sample standard deviation over √n)."""
    n = samples.shape[axis]
    return samples.mean(axis=axis), samples.std(axis=axis, ddof=1) / np.sqrt(n)


def hutchinson_trace(
    matvec: Any,
    dim: int | None = None,
    *,
    n_matvecs: int,
    method: str = "hutch++",
    rng: Any = None,
) -> EstimateResult:
    """Estimate ``trace(A)`` from products with ``A``.

    Parameters
    ----------
    matvec : array_like, sparse matrix, LinearOperator, Operator or callable
        The square matrix ``A``. A callable ``v -> A v`` is called with NumPy
        vectors of shape ``(dim,)`` (wrap a torch closure as
        ``lambda v: f(torch.from_numpy(v))``); it computes in float64. Other
        forms keep their dtype (float32 stays float32).
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
    op = _operator(matvec, dim)
    n_matvecs = check_int(n_matvecs, "n_matvecs")
    low = _MIN_MATVECS[method]
    if n_matvecs < low:
        raise ValueError(f"n_matvecs must be >= {low} for method {method!r}, got {n_matvecs}")
    stream = as_random_stream(rng)
    estimator = {"hutchinson": _hutchinson, "hutch++": _hutch_pp, "xtrace": _xtrace}[method]
    estimate, std_error, used, info = estimator(op, n_matvecs, stream)
    return EstimateResult(float(estimate), float(std_error), used, {"method": method} | info)


def _hutchinson(op: Operator, n: int, stream: Any) -> tuple:
    Z = stream.rademacher((op.shape[0], n), dtype=op.dtype)
    estimate, std_error = _mean_and_error(_column_dots(Z, _products(op, Z)))
    return estimate, std_error, n, {}


def _hutch_pp(op: Operator, n: int, stream: Any) -> tuple:
    s = min(n // 3, op.shape[0])
    g = n - 2 * s
    Z = stream.rademacher((op.shape[0], s + g), dtype=op.dtype)
    Q, _ = np.linalg.qr(_products(op, Z[:, :s]))
    exact = _column_dots(Q, _products(op, Q)).sum()
    G = Z[:, s:]
    PG = G - Q @ (Q.T @ G)
    mean, std_error = _mean_and_error(_column_dots(PG, _products(op, PG)))
    return exact + mean, std_error, n, {"sketch_size": s, "n_probes": g}


def _xtrace(op: Operator, n: int, stream: Any) -> tuple:
    s = min(n // 2, op.shape[0])
    Omega = stream.rademacher((op.shape[0], s), dtype=op.dtype)
    Y = _products(op, Omega)
    # Pivoting keeps the leave-one-out bases defined when A Ω is rank-deficient;
    # the estimator is symmetric in the probes, so their order does not matter.
    Q, R, perm = scipy.linalg.qr(Y, mode="economic", pivoting=True)
    Omega, Y = Omega[:, perm], Y[:, perm]
    Z = _products(op, Q)
    H, W, T = Q.T @ Z, Q.T @ Omega, Z.T @ Omega
    S = _leave_one_out_normals(R)
    d = np.einsum("ji,ji->i", S, W)
    C = W - S * d  # Q C[:, i] is the projection of ω_i on the basis without ω_i
    samples = (
        np.trace(H)
        - np.einsum("ji,ji->i", S, H @ S)
        + _column_dots(Omega, Y)
        - np.einsum("ji,ji->i", T, C)
        - np.einsum("ji,ji->i", C, R)
        + np.einsum("ji,ji->i", C, H @ C)
    )
    estimate, std_error = _mean_and_error(samples)
    return estimate, std_error, 2 * s, {"n_probes": s}


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

    Returns
    -------
    EstimateResult
        ``estimate`` and ``std_error``: NumPy arrays of shape ``(dim,)`` in
        the operator's dtype (float64 for a callable), whatever array type
        ``A`` came in; ``n_matvecs``; ``info`` (``method``).

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.curvature import hutchinson_diag
    >>> A = np.diag([1.0, 2.0, 3.0])
    >>> hutchinson_diag(A, n_matvecs=2, rng=0).estimate
    array([1., 2., 3.])
    """
    op = _operator(matvec, dim)
    n_matvecs = check_int(n_matvecs, "n_matvecs")
    if n_matvecs < 2:
        raise ValueError(f"n_matvecs must be >= 2, got {n_matvecs}")
    Z = as_random_stream(rng).rademacher((op.shape[0], n_matvecs), dtype=op.dtype)
    estimate, std_error = _mean_and_error(Z * _products(op, Z), axis=1)
    return EstimateResult(estimate, std_error, n_matvecs, {"method": "hutchinson"})
