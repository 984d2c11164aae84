"""Inverse-Fisher vector products against M-FAC, a refactorizing window and memory floors.

Every implementation applies ``F⁻¹`` for ``F = λ I + (1/n) Gᵀ G``, the damped
empirical Fisher of the ``n`` gradients held (the rows of ``G``, float32).
``impl`` is the implementation measured, so one ``asv run --python=same`` gives
every ratio side by side (``asv_bench/ratios.py``):

- ``"linalg"``: ``DenseIHVP`` (SYRK Gram + Cholesky of the ``m x m`` capacitance)
  and ``SlidingWindowIHVP`` (push: one GEMV + rank-one Cholesky modifications);
- ``"mfac"``: M-FAC (Frantar, Kurtic & Alistarh, NeurIPS 2021, arXiv:2107.03356),
  written here from the paper: :class:`MFACStatic` (``O(d m²)`` precomputation by
  GEMV steps, ``O(d m)`` IHVP) and :class:`MFACWindow` (the dynamic algorithm:
  ``O(m³)`` recomputation of the coefficients after every push);
- ``"refactor"``: :class:`RefactorWindow`, the window with an incrementally updated
  Gram matrix and a fresh Cholesky factorization of the capacitance every push;
- ``"floor-syrk"``, ``"floor-passes"``, ``"floor-window"``: the BLAS work no
  implementation can avoid (forming ``G Gᵀ``; the passes over ``G``).

The window peers call BLAS and LAPACK through SciPy only: SciPy and NumPy load two
OpenBLAS builds, and alternating between them in a loop makes each wait for the
other's spinning threads (3x slower steps on 2 cores). tests/curvature/test_mfac_peers.py
checks every peer against a dense float64 inverse.
"""

import importlib
import time

import numpy as np
import scipy.linalg
from scipy.linalg import get_blas_funcs, get_lapack_funcs

DAMPING = 1e-3
D_LARGE, M_LARGE = 100_000, 512  # 205 MB of float32 gradients
D_BLOCK = 2_000  # one block of a blocked M-FAC
STEPS = 20  # window steps (push + solve) per timed call


class MFACStatic:
    """M-FAC's static algorithm: ``F⁻¹`` by ``m`` Sherman–Morrison steps.

    With ``F₀ = λ I`` and ``Fᵢ = Fᵢ₋₁ + gᵢ gᵢᵀ / m``, the vectors ``vᵢ = Fᵢ₋₁⁻¹ gᵢ``
    follow ``vᵢ = gᵢ / λ - Σ_{j<i} vⱼ (vⱼᵀ gᵢ) / qⱼ`` with ``qⱼ = m + gⱼᵀ vⱼ``, and
    ``F⁻¹ x = x / λ - Σⱼ vⱼ (vⱼᵀ x) / qⱼ``. Row ``i`` costs two GEMVs over the ``i``
    vectors already computed: ``O(d m²)`` memory-bound set-up, ``O(d m)`` per IHVP.
    ``grads`` is not modified (the vectors get their own array).
    """

    def __init__(self, grads, *, damping):
        grads = np.ascontiguousarray(grads)
        m = grads.shape[0]
        self.inv_damping = grads.dtype.type(1.0 / damping)
        self.V = np.empty_like(grads)
        self.q = np.empty(m, dtype=grads.dtype)
        for i, g in enumerate(grads):
            v = self.V[i]
            np.multiply(g, self.inv_damping, out=v)
            if i:
                v -= self.V[:i].T @ ((self.V[:i] @ g) / self.q[:i])
            self.q[i] = m + g @ v

    def solve(self, x):
        return x * self.inv_damping - self.V.T @ ((self.V @ x) / self.q)


class _Window:
    """The last ``window`` gradients in a ring buffer with their Gram matrix ``G Gᵀ``.

    ``push`` writes the gradient over the oldest one, computes its Gram row with one
    GEMV and calls ``_refactor``; ``grads`` pre-fills the window with one SYRK.
    """

    def __init__(self, dim, window, *, damping, dtype=np.float32, grads=None):
        self.damping = float(damping)
        self.G = np.zeros((window, dim), dtype=dtype)
        self.gram = np.zeros((window, window), dtype=dtype)
        self.n = self.oldest = 0
        self._gemv, self._trmv, syrk = get_blas_funcs(("gemv", "trmv", "syrk"), dtype=dtype)
        if grads is not None:
            self.n = len(grads)
            self.G[: self.n] = grads
            upper = syrk(1.0, self._columns(), trans=1)
            self.gram[: self.n, : self.n] = np.triu(upper) + np.triu(upper, 1).T
            self._refactor()

    def _columns(self):
        """The gradients held as the columns of a Fortran-ordered ``(dim, n)`` view."""
        return self.G[: self.n].T

    def push(self, g):
        if self.n < len(self.G):
            row, self.n = self.n, self.n + 1
        else:
            row, self.oldest = self.oldest, (self.oldest + 1) % len(self.G)
        self.G[row] = g
        dots = self._gemv(1.0, self._columns(), self.G[row], trans=1)
        self.gram[row, : self.n] = dots
        self.gram[: self.n, row] = dots
        self._refactor()

    def _shifted_gram(self, scale, shift):
        """``scale · G Gᵀ + shift · I``, Fortran-ordered, for LAPACK to overwrite (the Gram
        matrix is symmetric: its transpose is copied, which is a straight copy)."""
        K = np.multiply(self.gram[: self.n, : self.n].T, self.G.dtype.type(scale), order="F")
        K[np.diag_indices(self.n)] += shift
        return K


