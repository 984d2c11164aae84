"""The kron family in ``python -m linalg``: each routine on a default problem."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from linalg._core.tour import TourRow, relative_error, timed
from linalg.kron import (
    KFAC,
    InverseFactor,
    Shampoo,
    fisher_weighted_svd,
    kron_solve,
    matrix_inverse_root,
    nearest_kronecker,
)


def _spd(rng: np.random.Generator, n: int) -> np.ndarray:
    X = rng.standard_normal((n, 2 * n))
    return X @ X.T / (2 * n) + 0.1 * np.eye(n)


def tour() -> Iterator[TourRow]:
    rng = np.random.default_rng(0)
    A, G = _spd(rng, 24), _spd(rng, 16)
    V = rng.standard_normal((16, 24))
    damping = 1e-2
    dense = np.kron(A, G) + damping * np.eye(24 * 16)  # acts on column-major vec(V)
    exact = np.linalg.solve(dense, V.reshape(-1, order="F")).reshape(16, 24, order="F")

    y, seconds = timed(lambda: kron_solve(A, G, V, damping=damping))
    yield TourRow(
        "kron_solve(A, G, V)",
        "(A ⊗ G + λI)⁻¹ vec(V), 384 unknowns",
        relative_error(y, exact),
        seconds,
        "reference",
    )
    kfac = KFAC(A, G, damping=damping, damping_mode="exact")
    y, seconds = timed(lambda: kfac.solve(V))
    yield TourRow(
        'KFAC(A, G, "exact").solve(V)',
        "G Y A + λY = V, 16x24",
        relative_error(y, exact),
        seconds,
        kfac.engine,
    )

    S = _spd(rng, 200)
    X, seconds = timed(lambda: matrix_inverse_root(S, 4))
    residual = np.linalg.norm(np.linalg.matrix_power(X, 4) @ S - np.eye(200)) / np.sqrt(200)
    yield TourRow("matrix_inverse_root(A, 4)", "A^(-1/4), n=200", residual, seconds, "reference")

    shampoo = Shampoo((16, 24), eps=1e-8)
    grads = rng.standard_normal((8, 16, 24))

    def shampoo_step() -> np.ndarray:
        for g in grads:
            shampoo.update(g)
        return shampoo.precondition(grads[-1])

    step, seconds = timed(shampoo_step)
    L = np.einsum("nij,nkj->ik", grads, grads) + 1e-8 * np.eye(16)
    R = np.einsum("nji,njk->ik", grads, grads) + 1e-8 * np.eye(24)
    root = lambda M: matrix_inverse_root(M, 4)  # noqa: E731
    yield TourRow(
        "Shampoo.precondition",
        "L^(-1/4) g R^(-1/4), 8 updates",
        relative_error(step, root(L) @ grads[-1] @ root(R)),
        seconds,
        "reference",
    )

    B = rng.standard_normal((4, 5))
    M = np.kron(A[:6, :6], B)
    approx, seconds = timed(lambda: nearest_kronecker(M, (6, 6), (4, 5)))
    yield TourRow(
        "nearest_kronecker(M)",
        "M = A ⊗ B recovered (relative error)",
        approx.error,
        seconds,
        "reference",
    )

    factor = InverseFactor(_spd(rng, 300))
    updates = rng.standard_normal((100, 300)) / 20

    def hundred_updates() -> np.ndarray:
        for u in updates:
            factor.rank_one_update(u, decay=0.99)
        return factor.inverse

    inverse, seconds = timed(hundred_updates)
    yield TourRow(
        "InverseFactor.rank_one_update",
        "100 Sherman–Morrison updates, n=300",
        relative_error(inverse, np.linalg.inv(factor.matrix)),
        seconds,
        "reference",
    )

    W = rng.standard_normal((16, 24))
    low, seconds = timed(lambda: fisher_weighted_svd(W, A, G, 4))
    whitened = np.linalg.cholesky(G).T @ W @ np.linalg.cholesky(A)
    sigma = np.linalg.svd(whitened, compute_uv=False)
    optimum = np.sqrt(np.sum(sigma[4:] ** 2)) / np.linalg.norm(sigma)
    yield TourRow(
        "fisher_weighted_svd(W, A, G, 4)",
        f"rank 4: weighted error {low.error:.3f} vs the optimum",
        abs(low.error - optimum) / optimum,
        seconds,
        "reference",
    )
