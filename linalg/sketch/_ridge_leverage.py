"""Ridge leverage scores of a matrix or of a kernel matrix: exact, or by recursive
Nyström sampling (Musco & Musco, 2017) without forming the ``n × n`` kernel."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg

from linalg._core.namespace import (
    Placement,
    array_kind,
    common_kind,
    device_of,
    namespace_of,
    placement_of,
    to_caller,
)
from linalg._core.random import RandomStream, as_random_stream
from linalg._core.validate import (
    as_float_array,
    as_float_namespace_array,
    check_callable,
    check_real,
    float_input,
)

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
    ``kernel.diag(X)`` its diagonal for ``Y = X`` (all ones), in ``O(n)``;
    both compute in the namespace of device arrays (CuPy, GPU tensors, other
    array-API libraries), on their device. Made by :func:`rbf_kernel`.

    Attributes
    ----------
    gamma : float
        The inverse length scale, ``> 0``.
    """

    def __init__(self, gamma: float) -> None:
        self.gamma = check_real(gamma, "gamma", low=0.0, low_inclusive=False)

    def __call__(self, X: Any, Y: Any) -> Any:
        if common_kind(X, Y).via_namespace:
            xp = namespace_of(X)
            squared = _squared_norms(xp, X)[:, None] + _squared_norms(xp, Y)[None, :]
            return xp.exp(-self.gamma * xp.clip(squared - 2.0 * (X @ Y.T), min=0.0))
        X, Y = np.asarray(X), np.asarray(Y)
        squared = (
            np.einsum("ij,ij->i", X, X)[:, None] + np.einsum("ij,ij->i", Y, Y)[None, :]
        ) - 2.0 * (X @ Y.T)
        return np.exp(-self.gamma * np.maximum(squared, 0.0))

    def diag(self, X: Any) -> Any:
        """``k(x_i, x_i) = 1`` for every row of ``X``."""
        if array_kind(X).via_namespace:
            return namespace_of(X).ones(X.shape[0], dtype=X.dtype, device=device_of(X))
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


def _squared_norms(xp: Any, X: Any) -> Any:
    """``||x_i||²`` for every row of a device array ``X``."""
    return xp.sum(X * X, axis=1)


class _LinearKernel:
    """``k(x, y) = xᵀy``: the kernel whose ridge leverage is the matrix one."""

    def __call__(self, X: Any, Y: Any) -> Any:
        return X @ Y.T

    def diag(self, X: Any) -> Any:
        if array_kind(X).via_namespace:
            return _squared_norms(namespace_of(X), X)
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
        returned as the same type). A CuPy array, a GPU tensor or an array
        of another array-API library is computed on its device, in float64
        as on the host: for ``"exact"`` without a kernel, a QR of the tall
        side of ``X`` there and the SVD of its small ``R`` on the host; with a
        kernel, ``K`` and its eigendecomposition there; for ``"recursive"``,
        the kernel blocks, triangular products and sampling there, the
        landmark factorization (``s × s``) on the host. The random draws are
        made there with the host's numbers, so the result equals the NumPy
        path's to rounding.
    lam : float
        The ridge ``λ``, ``> 0``.
    kernel : callable, optional
        ``kernel(A, B)`` returns the ``(len(A), len(B))`` kernel matrix of
        two arrays of points of ``X``'s library (NumPy for host data), e.g.
        :func:`rbf_kernel`. If it has a ``diag(A)`` method it gives the
        diagonal ``k(a_i, a_i)``; otherwise the diagonal is evaluated in
        small blocks. ``None``: ``X`` is the matrix (the linear kernel).
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
    if method not in _METHODS:
        raise ValueError(f"method must be 'exact' or 'recursive', got {method!r}")
    lam = check_real(lam, "lam", low=0.0, low_inclusive=False)
    oversample = check_real(oversample, "oversample", low=0.0, low_inclusive=False)
    kernel = check_callable(kernel, "kernel")
    points, xp, kind = float_input(X, "X", ndim=2)
    place = placement_of(points)
    if method == "exact" and kernel is None:
        scores = _exact_matrix(points, lam, place)
    elif method == "exact" or points.shape[0] <= _BASE_SIZE:
        K = _evaluate(kernel or _LinearKernel(), points, points)
        scores = _exact_kernel(K, lam, place)
    else:
        scores = _recursive(points, lam, kernel or _LinearKernel(), oversample, rng, place)
    return to_caller(xp.astype(scores, points.dtype, copy=False), kind)