class MFACWindow(_Window):
    """M-FAC's dynamic algorithm over a sliding window.

    After each push the paper recomputes, in ``O(m³)``, the LU factorization without
    pivoting of ``K = G Gᵀ / λ + n I`` (its upper factor holds ``Dᵢⱼ = vᵢᵀ gⱼ``, its
    pivots ``qᵢ = n + Dᵢᵢ``) and the coefficients ``B`` with ``vᵢ = Σⱼ Bᵢⱼ gⱼ``
    (``B = L⁻¹ / λ``, ``L`` the unit lower factor); the IHVP is then
    ``x / λ - Gᵀ Bᵀ diag(1/q) B G x``, ``O(d n + n²)``. ``K`` is symmetric positive
    definite, so its unpivoted LU is ``K = C Cᵀ`` rescaled (``qᵢ = Cᵢᵢ²``,
    ``L = C diag(1/Cᵢᵢ)``, ``B = diag(Cᵢᵢ) C⁻¹ / λ``): computed here with LAPACK
    POTRF and TRTRI, both BLAS-3.
    """

    def _refactor(self):
        potrf, trtri = get_lapack_funcs(("potrf", "trtri"), dtype=self.G.dtype)
        C, info = potrf(self._shifted_gram(1.0 / self.damping, self.n), lower=1, overwrite_a=1)
        if info:
            raise np.linalg.LinAlgError(f"potrf failed (info={info})")
        pivots = np.diagonal(C).copy()
        self.q = pivots * pivots
        C_inv, info = trtri(C, lower=1, overwrite_c=1)
        if info:
            raise np.linalg.LinAlgError(f"trtri failed (info={info})")
        self.B = C_inv * (pivots / self.G.dtype.type(self.damping))[:, None]

    def solve(self, x):
        y = self._trmv(self.B, self._gemv(1.0, self._columns(), x, trans=1), lower=1)
        w = self._trmv(self.B, y / self.q, lower=1, trans=1)
        return x / self.G.dtype.type(self.damping) - self._gemv(1.0, self._columns(), w)


class RefactorWindow(_Window):
    """A fresh Cholesky factorization of ``C = G Gᵀ + n λ I`` after every push
    (``O(n³ / 3)``, BLAS-3), then ``F⁻¹ x = (x - Gᵀ C⁻¹ G x) / λ`` (Woodbury)."""

    def _refactor(self):
        K = self._shifted_gram(1.0, self.n * self.damping)
        self.factor = scipy.linalg.cho_factor(K, lower=True, overwrite_a=True, check_finite=False)

    def solve(self, x):
        y = scipy.linalg.cho_solve(
            self.factor, self._gemv(1.0, self._columns(), x, trans=1), check_finite=False
        )
        return (x - self._gemv(1.0, self._columns(), y)) / self.G.dtype.type(self.damping)


WINDOW_PEERS = {"mfac": MFACWindow, "refactor": RefactorWindow}


def gram_syrk(G):
    """The upper triangle of ``G Gᵀ`` by one SYRK (no copy of ``G``)."""
    (syrk,) = get_blas_funcs(("syrk",), dtype=G.dtype)
    return syrk(1.0, G.T, trans=1)


def two_passes(G, v):
    """``Gᵀ (G v)``: the two passes over ``G`` of a Woodbury query."""
    return G.T @ (G @ v)


def three_passes(G, g, v):
    """A window step's passes: ``G g`` (Gram row), ``G v`` and ``Gᵀ w`` (query)."""
    G @ g
    return two_passes(G, v)


def _linalg(module, name):
    """``linalg.curvature.<module>.<name>``; NotImplementedError (asv skips) if missing."""
    try:
        return getattr(importlib.import_module(f"linalg.curvature.{module}"), name)
    except (ImportError, AttributeError) as exc:
        raise NotImplementedError(f"linalg.curvature.{module}.{name}: {exc}") from exc


def _gradients(rng, m, d):
    return rng.standard_normal((m, d), dtype=np.float32)


