"""Ridge leverage scores of a matrix or of a kernel matrix: exact, or by recursive
Nyström sampling (Musco & Musco, 2017) without forming the ``n × n`` kernel."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg

from linalg._core.namespace import array_kind, to_caller, to_numpy
from linalg._core.random import RandomStream, as_random_stream
from linalg._core.validate import as_float_array, check_callable, check_real

__all__ = ["RBFKernel", "rbf_kernel", "ridge_leverage_scores"]

_METHODS = ("exact", "recursive")
# Kernel entries evaluated at a time (a block of rows against the landmarks).
_BLOCK_ENTRIES = 1 << 20
# Rows per block when a kernel without .diag gives its diagonal.
_DIAG_BLOCK = 256
# Below this many points "recursive" has nothing to gain: the scores are computed exactly.
_BASE_SIZE = 256


class RBFKernel:
    """The Gaussian kernel ``k(x, y) = exp(-gamma ||x - y||²)``.

    ``K = kernel(X, Y)`` is the ``(len(X), len(Y))`` kernel matrix and
    ``kernel.diag(X)`` its diagonal for ``Y = X`` (all ones), in ``O(n)``.
    Made by :func:`rbf_kernel`.

    Attributes
    ----------
    gamma : float
        The inverse length scale, ``> 0``.
    """

    def __init__(self, gamma: float) -> None:
        self.gamma = check_real(gamma, "gamma", low=0.0, low_inclusive=False)

    def __call__(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        X, Y = np.asarray(X), np.asarray(Y)
        squared = (
            np.einsum("ij,ij->i", X, X)[:, None] + np.einsum("ij,ij->i", Y, Y)[None, :]
        ) - 2.0 * (X @ Y.T)
        return np.exp(-self.gamma * np.maximum(squared, 0.0))

    def diag(self, X: np.ndarray) -> np.ndarray:
        """``k(x_i, x_i) = 1`` for every row of ``X``."""
        return np.ones(len(X), dtype=np.result_type(np.asarray(X).dtype, np.float32))

    def __repr__(self) -> str:
        return f"rbf_kernel(gamma={self.gamma!r})"


def rbf_kernel(gamma: float) -> RBFKernel:
    """The Gaussian (RBF) kernel ``exp(-gamma ||x - y||²)`` as a callable.

    Parameters
    ----------
    gamma : float
        Inverse squared length scale, ``> 0``.

    Returns
    -------
    RBFKernel
        ``kernel(X, Y)`` gives the ``(len(X), len(Y))`` matrix;
        ``kernel.diag(X)`` its diagonal for ``Y = X``.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.sketch import rbf_kernel
    >>> k = rbf_kernel(0.5)
    >>> X = np.array([[0.0, 0.0], [1.0, 1.0]])
    >>> np.round(k(X, X), 4).tolist()
    [[1.0, 0.3679], [0.3679, 1.0]]
    >>> k.diag(X).tolist()
    [1.0, 1.0]
    """
    return RBFKernel(gamma)


class _LinearKernel:
    """``k(x, y) = xᵀy``: the kernel whose ridge leverage is the matrix one."""

    def __call__(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return X @ Y.T

    def diag(self, X: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", X, X)


def ridge_leverage_scores(
    X: Any,
    lam: float,
    *,
    kernel: Callable | None = None,
    method: str = "exact",
    oversample: float = 8.0,
    rng: Any = None,
) -> Any:
    """λ-ridge leverage scores of the rows of a matrix, or of points under a kernel.

    For a matrix ``X`` (rows ``x_i``), ``τ_i(λ) = x_iᵀ (XᵀX + λI)⁻¹ x_i``;
    for points ``X`` and a kernel matrix ``K = kernel(X, X)``,
    ``τ_i(λ) = [K (K + λI)⁻¹]_ii`` (the same numbers for the linear kernel
    ``K = XXᵀ``). Each lies in [0, 1) and their sum is the effective
    dimension ``d_eff(λ) = tr(K (K + λI)⁻¹) = Σ_j s_j / (s_j + λ)`` over the
    eigenvalues ``s_j`` of ``K``. They are the sampling probabilities (up to
    normalization) that make Nyström and sketched ridge regression accurate.

    Parameters
    ----------
    X : array_like, shape (n, p)
        The matrix, or ``n`` points in ``p`` dimensions when ``kernel`` is
        given. NumPy, or a torch / JAX tensor on the CPU (the result is
        returned as the same type).
    lam : float
        The ridge ``λ``, ``> 0``.
    kernel : callable, optional
        ``kernel(A, B)`` returns the ``(len(A), len(B))`` kernel matrix of
        two NumPy arrays of points, e.g. :func:`rbf_kernel`. If it has a
        ``diag(A)`` method it gives the diagonal ``k(a_i, a_i)``; otherwise
        the diagonal is evaluated in small blocks. ``None``: ``X`` is the
        matrix (the linear kernel).
    method : {"exact", "recursive"}
        ``"exact"``: by an SVD of ``X`` (no kernel; ``O(n p min(n, p))``) or
        an eigendecomposition of ``K`` (forms ``K``: ``O(n²)`` memory and
        ``O(n³)`` time, so for ``n`` up to a few thousand).
        ``"recursive"``: recursive ridge leverage score sampling (below);
        never forms ``K`` (memory ``O(n s)``, time ``O(n s²)`` for ``s``
        landmarks, about ``oversample · d_eff``).
    oversample : float, default 8.0
        ``"recursive"`` only: landmarks are kept with probability
        ``min(1, oversample · τ̃_i)``. Larger is more accurate and slower.
    rng : None, int, numpy.random.Generator or RandomStream
        Seed for ``"recursive"`` (SPEC 7).

    Returns
    -------
    array, shape (n,)
        The scores, of ``X``'s float dtype.

    Raises
    ------
    ValueError
        If ``lam <= 0``, ``oversample <= 0``, ``method`` is unknown, ``X``
        holds NaN or Inf, or ``kernel`` returns a matrix of the wrong shape
        or with NaN or Inf.
    TypeError
        If ``X`` is complex or not numeric, or ``kernel`` is not callable.

    Notes
    -----
    ``"recursive"`` follows RecursiveRLS of Musco & Musco (2017). A random
    order of the points gives nested prefixes ``P_0 ⊂ P_1 ⊂ ... ⊂ P_L``,
    each half the next (``|P_0| <= 256``, ``P_L`` all points). ``P_0`` is
    its own landmark set, with weights 1. For ``l = 1 .. L`` the scores of
    the points of ``P_l`` are estimated from the landmarks ``S`` (with
    probabilities ``q_j``) of ``P_{l-1}``,

    ``τ̃_i = (1/λ) (k_ii - k_iSᵀ (K_SS + λ diag(q))⁻¹ k_iS)``,

    which is ``[K' (K' + λI)⁻¹]_ii`` for the Nyström approximation ``K'`` of
    the kernel restricted to ``P_{l-1}`` plus ``i``: an overestimate of the
    scores within ``P_l`` (fewer points, larger scores), as the sampling
    needs. Then each point of ``P_l`` becomes a landmark with probability
    ``q_i = min(1, oversample · τ̃_i)``. A last pass applies the formula to
    every point with the landmarks drawn from all of them, which makes the
    returned scores estimates of ``τ_i`` itself, not overestimates (with
    the default ``oversample`` the tests measure every score within
    [0.7, 1.7] times the exact one on an RBF problem with ``n = 1000``). Only ``kernel(block, S)``,
    ``kernel(S, S)`` and the diagonal are evaluated.

    References
    ----------
    C. Musco and C. Musco, "Recursive sampling for the Nyström method",
    NeurIPS 2017.

    A. Alaoui and M. W. Mahoney, "Fast randomized kernel ridge regression
    with statistical guarantees", NeurIPS 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.sketch import ridge_leverage_scores, rbf_kernel
    >>> X = np.random.default_rng(0).standard_normal((200, 3))
    >>> tau = ridge_leverage_scores(X, 1.0)
    >>> s = np.linalg.svd(X, compute_uv=False) ** 2
    >>> bool(np.isclose(tau.sum(), np.sum(s / (s + 1.0))))
    True
    >>> k = rbf_kernel(0.5)
    >>> exact = ridge_leverage_scores(X, 0.1, kernel=k)
    >>> approx = ridge_leverage_scores(X, 0.1, kernel=k, method="recursive", rng=0)
    >>> bool(np.all((approx > exact / 3) & (approx < 3 * exact)))
    True
    """
    kind = array_kind(X)
    if method not in _METHODS:
        raise ValueError(f"method must be 'exact' or 'recursive', got {method!r}")
    lam = check_real(lam, "lam", low=0.0, low_inclusive=False)
    oversample = check_real(oversample, "oversample", low=0.0, low_inclusive=False)
    kernel = check_callable(kernel, "kernel")
    points = as_float_array(to_numpy(X, "X"), "X", ndim=2)
    if method == "exact" and kernel is None:
        scores = _exact_matrix(points, lam)
    elif method == "exact" or len(points) <= _BASE_SIZE:
        K = _evaluate(kernel or _LinearKernel(), points, points)
        scores = _exact_kernel(K, lam)
    else:
        scores = _recursive(points, lam, kernel or _LinearKernel(), oversample, rng)
    return to_caller(scores.astype(points.dtype, copy=False), kind)


def _exact_matrix(X: np.ndarray, lam: float) -> np.ndarray:
    """``Σ_j U_ij² s_j² / (s_j² + λ)`` from the thin SVD ``X = U diag(s) Vᵀ``."""
    U, s, _ = scipy.linalg.svd(X.astype(np.float64), full_matrices=False, check_finite=False)
    return (U * U) @ (s * s / (s * s + lam))


def _exact_kernel(K: np.ndarray, lam: float) -> np.ndarray:
    """``Σ_j V_ij² e_j / (e_j + λ)`` from ``K = V diag(e) Vᵀ`` (``e`` clipped at 0)."""
    e, V = scipy.linalg.eigh(K, check_finite=False)
    e = np.maximum(e, 0.0)
    return (V * V) @ (e / (e + lam))


def _evaluate(kernel: Callable, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``kernel(A, B)`` as a checked float64 ``(len(A), len(B))`` array."""
    K = np.asarray(kernel(A, B))
    if K.shape != (len(A), len(B)):
        raise ValueError(
            f"kernel(A, B) must return shape (len(A), len(B)) = ({len(A)}, {len(B)}), got {K.shape}"
        )
    return as_float_array(K, "kernel(A, B)", dtype=np.float64, allow_empty=True)