def _exact_matrix(X: Any, lam: float, place: Placement) -> Any:
    """``Σ_j U_ij² s_j² / (s_j² + λ)`` from the thin SVD ``X = U diag(s) Vᵀ``.

    On a device, ``X`` (or ``Xᵀ`` when wide) is factored there as ``Q R``, and the
    small ``R`` (``min(n, p)`` square) decomposed on the host: ``U = Q U_R`` (tall)
    or ``U = U_{Rᵀ}`` (wide, ``X = Rᵀ Qᵀ``).
    """
    if place.on_host:
        U, s, _ = scipy.linalg.svd(X.astype(np.float64), full_matrices=False, check_finite=False)
        return (U * U) @ (s * s / (s * s + lam))
    xp = place.xp
    X = xp.astype(X, xp.float64)
    tall = X.shape[0] >= X.shape[1]
    Q, R = xp.linalg.qr(X if tall else X.T)
    R = place.host(R)
    U, s, _ = scipy.linalg.svd(R if tall else R.T, full_matrices=False, check_finite=False)
    weights = s * s / (s * s + lam)
    if not tall:
        return place.put((U * U) @ weights)
    U = Q @ place.put(U)
    return (U * U) @ place.put(weights)


def _exact_kernel(K: Any, lam: float, place: Placement) -> Any:
    """``Σ_j V_ij² e_j / (e_j + λ)`` from ``K = V diag(e) Vᵀ`` (``e`` clipped at 0),
    decomposed where ``K`` lives."""
    if place.on_host:
        e, V = scipy.linalg.eigh(K, check_finite=False)
    else:
        e, V = place.xp.linalg.eigh(K)
    e = place.xp.clip(e, min=0.0)
    return (V * V) @ (e / (e + lam))


def _evaluate(kernel: Callable, A: Any, B: Any) -> Any:
    """``kernel(A, B)`` as a checked float64 ``(len(A), len(B))`` array where ``A`` lives."""
    return _kernel_output(kernel(A, B), "kernel(A, B)", A, (A.shape[0], B.shape[0]))


def _kernel_output(value: Any, name: str, points: Any, shape: tuple[int, ...]) -> Any:
    """What a kernel returned for ``points``: of ``shape``, finite, float64, where
    ``points`` live (on a device: one synchronization for the finiteness check)."""
    place = placement_of(points)
    if place.on_host:
        value = np.asarray(value)
    elif array_kind(value) != array_kind(points):
        raise TypeError(
            f"{name} returned {array_kind(value)} for points that are {array_kind(points)}: "
            "the kernel must compute where X lives (as rbf_kernel does), or pass X on the host"
        )
    if tuple(value.shape) != shape:
        expected = "(len(A), len(B))" if len(shape) == 2 else "(len(X),)"
        raise ValueError(f"{name} must return shape {expected} = {shape}, got {value.shape}")
    if place.on_host:
        return as_float_array(value, name, dtype=np.float64, allow_empty=True)
    return place.xp.astype(as_float_namespace_array(value, name, place.xp), place.xp.float64)


def _kernel_diagonal(kernel: Callable, X: Any) -> Any:
    """``k(x_i, x_i)`` for every point: ``kernel.diag`` if there is one, else by blocks."""
    n = X.shape[0]
    if callable(getattr(kernel, "diag", None)):
        return _kernel_output(kernel.diag(X), "kernel.diag(X)", X, (n,))
    xp = placement_of(X).xp
    blocks = [X[a : min(n, a + _DIAG_BLOCK), :] for a in range(0, n, _DIAG_BLOCK)]
    return xp.concat([xp.linalg.diagonal(_evaluate(kernel, b, b)) for b in blocks])


