"""Randomized SVD and CountSketch of a dask array on a 2-worker LocalCluster.

The matrix is ``4,000,000 × 200`` float64 (6.4 GB), never whole in memory:
``A = G C`` with ``G`` standard normal, generated chunk by chunk from a seed
(:func:`dask.array.random.default_rng`, chunks of 100,000 rows), and ``C =
diag(σ) Q`` a fixed ``200 × 200`` matrix (``σ_i = 0.9^i + 1e-3``, ``Q``
orthogonal), so every pass over ``A`` regenerates it. Two worker processes of
one thread each, ``memory_limit="4GB"`` per worker. Set ``LINALG_BENCH_DASK_ROWS``
to run at another size (a hand check at 400,000 rows takes a minute or two).

- ``DaskRandomizedSVD``: ``k = 20``, oversampling 10, 2 power iterations:
  ``"linalg"`` is :func:`linalg.svd.randomized_svd` with
  ``method="subspace"`` (6 passes, ``A`` recomputed at each); ``"dask"`` and
  ``"dask_recompute"`` are :func:`dask.array.linalg.svd_compressed` with
  ``n_power_iter=2``, ``n_oversamples=10`` and ``compute=False`` (one graph:
  dask keeps the chunks of ``A`` it needs again, which at full size is most
  of ``A``) or ``compute=True`` (``A`` recomputed at each use, what dask
  advises for data larger than memory). All keep ``U`` on the workers and
  collect ``s`` and ``Vt``. ``track_max_relative_error``
  is the largest ``|s_i - σ_i(A)| / σ_i(A)`` over the top 20 against the exact
  singular values (of TSQR's ``R``); ``track_peak_worker_memory`` the largest
  peak resident memory of a worker process (MB), on a fresh cluster.
- ``DaskCountSketch``: ``S @ A`` for a CountSketch of 2,000 rows, against a
  dask sum over the same array (one pass: the floor).
"""

import os
import resource

import numpy as np

from linalg.sketch import countsketch
from linalg.svd import randomized_svd

ROWS = int(os.environ.get("LINALG_BENCH_DASK_ROWS", 4_000_000))
COLUMNS = 200
CHUNK_ROWS = 100_000
K = 20
OVERSAMPLE = 10
POWER_ITERATIONS = 2
SKETCH_ROWS = 2_000


def planted_factor(seed=0):
    """``C = diag(σ) Q`` with ``σ_i = 0.9^i + 1e-3`` and a random orthogonal ``Q``."""
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((COLUMNS, COLUMNS)))
    return (0.9 ** np.arange(COLUMNS) + 1e-3)[:, None] * Q


def lazy_matrix(rows=ROWS, seed=0):
    """``G C``, ``G`` standard normal generated chunk by chunk: a lazy dask array."""
    import dask.array as da

    G = da.random.default_rng(seed).standard_normal(
        (rows, COLUMNS), chunks=(min(CHUNK_ROWS, rows), COLUMNS)
    )
    return G @ planted_factor(seed)


def start_cluster():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        memory_limit="4GB",
        dashboard_address=None,
        host="127.0.0.1",
    )
    return cluster, Client(cluster)


def peak_worker_memory_mb(client):
    """The largest peak resident set of the client's worker processes, in MB."""
    peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return max(peaks.values()) / 1024.0


def _warm_worker():
    """Import linalg and compile its Numba kernels on a worker (outside the timings)."""
    import numpy as np

    from linalg.sketch import countsketch

    countsketch(4, 16, rng=0) @ np.ones((16, 2))


class _OnCluster:
    number = 1
    repeat = (1, 3, 600.0)
    warmup_time = 0.0
    timeout = 3600

    def setup(self, impl):
        self.cluster, self.client = start_cluster()
        self.client.run(_warm_worker)
        self.A = lazy_matrix()

    def teardown(self, impl):
        self.client.close()
        self.cluster.close()


class DaskRandomizedSVD(_OnCluster):
    """k = 20 of a lazily generated 4,000,000 x 200 float64 dask array."""

    params = (["linalg", "dask", "dask_recompute"],)
    param_names = ("impl",)

    def run(self, impl):
        """``s`` (NumPy), with ``U`` persisted on the workers and ``Vt`` collected."""
        if impl == "linalg":
            options = {"oversample": OVERSAMPLE, "n_iter": POWER_ITERATIONS, "rng": 0}
            result = randomized_svd(self.A, K, method="subspace", **options)
            return result.s
        import dask
        import dask.array as da

        options = {"n_power_iter": POWER_ITERATIONS, "n_oversamples": OVERSAMPLE}
        recompute = impl == "dask_recompute"
        factors = da.linalg.svd_compressed(self.A, K, **options, seed=0, compute=recompute)
        _, s, v = dask.persist(*factors)  # U stays on the workers, as with linalg
        s, _ = dask.compute(s, v)
        return s

    def time_svd(self, impl):
        self.run(impl)

    def track_max_relative_error(self, impl):
        import dask.array as da

        R = da.linalg.tsqr(self.A)[1].compute()
        exact = np.linalg.svd(R, compute_uv=False)[:K]
        return float(np.max(np.abs(np.sort(self.run(impl))[::-1] - exact) / exact))

    def track_peak_worker_memory(self, impl):
        self.run(impl)
        return peak_worker_memory_mb(self.client)

    track_peak_worker_memory.unit = "MB"


class DaskCountSketch(_OnCluster):
    """CountSketch (2,000 rows) of the same array, against a dask sum over it."""

    params = (["linalg", "dask_sum"],)
    param_names = ("impl",)

    def run(self, impl):
        if impl == "linalg":
            return (countsketch(SKETCH_ROWS, self.A.shape[0], rng=0) @ self.A).compute()
        return self.A.sum(axis=0).compute()

    def time_sketch(self, impl):
        self.run(impl)

    def track_peak_worker_memory(self, impl):
        self.run(impl)
        return peak_worker_memory_mb(self.client)

    track_peak_worker_memory.unit = "MB"
