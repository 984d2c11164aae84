"""Inverse p-th roots of symmetric positive definite matrices, ``(A + eps I)^(-1/p)``."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from linalg._core.namespace import device_of, to_caller
from linalg._core.results import ConvergenceWarning, LinAlgError
from linalg._core.validate import check_int, check_real, check_symmetric, float_input

__all__ = ["matrix_inverse_root"]

METHODS = ("auto", "eigh", "newton")
# Newton's default stopping tolerance on max|M_k - I|, by dtype.
_NEWTON_TOL = {"float32": 1e-4, "float64": 1e-10}


def matrix_inverse_root(
    A: Any,
    p: int,
    *,
    eps: float = 0.0,
    method: str = "auto",
    maxiter: int = 100,
    tol: float | None = None,
) -> Any:
    """Return ``(A + eps I)^(-1/p)`` for symmetric positive (semi)definite ``A``.

    Parameters
    ----------
    A : array_like, shape (..., n, n)
        A symmetric matrix, or a batch of them: NumPy, torch / JAX tensors on
        the CPU, or arrays computed on their own device through their
        array-API namespace (CuPy, torch / JAX GPU tensors, any array-API
        library) and returned there. Only its symmetric part ``(A + Aᵀ) / 2``
        is used.
    p : int
        The root, ``p >= 1`` (``p = 1`` gives the inverse).
    eps : float
        Damping added to the diagonal inside the root, ``eps >= 0``.
    method : {"auto", "eigh", "newton"}
        ``"eigh"``: an eigendecomposition (in float64, also for float32 input),
        eigenvalues raised to ``-1/p``. ``"newton"``: the coupled Newton
        iteration (matrix products only); if it diverges or does not reach
        ``tol`` within ``maxiter`` steps, the answer comes from ``"eigh"`` with a
        :class:`linalg.ConvergenceWarning`. ``"auto"``: the faster of the two
        where measured, eigh (see Notes; on GPUs not measured yet).
    maxiter : int
        Newton's iteration limit.
    tol : float, optional
        Newton stops when ``max|M_k - I| <= tol`` (default ``1e-4`` in float32,
        ``1e-10`` in float64).

    Returns
    -------
    array
        ``(A + eps I)^(-1/p)``, symmetric, shaped and typed like ``A``, in the
        caller's array type. Never NaN.

    Raises
    ------
    linalg.LinAlgError
        If ``A + eps I`` is not numerically positive definite; the message
        gives an ``eps`` that would do.

    Notes
    -----
    Newton is the coupled iteration of Guo & Higham (2006), "A Schur-Newton
    method for the matrix p-th root and its inverse": ``X_0 = I / c``,
    ``M_0 = (A + eps I) / c^p`` with ``c = (2 b / (p + 1))^(1/p)``, ``b`` the
    smaller of the Frobenius norm and the largest absolute row sum of
    ``A + eps I`` (both bound its largest eigenvalue), so that the spectrum of
    ``M_0`` lies in ``(0, (p + 1) / 2]``;
    ``T_k = ((p + 1) I - M_k) / p``, ``X_{k+1} = X_k T_k``,
    ``M_{k+1} = T_k^p M_k``. Then ``M_k = X_k^p (A + eps I) -> I``.

    Negative eigenvalues of ``A`` within ``n u max|λ|`` of zero (``u`` the unit
    roundoff of ``A``'s dtype) are rounding noise of a semidefinite matrix and
    count as zero, so a rank-deficient ``A`` with ``eps > 0`` always has a
    finite root; other eigenvalues ``<= -eps`` raise :class:`linalg.LinAlgError`.

    "auto" rule: measured on this project's 2-core CPU (OpenBLAS, NumPy 2.4),
    SPD matrices with eigenvalues spread geometrically over ``[1e-4, 1]``, default
    ``tol``, seconds (Newton at n = 4096: per-iteration time times the 14-18
    iterations it took at n = 1024):

    ========  =======  ============  ============  ===============
    n         dtype    eigh          Newton, p=2   Newton, p=4
    ========  =======  ============  ============  ===============
    256       float64  0.006         0.023         0.025
    256       float32  0.005         0.010         0.012
    1024      float64  0.15          1.4           1.6
    1024      float32  0.17          0.66          0.73
    4096      float64  8.8           ~86           ~89
    4096      float32  8.2           ~35           ~39
    ========  =======  ============  ============  ===============

    Newton spends about 15-18 iterations of 3-4 matrix products each, some
    10x the flops of eigh, and on the CPU both run at BLAS speed, so eigh wins
    at every size and "auto" is eigh. (Newton may pay off where matrix
    products are much faster than eigendecompositions, as on GPUs; arrays on a
    GPU are computed there, but "auto" stays eigh until a GPU measurement says
    otherwise.)
    eigh runs in float64 also for float32 input: that cost 1.2-1.3x a float32
    eigh and gives the exact root of the float32 matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.kron import matrix_inverse_root
    >>> A = np.array([[4.0, 0.0], [0.0, 16.0]])
    >>> matrix_inverse_root(A, 2)
    array([[0.5 , 0.  ],
           [0.  , 0.25]])
    >>> X = matrix_inverse_root(A, 4, method="newton")
    >>> np.allclose(np.linalg.matrix_power(X, 4) @ A, np.eye(2))
    True
    """
    A, xp, kind = float_input(A, "A")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(
            f"A must be a square matrix or a batch (..., n, n), got shape {tuple(A.shape)}"
        )
    p = check_int(p, "p", low=1)
    eps = check_real(eps, "eps", low=0.0)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    maxiter = check_int(maxiter, "maxiter", low=1)
    if tol is None:
        tol = _NEWTON_TOL["float32" if A.dtype == xp.float32 else "float64"]
    else:
        tol = check_real(tol, "tol", low=0.0)
    S = _symmetric_part(A, xp)
    # "auto" is eigh at every size: see the measurement in Notes.
    X = (
        _newton_or_eigh(S, p, eps, maxiter, tol, xp)
        if method == "newton"
        else _eigh_root(S, p, eps, xp)
    )
    return to_caller(X, kind)


def _symmetric_part(A: Any, xp: Any) -> Any:
    """``(A + Aᵀ) / 2`` after checking that ``A`` is symmetric to rounding."""
    check_symmetric(A, "A")
    return (A + xp.matrix_transpose(A)) / 2


def _eigh_root(S: Any, p: int, eps: float, xp: Any) -> Any:
    """``(S + eps I)^(-1/p)`` by a float64 eigendecomposition of symmetric ``S``."""
    lam, V = xp.linalg.eigh(xp.astype(S, xp.float64))
    n = S.shape[-1]
    finfo = xp.finfo(S.dtype)
    noise = n * float(finfo.eps) * xp.max(xp.abs(lam), axis=-1, keepdims=True)
    rounding_noise = (lam < 0) & (lam >= -noise)
    mu = xp.where(rounding_noise, xp.zeros_like(lam), lam) + eps
    if bool(xp.any(mu <= 0)):
        lam_min = float(xp.min(lam))
        scale = float(xp.max(xp.abs(lam)))
        margin = max(float(xp.max(noise)), 1e-6 * scale, float(finfo.smallest_normal))
        suggested = _round_up(max(-lam_min, 0.0) + margin)
        raise LinAlgError(
            f"A + eps I is not positive definite (smallest eigenvalue of A {lam_min:.4g}, "
            f"eps = {eps:.4g}); use eps > {suggested:.4g} "
            "(minus the smallest eigenvalue plus a rounding margin)"
        )
    X = (V * mu[..., None, :] ** (-1.0 / p)) @ xp.matrix_transpose(V)
    if not float(xp.max(xp.abs(X))) <= float(finfo.max):
        raise LinAlgError(f"(A + eps I)^(-1/p) overflows {S.dtype}; increase eps")
    return xp.astype(X, S.dtype)


def _round_up(x: float) -> float:
    """``x > 0`` rounded up to 4 significant digits."""
    step = 10.0 ** (np.floor(np.log10(x)) - 3)
    return float(np.ceil(x / step) * step)


def _newton_or_eigh(S: Any, p: int, eps: float, maxiter: int, tol: float, xp: Any) -> Any:
    X, reason = _newton_root(S, p, eps, maxiter, tol, xp)
    if reason is None:
        return X
    X = _eigh_root(S, p, eps, xp)
    warnings.warn(
        f"matrix_inverse_root: the Newton iteration {reason}; the answer was computed by "
        "eigh instead",
        ConvergenceWarning,
        stacklevel=3,
    )
    return X


def _newton_root(
    S: Any, p: int, eps: float, maxiter: int, tol: float, xp: Any
) -> tuple[Any, str | None]:
    """Coupled Newton for ``(S + eps I)^(-1/p)``; the failure reason, or None."""
    n = S.shape[-1]
    eye = xp.eye(n, dtype=S.dtype, device=device_of(S))
    M = S + eps * eye
    # Both the Frobenius norm and the largest absolute row sum bound λ_max; take the tighter.
    frobenius = xp.linalg.matrix_norm(M, keepdims=True)
    row_sums = xp.max(xp.sum(xp.abs(M), axis=-1), axis=-1)[..., None, None]
    norm = xp.minimum(frobenius, row_sums)
    if bool(xp.any(norm == 0)):
        return M, "cannot start on a zero matrix"
    c = (2 * norm / (p + 1)) ** (1.0 / p)
    X = xp.broadcast_to(eye, S.shape) / c
    M = M / c**p
    previous = math.inf
    for k in range(maxiter):
        T = ((p + 1) * eye - M) / p
        X = X @ T
        M = _matrix_power(T, p) @ M
        err = float(xp.max(xp.abs(M - eye)))
        if not math.isfinite(err) or (k > 0 and err > 1.5):
            return X, f"diverged after {k + 1} iterations (is A + eps I positive definite?)"
        if err <= tol:
            return (X + xp.matrix_transpose(X)) / 2, None
        if err >= previous and previous < 0.5:
            return X, f"stagnated at max|M - I| = {err:.3g} > tol = {tol:.3g}"
        previous = err
    return X, f"did not reach tol = {tol:.3g} in maxiter = {maxiter} iterations"


def _matrix_power(T: Any, p: int) -> Any:
    """``T^p`` for p >= 1 by repeated squaring (batched)."""
    result = None
    while True:
        if p & 1:
            result = T if result is None else result @ T
        p >>= 1
        if not p:
            return result
        T = T @ T
