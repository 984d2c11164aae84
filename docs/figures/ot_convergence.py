"""Regenerate docs/_static/ot_convergence.png: log10 marginal error against time.

Sinkhorn, Sinkhorn–Newton, Sinkhorn–Newton-Sparse and POT's log-domain Sinkhorn
on the SNS paper's random case (n = 500, C uniform on [0, 1], reg = 1/1200).
Run from the repository root: ``python docs/figures/ot_convergence.py`` (needs
matplotlib and POT; about a minute).
"""

import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from linalg.ot import marginal_error, sinkhorn, sinkhorn_newton, sinkhorn_newton_sparse

n, reg, seconds = 500, 1 / 1200, 20.0
out = (
    Path(sys.argv[1])
    if len(sys.argv) > 1
    else (Path(__file__).resolve().parent.parent / "_static" / "ot_convergence.png")
)
C = np.random.default_rng(0).uniform(size=(n, n))
a = np.full(n, 1 / n)
sinkhorn_newton_sparse(a[:40] * n / 40, a[:40] * n / 40, C[:40, :40], 1e-2)  # compile Numba

fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
res = sinkhorn(a, a, C, reg, maxiter=20_000, warn=False)
ax.plot(res.history["seconds"], np.log10(res.history["marginal_error"]), label="sinkhorn")
res = sinkhorn_newton(a, a, C, reg)
ax.plot(res.history["seconds"], np.log10(res.history["marginal_error"]), label="sinkhorn_newton")
res = sinkhorn_newton_sparse(a, a, C, reg)
t = np.concatenate([res.history["sinkhorn_seconds"], res.history["seconds"][1:]])
e = np.concatenate([res.history["sinkhorn_marginal_error"], res.history["marginal_error"][1:]])
ax.plot(t, np.log10(e), "o-", ms=3, label="sinkhorn_newton_sparse")

import ot  # noqa: E402  (POT, the peer)

times, errors, start, iterations = [], [], time.perf_counter(), 25
while time.perf_counter() - start < seconds:  # POT has no history: rerun with more iterations
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        P = ot.sinkhorn(a, a, C, reg, method="sinkhorn_log", numItermax=iterations, stopThr=0)
    times.append(time.perf_counter() - t0)
    errors.append(marginal_error(P, a, a))
    iterations *= 2
ax.plot(times, np.log10(errors), "s--", ms=3, label="POT sinkhorn_log")
ax.set_xscale("log")
ax.set_xlabel("seconds")
ax.set_ylabel("log10 L1 marginal error")
ax.set_title(f"random costs, n = {n}, reg = 1/1200")
ax.legend(fontsize=8)
fig.savefig(out, dpi=120)