class _Landmarks:
    """Landmarks ``S`` kept with probabilities ``q``, for the estimate
    ``τ̃_i = (k_ii - k_iSᵀ (K_SS + λ diag(q))⁻¹ k_iS) / λ``.

    Solved through ``W K_SS W + λI = L Lᵀ`` with ``W = diag(q^-½)``, whose
    eigenvalues are at least ``λ``, so the Cholesky factorization is safe. On a
    device, ``K_SS`` (``s × s``) is factored on the host, and ``L⁻¹`` goes back to
    apply to the blocks ``k_S·`` by a matrix product there.
    """

    def __init__(self, kernel: Callable, points: Any, q: np.ndarray, lam: float):
        self.kernel, self.points, self.lam = kernel, points, lam
        self.place = placement_of(points)
        self.scale = 1.0 / np.sqrt(q)
        G = self.place.host(_evaluate(kernel, points, points)) * np.outer(self.scale, self.scale)
        G[np.diag_indices_from(G)] += lam
        self.factor = scipy.linalg.cholesky(G, lower=True, check_finite=False)
        if not self.place.on_host:
            inverse = scipy.linalg.solve_triangular(self.factor, np.eye(len(G)), lower=True)
            self.inverse, self.column_scale = (self.place.put(a) for a in (inverse, self.scale))

    def scores(self, X: Any, diagonal: Any) -> Any:
        """``τ̃_i`` of the points ``X`` (with their diagonal ``k_ii``), where they live."""
        if not self.place.on_host:
            xp, n = self.place.xp, X.shape[0]
            step = max(1, _BLOCK_ENTRIES // self.points.shape[0])
            blocks = []
            for a in range(0, n, step):
                C = _evaluate(self.kernel, self.points, X[a : min(n, a + step), :])
                Z = self.inverse @ (C * self.column_scale[:, None])
                blocks.append(xp.sum(Z * Z, axis=0))
            return xp.clip((diagonal - xp.concat(blocks)) / self.lam, min=0.0, max=1.0)
        out = np.empty(len(X))
        step = max(1, _BLOCK_ENTRIES // len(self.points))
        for a in range(0, len(X), step):
            C = _evaluate(self.kernel, self.points, X[a : a + step]) * self.scale[:, None]
            Z = scipy.linalg.solve_triangular(self.factor, C, lower=True, check_finite=False)
            out[a : a + step] = diagonal[a : a + step] - np.einsum("ij,ij->j", Z, Z)
        return np.clip(out / self.lam, 0.0, 1.0)


def _recursive(
    X: Any, lam: float, kernel: Callable, oversample: float, rng: Any, place: Placement
) -> Any:
    """RecursiveRLS (see :func:`ridge_leverage_scores`); everything of length ``n``,
    the uniforms behind the permutation and the sampling included, is drawn and
    stays where ``X`` is (the host's numbers, on the GPU for CuPy and torch CUDA)."""
    order_stream, keep_stream = as_random_stream(rng).spawn(2)
    xp, n = place.xp, X.shape[0]
    order = xp.argsort(place.draw(order_stream, "uniform", (n,), dtype=np.float64), stable=True)
    sizes = [n]
    while sizes[-1] > _BASE_SIZE:
        sizes.append(math.ceil(sizes[-1] / 2))
    sizes.reverse()
    diagonal = xp.take(_kernel_diagonal(kernel, X), order, axis=0)
    points = xp.take(X, order, axis=0)
    chosen, q = place.put(np.arange(sizes[0])), np.ones(sizes[0])
    for level, size in enumerate(sizes[1:]):
        landmarks = _Landmarks(kernel, xp.take(points, chosen, axis=0), q, lam)
        estimate = landmarks.scores(points[:size, :], diagonal[:size])
        chosen, q = _sample(estimate, oversample, keep_stream, level * n, place)
    estimate = _Landmarks(kernel, xp.take(points, chosen, axis=0), q, lam).scores(points, diagonal)
    return xp.take(estimate, xp.argsort(order, stable=True), axis=0)  # undo the permutation


def _sample(
    estimate: Any, oversample: float, stream: RandomStream, offset: int, place: Placement
) -> tuple[Any, np.ndarray]:
    """Indices kept with probability ``q_i = min(1, oversample · τ̃_i)`` (where
    ``estimate`` lives), and their ``q`` (on the host)."""
    xp = place.xp
    probability = xp.clip(oversample * estimate, max=1.0)
    uniforms = place.draw(stream, "uniform", (estimate.shape[0],), dtype=np.float64, offset=offset)
    kept = xp.nonzero(uniforms < probability)[0]
    if kept.shape[0] == 0:
        kept = xp.reshape(xp.argmax(probability), (1,))
    return kept, place.host(xp.take(probability, kept, axis=0))
