"""Sketch operators against SciPy's Clarkson–Woodruff transform and the memory floor.

`impl` is the implementation measured, so one ``asv run --python=same`` gives
every ratio side by side (``asv_bench/ratios.py``):

- ``SketchDense``: ``S @ A`` for a dense 1,000,000 × 200 float64 ``A`` to 800
  rows, each kind on its default (Numba where installed) engine (``srht`` is
  the default Walsh–Hadamard transform, ``srht_dct`` the DCT), against
  ``scipy`` (``scipy.linalg.clarkson_woodruff_transform``) and ``copy``
  (``numpy.copy`` of ``A``: one read and one write of the array, the floor
  any one-pass method is judged against).
- ``GaussianSketch``: a Gaussian sketch, entries drawn on the fly, against
  ``gemm``: the same product with S drawn beforehand (the BLAS rate).
- ``SketchSparse``: CountSketch of a 1,000,000 × 10,000 CSR matrix with 10⁷
  non-zeros to 800 rows against SciPy's transform.
"""

import numpy as np
import scipy.linalg
import scipy.sparse


def _sketches():
    try:
        import linalg.sketch as sketch
    except ImportError as exc:
        raise NotImplementedError(str(exc)) from exc
    return sketch


def _make(kind, d, n, rng):
    sketch = _sketches()
    if kind == "srht_dct":
        return sketch.srht(d, n, transform="dct", rng=rng)
    if not hasattr(sketch, kind):
        raise NotImplementedError(f"linalg.sketch has no {kind} yet")
    return getattr(sketch, kind)(d, n, rng=rng)


class SketchDense:
    """S @ A, A dense 1,000,000 x 200 float64, d = 800."""

    params = (
        [
            "linalg-countsketch",
            "linalg-sparse_sign",
            "linalg-srht",
            "linalg-srht_dct",
            "scipy",
            "copy",
        ],
    )
    param_names = ("impl",)
    number = 1
    repeat = (3, 7, 60.0)
    warmup_time = 0.0
    timeout = 600

    def setup(self, impl):
        self.A = np.random.default_rng(0).standard_normal((1_000_000, 200))
        if impl.startswith("linalg-"):
            self.S = _make(impl.removeprefix("linalg-"), 800, 1_000_000, rng=1)
            self.S[:, :40_000] @ self.A[:40_000]  # compile and warm the kernels

    def time_apply(self, impl):
        if impl == "scipy":
            scipy.linalg.clarkson_woodruff_transform(self.A, 800, rng=1)
        elif impl == "copy":
            np.copy(self.A)
        else:
            self.S @ self.A


class GaussianSketch:
    """Gaussian S @ A, A 100,000 x 200 float64, d = 800."""

    params = (["linalg", "gemm"],)
    param_names = ("impl",)
    number = 1
    repeat = (3, 7, 60.0)
    warmup_time = 0.0
    timeout = 600

    def setup(self, impl):
        self.A = np.random.default_rng(0).standard_normal((100_000, 200))
        self.S = _make("gaussian", 800, 100_000, rng=1)
        self.S[:, :1000] @ self.A[:1000]  # compile the stream's kernels
        if impl == "gemm":
            self.dense = self.S.todense()

    def time_apply(self, impl):
        if impl == "gemm":
            self.dense @ self.A
        else:
            self.S @ self.A


class SketchSparse:
    """CountSketch of a CSR 1,000,000 x 10,000 matrix with 10**7 non-zeros, d = 800."""

    params = (["linalg", "scipy"],)
    param_names = ("impl",)
    number = 1
    repeat = (3, 7, 60.0)
    warmup_time = 0.0
    timeout = 600

    def setup(self, impl):
        rng = np.random.default_rng(0)  # 10 non-zeros per row at random columns
        indptr = np.arange(0, 10_000_001, 10)
        indices = np.sort(rng.integers(0, 10_000, size=(1_000_000, 10)), axis=1).ravel()
        data = rng.standard_normal(10_000_000)
        self.A = scipy.sparse.csr_matrix((data, indices, indptr), shape=(1_000_000, 10_000))
        if impl == "linalg":
            self.S = _make("countsketch", 800, 1_000_000, rng=1)

    def time_apply(self, impl):
        if impl == "scipy":
            scipy.linalg.clarkson_woodruff_transform(self.A, 800, rng=1)
        else:
            self.S @ self.A
