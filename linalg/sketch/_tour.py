"""The sketch family in ``python -m linalg``: each routine on a default problem."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from linalg._core.tour import TourRow, relative_error, timed
from linalg.sketch import (
    countsketch,
    gaussian,
    leverage_scores,
    nystrom,
    nystrom_preconditioner,
    rbf_kernel,
    ridge_leverage_scores,
    sketched_lstsq,
    sparse_sign,
    srht,
)
from linalg.solvers import cg


def _embedding_rows(rng: np.random.Generator) -> Iterator[TourRow]:
    Q, _ = np.linalg.qr(rng.standard_normal((50_000, 20)))
    for make in (gaussian, srht, sparse_sign, countsketch):
        S = make(400, 50_000, rng=1)
        SQ, seconds = timed(lambda S=S: S @ Q)
        s = np.linalg.svd(SQ, compute_uv=False)
        yield TourRow(
            f"{make.__name__}(400, n) @ Q",
            f"singular values in [{s.min():.2f}, {s.max():.2f}]",
            float(max(1 - s.min(), s.max() - 1)),
            seconds,
            S._random_engine(),
            "distortion, not an error",
        )


def tour() -> Iterator[TourRow]:
    rng = np.random.default_rng(0)
    yield from _embedding_rows(rng)

    A = rng.standard_normal((20_000, 100)) * np.geomspace(1.0, 1e-8, 100)
    b = rng.standard_normal(20_000)
    result, seconds = timed(lambda: sketched_lstsq(A, b, rng=0))
    best = np.linalg.lstsq(A, b, rcond=None)[0]
    optimum = np.linalg.norm(A @ best - b)
    yield TourRow(
        "sketched_lstsq(A, b)",
        f"20000x100, cond 1e8, {result.n_iter} LSQR iterations",
        abs(result.residual_norm - optimum) / optimum,
        seconds,
        "reference",
        "residual against numpy.linalg.lstsq",
    )

    T = rng.standard_t(1.5, size=(20_000, 10))
    scores, seconds = timed(lambda: leverage_scores(T, method="sketch", rng=0))
    exact = leverage_scores(T)
    yield TourRow(
        'leverage_scores(A, method="sketch")',
        f"20000x10, heavy-tailed rows: worst row ratio {np.max(scores / exact):.2f}",
        relative_error(scores, exact),
        seconds,
        "reference",
    )

    X = rng.standard_normal((2_000, 5))
    kernel = rbf_kernel(0.05)
    approx, seconds = timed(
        lambda: ridge_leverage_scores(X, 1e-1, kernel=kernel, method="recursive", rng=0)
    )
    exact = ridge_leverage_scores(X, 1e-1, kernel=kernel)
    yield TourRow(
        'ridge_leverage_scores(X, λ, kernel, "recursive")',
        f"2000 points, d_eff {exact.sum():.0f}, kernel never formed",
        relative_error(approx, exact),
        seconds,
        "reference",
    )

    K = kernel(X, X)
    low, seconds = timed(lambda: nystrom(K, 200, rng=0))
    w = np.linalg.eigvalsh(K)[::-1]
    best = np.sqrt(np.sum(w[200:] ** 2))
    error = np.linalg.norm(K - (low.U * low.lam) @ low.U.T)
    yield TourRow(
        "nystrom(K, 200)",
        f"error {error / best:.2f}x the best rank-200",
        error / np.linalg.norm(K),
        seconds,
        "reference",
    )

    mu = 1e-3
    rhs = rng.standard_normal(2_000)
    plain = cg(K + mu * np.eye(2_000), rhs, rtol=1e-8, maxiter=20_000)

    def pcg():
        M = nystrom_preconditioner(K, 50, mu=mu, rng=0)
        return cg(K + mu * np.eye(2_000), rhs, M=M, rtol=1e-8)

    result, seconds = timed(pcg)
    exact = np.linalg.solve(K + mu * np.eye(2_000), rhs)
    yield TourRow(
        "cg(K + μI, b, M=nystrom_preconditioner)",
        f"{result.n_iter} iterations (plain CG {plain.n_iter})",
        relative_error(result.x, exact),
        seconds,
        "reference",
    )
