"""Regenerate docs/_static/svd_methods.png: singular-value error against time for
each randomized SVD method on two planted spectra.

Run from the repository root: ``OPENBLAS_NUM_THREADS=1 python docs/figures/svd_methods.py`` (needs
matplotlib and scikit-learn). Each point is the median of three runs.
"""

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.utils.extmath import randomized_svd as sklearn_randomized_svd

from linalg.svd import randomized_svd

m, n, k = 4_000, 1_000, 20
rng = np.random.default_rng(0)
Q1, _ = np.linalg.qr(rng.standard_normal((m, n)))
Q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
spectra = {
    "geometric: σᵢ = 0.95ⁱ + 1e-3": 0.95 ** np.arange(n) + 1e-3,
    "polynomial: σᵢ = 1 / i": 1.0 / (1.0 + np.arange(n)),
}


def median_time(run):
    times, value = [], None
    for _ in range(3):
        start = time.perf_counter()
        value = run()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), value


def curve(sigma, runs):
    points = []
    for run in runs:
        seconds, s = median_time(run)
        points.append((seconds, np.max(np.abs(s - sigma[:k]) / sigma[:k])))
    return np.array(points).T


def methods(A):
    """For each method, one run per number of iterations."""
    return {
        "subspace": [
            lambda q=q: randomized_svd(A, k, method="subspace", n_iter=q, rng=0).s
            for q in range(0, 9)
        ],
        "block_krylov": [
            lambda q=q: randomized_svd(A, k, method="block_krylov", n_iter=q, rng=0).s
            for q in range(0, 7)
        ],
        "lanczos": [
            lambda q=q: randomized_svd(A, k, method="lanczos", n_iter=q, rng=0, warn=False).s
            for q in range(1, 10)
        ],
        "sklearn": [
            lambda q=q: sklearn_randomized_svd(A, k, n_iter=q, random_state=0)[1]
            for q in range(0, 9)
        ],
    }


fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
for ax, (title, sigma) in zip(axes, spectra.items(), strict=True):
    A = (Q1 * sigma) @ Q2.T
    for name, runs in methods(A).items():
        seconds, error = curve(sigma, runs)
        ax.loglog(seconds, np.maximum(error, 1e-16), "o-", label=name, markersize=3)
    ax.set_title(f"{m} × {n}, k = {k}, {title}", fontsize=9)
    ax.set_xlabel("seconds")
    ax.set_ylabel("max relative error of σ₁..σ_k")
axes[0].legend(fontsize=8)
fig.savefig(Path(__file__).resolve().parent.parent / "_static" / "svd_methods.png", dpi=120)
