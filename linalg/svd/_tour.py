"""The svd family in ``python -m linalg``: each routine on a default problem."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from linalg._core.tour import TourRow, relative_error, timed
from linalg.svd import TruncatedSVD, randomized_svd


def _planted(rng: np.random.Generator, m: int, n: int, sigma: np.ndarray) -> np.ndarray:
    Q1, _ = np.linalg.qr(rng.standard_normal((m, n)))
    Q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q1 * sigma) @ Q2.T


def tour() -> Iterator[TourRow]:
    rng = np.random.default_rng(0)
    sigma = 1.0 / (1.0 + np.arange(400))
    A = _planted(rng, 2_000, 400, sigma)
    for method in ("subspace", "block_krylov", "lanczos"):
        result, seconds = timed(lambda method=method: randomized_svd(A, 20, method=method, rng=0))
        yield TourRow(
            f'randomized_svd(A, 20, method="{method}")',
            f"2000x400, σ_i = 1/i: {result.n_passes} passes",
            relative_error(result.s, sigma[:20]),
            seconds,
            "reference",
            "singular values against the planted ones",
        )
    result, seconds = timed(lambda: randomized_svd(A, 200, tol=0.02, rng=0))
    true = np.linalg.norm(A - (result.U * result.s) @ result.Vt, 2)
    yield TourRow(
        "randomized_svd(A, 200, tol=0.02)",
        f"rank {result.s.size} chosen, estimate {result.error_estimate:.3f} >= true {true:.3f}",
        relative_error(result.s, sigma[: result.s.size]),
        seconds,
        "reference",
    )

    rows = sp.random_array((3_000, 500), density=0.01, rng=rng, format="csr")
    planted = sp.csr_array(rng.standard_normal((3_000, 10)) @ rng.standard_normal((10, 500)))
    M = (planted + rows).tocsr()
    tsvd = TruncatedSVD.from_matrix(M[:1_000], 10, rng=0)

    def stream():
        for start in range(1_000, 3_000, 200):
            tsvd.add_rows(M[start : start + 200])
        return tsvd

    _, seconds = timed(stream)
    exact = np.linalg.svd(M.toarray(), compute_uv=False)[:10]
    yield TourRow(
        "TruncatedSVD.add_rows(E) x 10",
        f"1000 -> 3000 sparse rows, rank 10; orthogonality {tsvd.orthogonality_error():.0e}",
        relative_error(np.asarray(tsvd.s), exact),
        seconds,
        "reference",
        "singular values against the SVD of the whole matrix",
    )
