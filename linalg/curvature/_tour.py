"""The curvature family in ``python -m linalg``: each IHVP on a default problem."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from linalg._core.tour import TourRow, relative_error, timed
from linalg.curvature import (
    DenseIHVP,
    SlidingWindowIHVP,
    hutchinson_trace,
    ihvp_cg,
    ihvp_lissa,
    woodbury_solve,
)


def tour() -> Iterator[TourRow]:
    rng = np.random.default_rng(0)
    m, d, damping = 64, 1000, 1e-2
    G = rng.standard_normal((m, d)) / np.sqrt(d)
    v = rng.standard_normal(d)
    fisher = damping * np.eye(d) + G.T @ G / m
    exact = np.linalg.solve(fisher, v)
    size = f"d={d}, m={m} gradients"

    F, seconds = timed(lambda: DenseIHVP(G, damping=damping))
    x, solve_seconds = timed(lambda: F.solve(v))
    yield TourRow(
        "DenseIHVP(G).solve(v)",
        f"{size}: F⁻¹v",
        relative_error(x, exact),
        seconds + solve_seconds,
        F.engine,
    )
    diagonal, seconds = timed(F.inv_diag)
    yield TourRow(
        "DenseIHVP(G).inv_diag()",
        f"{size}: diag(F⁻¹)",
        relative_error(diagonal, np.diag(np.linalg.inv(fisher))),
        seconds,
        F.engine,
    )

    window = SlidingWindowIHVP(d, m, damping=damping, dtype=np.float64)
    stream = np.vstack([rng.standard_normal((2 * m, d)) / np.sqrt(d), G])

    def slide() -> np.ndarray:
        for g in stream:
            window.push(g)
        return window.solve(v)

    x, seconds = timed(slide)
    yield TourRow(
        "SlidingWindowIHVP push + solve",
        f"{len(stream)} pushes, window {m}: F⁻¹v",
        relative_error(x, exact),
        seconds,
        window.engine,
    )

    U, diag = G.T, np.full(d, damping)
    x, seconds = timed(lambda: woodbury_solve(U, v, diag=diag, C=np.eye(m) / m))
    yield TourRow(
        "woodbury_solve",
        f"(D + U C Uᵀ) x = v, rank {m}",
        relative_error(x, exact),
        seconds,
        "reference",
    )

    H = G.T @ G / m  # stands in for a Hessian-vector-product closure
    res, seconds = timed(lambda: ihvp_cg(lambda u: H @ u, v, damping=damping, rtol=1e-10))
    yield TourRow(
        "ihvp_cg(hvp, v)",
        f"(H + λI)⁻¹v: {res.n_iter} hvps",
        relative_error(res.x, exact),
        seconds,
        res.info["engine"],
    )
    scale = 1.1 * float(np.linalg.eigvalsh(fisher)[-1])
    res, seconds = timed(
        lambda: ihvp_lissa(lambda u: H @ u, v, damping=damping, scale=scale, depth=5000, rtol=1e-12)
    )
    yield TourRow(
        "ihvp_lissa(hvp, v)",
        f"(H + λI)⁻¹v: {res.n_iter} hvps",
        relative_error(res.x, exact),
        seconds,
        "reference",
    )

    spectrum = np.arange(1, d + 1) ** -2.0
    estimate, seconds = timed(
        lambda: hutchinson_trace(np.diag(spectrum), n_matvecs=60, method="hutch++", rng=0)
    )
    yield TourRow(
        "hutchinson_trace, hutch++",
        f"trace of diag(j⁻²), {estimate.n_matvecs} matvecs",
        abs(estimate.estimate - spectrum.sum()) / spectrum.sum(),
        seconds,
        "reference",
    )
