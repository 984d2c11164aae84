"""The ot family in ``python -m linalg``: each solver on a default problem."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from linalg._core.tour import TourRow, timed
from linalg.ot import sinkhorn, sinkhorn_newton, sinkhorn_newton_sparse, sqeuclidean_cost


def _gaussians(n: int = 301) -> tuple[np.ndarray, ...]:
    """N(0, 1) and N(1, 4) on fine grids, and their squared-distance cost."""
    x, y = np.linspace(-7.0, 7.0, n), np.linspace(-13.0, 15.0, n)
    a, b = np.exp(-(x**2) / 2), np.exp(-((y - 1.0) ** 2) / 8)
    return a / a.sum(), b / b.sum(), sqeuclidean_cost(x, y)


def _gaussian_cost(reg: float) -> float:
    """Closed-form transport cost of the entropic plan between N(0, 1) and N(1, 4)."""
    covariance = (np.sqrt(4 * 1.0 * 4.0 + reg**2 / 4) - reg / 2) / 2
    return 1.0 + 1.0 + 4.0 - 2 * covariance


def tour() -> Iterator[TourRow]:
    a, b, C = _gaussians()
    for solver, reg in ((sinkhorn, 1.0), (sinkhorn_newton, 0.5)):
        res, seconds = timed(lambda solver=solver, reg=reg: solver(a, b, C, reg))
        exact = _gaussian_cost(reg)
        yield TourRow(
            f"{solver.__name__}(a, b, C, {reg})",
            f"Gaussians, 301 points: {res.n_iter} its, {res.n_newton} Newton steps",
            abs(res.cost - exact) / exact,
            seconds,
            res.info["engine"],
            "cost against the closed form (Janati et al. 2020)",
        )

    n = 500
    C = np.random.default_rng(0).uniform(size=(n, n))
    u = np.full(n, 1.0 / n)
    res, seconds = timed(lambda: sinkhorn_newton_sparse(u, u, C, 1 / 1200))
    yield TourRow(
        "sinkhorn_newton_sparse(a, b, C, 1/1200)",
        f"500x500 uniform C: {res.n_iter} its + {res.n_newton} sparse Newton",
        res.marginal_error,
        seconds,
        res.info["engine"],
        "L1 marginal error, not a relative error",
    )
