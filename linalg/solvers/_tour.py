"""The solvers family in ``python -m linalg``: each solver on a default problem."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from linalg._core.tour import TourRow, relative_error, timed
from linalg.solvers import cg, gmres, ichol, lsqr, minres


def _poisson(n: int) -> sp.csr_array:
    T = sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(n, n))
    eye = sp.eye_array(n)
    return (sp.kron(T, eye) + sp.kron(eye, T)).tocsr()


def tour() -> Iterator[TourRow]:
    rng = np.random.default_rng(0)
    grid = 128
    A = _poisson(grid)
    b = rng.standard_normal(A.shape[0])
    exact = spla.spsolve(A.tocsc(), b)
    small = _poisson(4)  # compile the kernels outside the timings
    cg(small, np.ones(16), M=ichol(small))
    cg(small, np.ones((16, 2)))
    size = f"Poisson {grid}x{grid}"
    for label, make_M in [
        ("cg", lambda: None),
        ("cg, M=ichol(A)", lambda: ichol(A)),
        ("cg, M=ichol(A, modified=True)", lambda: ichol(A, modified=True)),
    ]:
        res, seconds = timed(lambda make_M=make_M: cg(A, b, rtol=1e-10, M=make_M()))
        yield TourRow(
            label,
            f"{size}: {res.n_iter} iterations",
            relative_error(res.x, exact),
            seconds,
            res.info["engine"],
        )

    B = rng.standard_normal((A.shape[0], 8))
    res, seconds = timed(lambda: cg(A, B, rtol=1e-10))
    exact_B = spla.splu(A.tocsc()).solve(B)
    yield TourRow(
        "cg, 8 right-hand sides",
        f"{size}: {int(res.n_iter.max())} iterations",
        relative_error(res.x, exact_B),
        seconds,
        res.info["engine"],
    )

    shift = 0.01  # between the smallest eigenvalues: A - shift I is indefinite
    res, seconds = timed(lambda: minres(A, b, shift=shift, rtol=1e-10))
    yield TourRow(
        f"minres, shift={shift}",
        f"{size} - {shift} I, indefinite: {res.n_iter} iterations",
        relative_error(res.x, spla.spsolve((A - shift * sp.eye_array(A.shape[0])).tocsc(), b)),
        seconds,
        res.info["engine"],
    )

    convection = (A + sp.diags_array([0.5, -0.5], offsets=[-1, 1], shape=A.shape)).tocsr()
    res, seconds = timed(lambda: gmres(convection, b, rtol=1e-10, restart=50, M=ichol(A)))
    yield TourRow(
        "gmres(50), M=ichol(A)",
        f"convection-diffusion {grid}x{grid}: {res.n_iter} iterations",
        relative_error(res.x, spla.spsolve(convection.tocsc(), b)),
        seconds,
        res.info["engine"],
    )

    tall = rng.standard_normal((2000, 200))
    y = rng.standard_normal(2000)
    res, seconds = timed(lambda: lsqr(tall, y, atol=1e-12, btol=1e-12))
    yield TourRow(
        "lsqr",
        f"least squares, 2000x200: {res.n_iter} iterations",
        relative_error(res.x, np.linalg.lstsq(tall, y, rcond=None)[0]),
        seconds,
        res.info["engine"],
    )
