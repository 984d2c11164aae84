"""Regenerate docs/_static/nystrom_pcg.png: CG against Nyström PCG on an RBF kernel system.

Run from the repository root: ``python docs/figures/nystrom_pcg.py`` (needs matplotlib).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from linalg.sketch import nystrom_preconditioner, rbf_kernel
from linalg.solvers import cg

n, mu = 4_000, 1e-2
X = np.random.default_rng(0).standard_normal((n, 20))
A = rbf_kernel(0.01)(X, X) + mu * np.eye(n)
b = np.random.default_rng(1).standard_normal(n)

fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
plain = cg(A, b, rtol=1e-8, maxiter=5_000)
ax.semilogy(plain.history / np.linalg.norm(b), label=f"CG ({plain.n_iter} iterations)")
for rank in (50, 200, 800):
    M = nystrom_preconditioner(A - mu * np.eye(n), rank, mu=mu, adaptive=False, rng=0)
    result = cg(A, b, rtol=1e-8, M=M)
    ax.semilogy(
        result.history / np.linalg.norm(b),
        label=f"Nyström PCG, rank {rank} ({result.n_iter} iterations)",
    )
ax.set_xlabel("iteration")
ax.set_ylabel("‖b − A x‖ / ‖b‖")
ax.set_title(f"RBF kernel system, n = {n}, 20-d points, γ = 0.01, μ = {mu:g}")
ax.legend(fontsize=8)
fig.savefig(Path(__file__).resolve().parent.parent / "_static" / "nystrom_pcg.png", dpi=120)