def _window_steps(impl, dim, window):
    """A full window of ``impl`` and a function running STEPS push + solve steps on it."""
    rng = np.random.default_rng(0)
    G = _gradients(rng, window, dim)
    news, queries = _gradients(rng, STEPS, dim), _gradients(rng, STEPS, dim)
    if impl == "floor-window":

        def step(g, v):
            three_passes(G, g, v)

    else:
        if impl == "linalg":
            ihvp = _linalg("_sliding", "SlidingWindowIHVP")(dim, window, damping=DAMPING)
            for g in G:
                ihvp.push(g)
        else:
            ihvp = WINDOW_PEERS[impl](dim, window, damping=DAMPING, grads=G)

        def step(g, v):
            ihvp.push(g)
            ihvp.solve(v)

    def run():
        for g, v in zip(news, queries, strict=True):
            step(g, v)

    run()  # compiles any Numba kernel; the window is in its steady state
    return run


class DenseSetup:
    """Set-up of F⁻¹ for d = 100,000, m = 512: ``DenseIHVP(G)`` against M-FAC's
    static precomputation (``O(d m²)`` in GEMV steps) and SYRK alone (forming
    ``G Gᵀ``, the floor of a Cholesky-based set-up)."""

    params = (["linalg", "mfac", "floor-syrk"],)
    param_names = ("impl",)
    number = 1
    repeat = (1, 3, 30.0)
    warmup_time = 0.0
    timeout = 900

    def setup(self, impl):
        self.G = _gradients(np.random.default_rng(0), M_LARGE, D_LARGE)
        if impl == "linalg":
            dense = _linalg("_dense", "DenseIHVP")
            self.build = lambda G: dense(G, damping=DAMPING)
            self.build(self.G).solve(self.G[0])  # compiles any Numba kernel
        elif impl == "mfac":
            self.build = lambda G: MFACStatic(G, damping=DAMPING)
        else:
            self.build = gram_syrk

    def time_setup(self, impl):
        self.build(self.G)


class DenseQuery:
    """One ``F⁻¹ v`` for d = 100,000, m = 512: two passes over ``G`` for every
    implementation (``floor-passes`` is just those two GEMVs)."""

    params = (["linalg", "floor-passes", "mfac"],)
    param_names = ("impl",)
    number = 1
    repeat = (5, 20, 10.0)
    warmup_time = 0.0
    timeout = 900

    def setup(self, impl):
        rng = np.random.default_rng(0)
        G = _gradients(rng, M_LARGE, D_LARGE)
        self.v = _gradients(rng, 1, D_LARGE)[0]
        if impl == "linalg":
            self.solve = _linalg("_dense", "DenseIHVP")(G, damping=DAMPING).solve
        elif impl == "mfac":
            self.solve = MFACStatic(G, damping=DAMPING).solve
        else:
            self.solve = lambda v: two_passes(G, v)
        self.solve(self.v)

    def time_solve(self, impl):
        self.solve(self.v)


class WindowStep:
    """20 window steps (push a gradient, evicting the oldest; solve one vector) on a
    full window of m gradients of one d = 2,000 block. ``floor-window`` is the three
    GEMVs of each step (``G g``, ``G v``, ``Gᵀ w``)."""

    params = (["linalg", "mfac", "refactor", "floor-window"], [128, 256, 512, 1024])
    param_names = ("impl", "m")
    number = 1
    repeat = (3, 10, 10.0)
    warmup_time = 0.0
    timeout = 600

    def setup(self, impl, m):
        self.run = _window_steps(impl, D_BLOCK, m)

    def time_steps(self, impl, m):
        self.run()


class WindowScaling:
    """How a window step's cost grows with the window, d = 2,000: the exponent ``p``
    of ``time ∝ mᵖ`` between m = 512 and m = 1024, ``p = log2(t(1024) / t(512))``
    from the best of 5 runs of 20 steps each.

    ``O(d m + m²)`` work gives ``1 <= p <= 2`` (``p = log2(3.1 / 1.3) = 1.28`` if
    the ``d m`` and ``m²`` terms cost the same per element); refactorizing
    (``O(m³)``) tends to ``p = 3``; ``floor-window`` (``O(d m)``) is the ``p = 1``
    reference."""

    params = (["linalg", "mfac", "refactor", "floor-window"],)
    param_names = ("impl",)
    timeout = 600

    def setup(self, impl):
        self.runs = {m: _window_steps(impl, D_BLOCK, m) for m in (512, 1024)}

    def track_growth_exponent(self, impl):
        best = {}
        for m, run in self.runs.items():
            times = []
            for _ in range(5):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            best[m] = min(times)
        return float(np.log2(best[1024] / best[512]))

    track_growth_exponent.unit = "exponent"


class WindowStepLarge:
    """20 window steps at d = 100,000, m = 512 (205 MB window): the passes over the
    window dominate; ``floor-window`` is their three GEMVs per step."""

    params = (["linalg", "floor-window", "mfac", "refactor"],)
    param_names = ("impl",)
    number = 1
    repeat = (2, 5, 20.0)
    warmup_time = 0.0
    timeout = 900

    def setup(self, impl):
        self.run = _window_steps(impl, D_LARGE, M_LARGE)

    def time_steps(self, impl):
        self.run()