def _kernel_diagonal(kernel: Callable, X: np.ndarray) -> np.ndarray:
    """``k(x_i, x_i)`` for every point: ``kernel.diag`` if there is one, else by blocks."""
    if callable(getattr(kernel, "diag", None)):
        diagonal = as_float_array(kernel.diag(X), "kernel.diag(X)", ndim=1, dtype=np.float64)
        if diagonal.shape != (len(X),):
            raise ValueError(f"kernel.diag(X) must return shape ({len(X)},), got {diagonal.shape}")
        return diagonal
    out = np.empty(len(X))
    for a in range(0, len(X), _DIAG_BLOCK):
        block = X[a : a + _DIAG_BLOCK]
        out[a : a + _DIAG_BLOCK] = np.diag(_evaluate(kernel, block, block))
    return out


class _Landmarks:
    """Landmarks ``S`` kept with probabilities ``q``, for the estimate
    ``τ̃_i = (k_ii - k_iSᵀ (K_SS + λ diag(q))⁻¹ k_iS) / λ``.

    Solved through ``W K_SS W + λI = L Lᵀ`` with ``W = diag(q^-½)``, whose
    eigenvalues are at least ``λ``, so the Cholesky factorization is safe.
    """

    def __init__(self, kernel: Callable, points: np.ndarray, q: np.ndarray, lam: float):
        self.kernel, self.points, self.lam = kernel, points, lam
        self.scale = 1.0 / np.sqrt(q)
        G = _evaluate(kernel, points, points) * np.outer(self.scale, self.scale)
        G[np.diag_indices_from(G)] += lam
        self.factor = scipy.linalg.cholesky(G, lower=True, check_finite=False)

    def scores(self, X: np.ndarray, diagonal: np.ndarray) -> np.ndarray:
        out = np.empty(len(X))
        step = max(1, _BLOCK_ENTRIES // len(self.points))
        for a in range(0, len(X), step):
            C = _evaluate(self.kernel, self.points, X[a : a + step]) * self.scale[:, None]
            Z = scipy.linalg.solve_triangular(self.factor, C, lower=True, check_finite=False)
            out[a : a + step] = diagonal[a : a + step] - np.einsum("ij,ij->j", Z, Z)
        return np.clip(out / self.lam, 0.0, 1.0)


def _recursive(
    X: np.ndarray, lam: float, kernel: Callable, oversample: float, rng: Any
) -> np.ndarray:
    order_stream, keep_stream = as_random_stream(rng).spawn(2)
    n = len(X)
    order = np.argsort(order_stream.uniform(n), kind="stable")
    sizes = [n]
    while sizes[-1] > _BASE_SIZE:
        sizes.append(math.ceil(sizes[-1] / 2))
    sizes.reverse()
    diagonal = _kernel_diagonal(kernel, X)[order]
    points = X[order]
    chosen, q = np.arange(sizes[0]), np.ones(sizes[0])
    for level, size in enumerate(sizes[1:]):
        landmarks = _Landmarks(kernel, points[chosen], q, lam)
        estimate = landmarks.scores(points[:size], diagonal[:size])
        chosen, q = _sample(estimate, oversample, keep_stream, level * n)
    estimate = _Landmarks(kernel, points[chosen], q, lam).scores(points, diagonal)
    scores = np.empty(n)
    scores[order] = estimate
    return scores


def _sample(
    estimate: np.ndarray, oversample: float, stream: RandomStream, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices kept with probability ``q_i = min(1, oversample · τ̃_i)``, and their ``q``."""
    probability = np.minimum(1.0, oversample * estimate)
    kept = np.flatnonzero(stream.uniform(len(estimate), offset=offset) < probability)
    if kept.size == 0:
        kept = np.array([int(np.argmax(probability))])
    return kept, probability[kept]
