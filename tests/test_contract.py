"""The bad-input contract every public function shares.

One table lists every public function that takes arrays, with a factory of
valid inputs and a check of the answer. The contract test feeds each array
argument NaN, Inf, a wrong number of dimensions, complex and object dtypes
and an empty array, and expects an error naming the argument; it feeds
read-only and non-contiguous arrays and expects the right answer; and it
checks that no call modifies its inputs. Every family adds its functions here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp

from linalg import curvature, kron, ot, sketch, solvers, svd

from conftest import poisson2d, spd_matrix


@dataclass(frozen=True)
class Entry:
    """A public function, valid inputs for it, and a check of its answer."""

    name: str
    function: Callable
    make: Callable[[np.random.Generator], dict]
    check: Callable[[object, dict], None]
    arrays: tuple[str, ...]
    batched: bool = False  # leading axes are a batch: extra dimensions are legal input


def _spd(rng, n=12):
    return poisson2d(int(np.sqrt(n))).toarray() + 0.1 * np.eye(n)


def _check_solution(result, inputs):
    A, b = np.asarray(inputs["A"]), np.asarray(inputs["b"])
    np.testing.assert_allclose(A @ np.asarray(result.x), b, rtol=1e-6, atol=1e-6)


def _check_least_squares(result, inputs):
    A, b = np.asarray(inputs["A"]), np.asarray(inputs["b"])
    expected = np.linalg.lstsq(A, b, rcond=None)[0]
    np.testing.assert_allclose(np.asarray(result.x), expected, rtol=1e-6, atol=1e-8)


def _check_inverse(result, inputs):
    A = np.asarray(inputs["A"])
    v = np.arange(1.0, len(A) + 1)
    np.testing.assert_allclose(result.matvec(v), np.linalg.solve(A, v), rtol=1e-10)


def _check_jacobi(result, inputs):
    A = np.asarray(inputs["A"])
    np.testing.assert_allclose(result.matvec(np.ones(len(A))), 1.0 / np.diag(A))


def _fisher(G, damping):
    G = np.asarray(G, dtype=np.float64)
    return damping * np.eye(G.shape[1]) + G.T @ G / G.shape[0]


def _check_dense_ihvp(result, inputs):
    v = np.linspace(-1.0, 1.0, result.dim)
    expected = np.linalg.solve(_fisher(inputs["grads"], inputs["damping"]), v)
    np.testing.assert_allclose(result.solve(v), expected, rtol=1e-9)


def _check_damped_solve(result, inputs):
    H, v = _spd(None, 16), np.asarray(inputs["v"])
    expected = np.linalg.solve(H + inputs["damping"] * np.eye(16), v)
    np.testing.assert_allclose(np.asarray(result.x), expected, rtol=1e-5)


def _check_woodbury(result, inputs):
    U, v = np.asarray(inputs["U"]), np.asarray(inputs["v"])
    expected = np.linalg.solve(np.diag(inputs["diag"]) + U @ U.T, v)
    np.testing.assert_allclose(np.asarray(result), expected, rtol=1e-10)


def _check_diagonal_estimate(result, inputs):
    np.testing.assert_allclose(result.estimate, np.diag(inputs["matvec"]), rtol=1e-12)


def _hvp(v):
    return _spd(None, 16) @ v


def _check_kron_matvec(result, inputs):
    A, B, X = (np.asarray(inputs[k]) for k in ("A", "B", "X"))
    expected = np.kron(A, B) @ X.reshape(-1, order="F")
    np.testing.assert_allclose(np.asarray(result).reshape(-1, order="F"), expected, rtol=1e-10)


def _check_kron_solve(result, inputs):
    A, B, X = (np.asarray(inputs[k]) for k in ("A", "B", "X"))
    K = np.kron(A, B) + inputs["damping"] * np.eye(A.shape[0] * B.shape[0])
    expected = np.linalg.solve(K, X.reshape(-1, order="F"))
    np.testing.assert_allclose(np.asarray(result).reshape(-1, order="F"), expected, rtol=1e-10)


def _check_kfac_factors(result, inputs):
    a, g = np.asarray(inputs["activations"]), np.asarray(inputs["grad_outputs"])
    np.testing.assert_allclose(result[0], a.T @ a / len(a), rtol=1e-12)
    np.testing.assert_allclose(result[1], g.T @ g / len(g), rtol=1e-12)


def _check_kfac(result, inputs):
    A, G = np.asarray(inputs["A"]), np.asarray(inputs["G"])
    V = np.arange(1.0, 1.0 + G.shape[0] * A.shape[0]).reshape(G.shape[0], A.shape[0])
    expected = np.linalg.solve(G + 0.1 * np.eye(len(G)), V) @ np.linalg.inv(
        A + 0.1 * np.eye(len(A))
    )
    np.testing.assert_allclose(result.solve(V), expected, rtol=1e-10)


def _check_inverse_root(result, inputs):
    A = np.asarray(inputs["A"])
    np.testing.assert_allclose(np.linalg.matrix_power(result, 2) @ A, np.eye(len(A)), atol=1e-8)


def _check_nearest(result, inputs):
    assert result.error < 1e-10


def _check_fisher_svd(result, inputs):
    assert result.L.shape == (6, 2) and result.R.shape == (2, 5) and 0.0 <= result.error < 1.0


def _check_sketch(result, inputs):
    S, A = inputs["sketch"], np.asarray(inputs["A"])
    np.testing.assert_allclose(np.asarray(result), S.todense() @ A, rtol=1e-12, atol=1e-12)


def _sketch_entry(kind: str, make_sketch: Callable) -> Entry:
    """``S @ A`` for a sketch of ``kind``: the array argument is ``A``."""
    return Entry(
        f"sketch.{kind} @ A",
        lambda A, sketch: sketch @ A,
        lambda rng: {"A": rng.standard_normal((40, 3)), "sketch": make_sketch()},
        _check_sketch,
        ("A",),
    )


def _check_row_sampling(result, inputs):
    assert result.shape == (5, 8) and np.isfinite(result.todense()).all()


def _check_nystrom(result, inputs):
    A = np.asarray(inputs["A"])
    U, lam = (np.asarray(x) for x in result)
    np.testing.assert_allclose((U * lam) @ U.T, A, atol=1e-8)  # rank 16 of a 16 x 16 matrix


def _check_randomized_svd(result, inputs):
    A = np.asarray(inputs["A"])
    np.testing.assert_allclose(result.s, np.linalg.svd(A, compute_uv=False)[:3], rtol=1e-10)
    U, s, Vt = result
    np.testing.assert_allclose(np.linalg.norm(A.T @ U - Vt.T * s, axis=0), 0.0, atol=1e-8)


def _tsvd_factors():
    """A fixed rank-4 truncated SVD of a 30 x 20 matrix."""
    r = np.random.default_rng(7)
    U = np.linalg.qr(r.standard_normal((30, 4)))[0]
    V = np.linalg.qr(r.standard_normal((20, 4)))[0]
    return U, np.array([4.0, 3.0, 2.0, 1.0]), V.T


def _surrogate():
    U, s, Vt = _tsvd_factors()
    return (U * s) @ Vt


def _tsvd_check(updated):
    """The object holds the best rank-4 approximation of ``updated(inputs)``."""

    def check(result, inputs):
        U, s, Vt = np.linalg.svd(updated(inputs), full_matrices=False)
        expected = (U[:, :4] * s[:4]) @ Vt[:4]
        got = (np.asarray(result.U) * np.asarray(result.s)) @ np.asarray(result.Vt)
        np.testing.assert_allclose(got, expected, atol=1e-10)

    return check


def _ot_inputs(rng):
    a, b = rng.uniform(0.5, 1.5, 6), rng.uniform(0.5, 1.5, 5)
    return {"a": a / a.sum(), "b": b / b.sum(), "C": rng.uniform(size=(6, 5))}


def _scaling_sinkhorn_plan(a, b, C, reg, iterations=5_000):
    """A plain NumPy Sinkhorn in the scaling domain (reg large enough not to underflow)."""
    K = np.exp(-np.asarray(C, dtype=np.float64) / reg)
    v = np.ones(K.shape[1])
    for _ in range(iterations):
        u = a / (K @ v)
        v = b / (K.T @ u)
    return u[:, None] * K * v[None, :]


def _check_ot(result, inputs):
    a, b, C = (np.asarray(inputs[k], dtype=np.float64) for k in ("a", "b", "C"))
    expected = _scaling_sinkhorn_plan(a, b, C, 0.5)
    assert result.converged
    np.testing.assert_allclose(np.asarray(result.plan), expected, rtol=1e-7, atol=1e-12)


def _ot_entry(name, solver):
    return Entry(
        f"ot.{name}",
        lambda a, b, C, **kw: solver(a, b, C, 0.5, **kw),
        _ot_inputs,
        _check_ot,
        ("a", "b", "C"),
    )


def _check_marginal_error(result, inputs):
    P, a, b = (np.asarray(inputs[k]) for k in ("plan", "a", "b"))
    expected = np.abs(P.sum(axis=1) - a).sum() + np.abs(P.sum(axis=0) - b).sum()
    assert result == pytest.approx(expected, rel=1e-12)


def _check_sqeuclidean(result, inputs):
    x, y = np.asarray(inputs["x"]), np.asarray(inputs["y"])
    expected = ((x[:, None, :] - y[None, :, :]) ** 2).sum(axis=-1)
    np.testing.assert_allclose(np.asarray(result), expected, rtol=1e-12, atol=1e-12)


def _check_grid_cost(result, inputs):
    points = np.indices((3, 4)).reshape(2, -1).T
    expected = ((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=-1)
    np.testing.assert_array_equal(result, expected)


def _check_nystrom_preconditioner(result, inputs):
    A = np.asarray(inputs["A"])
    inverse = np.linalg.inv(A + 0.1 * np.eye(len(A)))  # full rank: P⁻¹ = λ_min (A + μI)⁻¹
    v = np.arange(1.0, len(A) + 1)
    expected = (np.linalg.eigvalsh(A).min() + 0.1) * inverse @ v
    np.testing.assert_allclose(result.matvec(v), expected, rtol=1e-8)


def _check_leverage(result, inputs):
    Q, _ = np.linalg.qr(np.asarray(inputs["A"]))
    np.testing.assert_allclose(result, np.sum(Q**2, axis=1), rtol=1e-10)


def _check_ridge_leverage(result, inputs):
    X = np.asarray(inputs["X"])
    inverse = np.linalg.inv(X.T @ X + 0.5 * np.eye(X.shape[1]))
    np.testing.assert_allclose(result, np.einsum("ij,jk,ik->i", X, inverse, X), rtol=1e-10)


TABLE = [
    Entry(
        "solvers.cg",
        solvers.cg,
        lambda rng: {"A": _spd(rng, 16), "b": rng.standard_normal(16), "rtol": 1e-10},
        _check_solution,
        ("A", "b"),
    ),
    Entry(
        "solvers.minres",
        solvers.minres,
        lambda rng: (
            {"A": _spd(rng, 16) - 1.0 * np.eye(16), "b": rng.standard_normal(16)} | {"rtol": 1e-10}
        ),
        _check_solution,
        ("A", "b"),
    ),
    Entry(
        "solvers.gmres",
        solvers.gmres,
        lambda rng: (
            {"A": _spd(rng, 16) + np.triu(np.ones((16, 16)), 1)}
            | {"b": rng.standard_normal(16), "rtol": 1e-10}
        ),
        _check_solution,
        ("A", "b"),
    ),
    Entry(
        "solvers.lsqr",
        solvers.lsqr,
        lambda rng: (
            {"A": rng.standard_normal((20, 6)), "b": rng.standard_normal(20)}
            | {"atol": 1e-12, "btol": 1e-12}
        ),
        _check_least_squares,
        ("A", "b"),
    ),
    Entry(
        # a dense pattern has no fill to drop: IC(0) is the exact Cholesky factor
        "solvers.ichol",
        solvers.ichol,
        lambda rng: {"A": spd_matrix(rng, 16)},
        _check_inverse,
        ("A",),
    ),
    Entry(
        "curvature.DenseIHVP",
        curvature.DenseIHVP,
        lambda rng: {"grads": rng.standard_normal((6, 20)), "damping": 0.1},
        _check_dense_ihvp,
        ("grads",),
    ),
    Entry(
        "curvature.woodbury_solve",
        curvature.woodbury_solve,
        lambda rng: {
            "U": rng.standard_normal((12, 3)),
            "v": rng.standard_normal(12),
            "diag": np.linspace(1.0, 2.0, 12),
        },
        _check_woodbury,
        ("U", "v"),
    ),
    Entry(
        "curvature.ihvp_cg",
        lambda v, **kw: curvature.ihvp_cg(_hvp, v, **kw),
        lambda rng: {"v": rng.standard_normal(16), "damping": 0.5, "rtol": 1e-10},
        _check_damped_solve,
        ("v",),
    ),
    Entry(
        "curvature.ihvp_lissa",
        lambda v, **kw: curvature.ihvp_lissa(_hvp, v, **kw),
        lambda rng: {
            "v": rng.standard_normal(16),
            "damping": 0.5,
            "scale": 10.0,
            "depth": 2000,
            "rtol": 1e-9,
        },
        _check_damped_solve,
        ("v",),
    ),
    Entry(
        # a diagonal matrix: the Rademacher estimator is exact
        "curvature.hutchinson_diag",
        curvature.hutchinson_diag,
        lambda rng: {"matvec": np.diag(rng.uniform(1.0, 2.0, 10)), "n_matvecs": 4},
        _check_diagonal_estimate,
        ("matvec",),
    ),
    Entry(
        "kron.kron_matvec",
        kron.kron_matvec,
        lambda rng: {
            "A": rng.standard_normal((3, 4)),
            "B": rng.standard_normal((5, 2)),
            "X": rng.standard_normal((2, 4)),
        },
        _check_kron_matvec,
        ("A", "B", "X"),
    ),
    Entry(
        "kron.kron_solve",
        kron.kron_solve,
        lambda rng: (
            {"A": spd_matrix(rng, 4), "B": spd_matrix(rng, 3)}
            | {"X": rng.standard_normal((3, 4)), "damping": 0.1}
        ),
        _check_kron_solve,
        ("A", "B", "X"),
    ),
    Entry(
        "kron.kfac_factors",
        kron.kfac_factors,
        lambda rng: {
            "activations": rng.standard_normal((9, 4)),
            "grad_outputs": rng.standard_normal((9, 3)),
        },
        _check_kfac_factors,
        ("activations", "grad_outputs"),
    ),
    Entry(
        # damping 0.01 in "plain" mode adds sqrt(0.01) = 0.1 to each factor
        "kron.KFAC",
        lambda A, G, **kw: kron.KFAC(A, G, damping=0.01, damping_mode="plain", **kw),
        lambda rng: {"A": spd_matrix(rng, 5), "G": spd_matrix(rng, 4)},
        _check_kfac,
        ("A", "G"),
    ),
    Entry(
        "kron.matrix_inverse_root",
        lambda A, **kw: kron.matrix_inverse_root(A, 2, **kw),
        lambda rng: {"A": spd_matrix(rng, 8)},
        _check_inverse_root,
        ("A",),
        batched=True,
    ),
    Entry(
        "kron.nearest_kronecker",
        lambda M, **kw: kron.nearest_kronecker(M, (3, 4), (5, 2), **kw),
        lambda rng: {"M": np.kron(rng.standard_normal((3, 4)), rng.standard_normal((5, 2)))},
        _check_nearest,
        ("M",),
    ),
    Entry(
        "kron.InverseFactor",
        kron.InverseFactor,
        lambda rng: {"A": spd_matrix(rng, 16)},
        _check_inverse,
        ("A",),
    ),
    Entry(
        "kron.fisher_weighted_svd",
        lambda W, A, G, **kw: kron.fisher_weighted_svd(W, A, G, 2, **kw),
        lambda rng: (
            {"W": rng.standard_normal((6, 5)), "A": spd_matrix(rng, 5)} | {"G": spd_matrix(rng, 6)}
        ),
        _check_fisher_svd,
        ("W", "A", "G"),
    ),
    _sketch_entry("gaussian", lambda: sketch.gaussian(6, 40, rng=0)),
    _sketch_entry("rademacher", lambda: sketch.rademacher(6, 40, rng=0)),
    _sketch_entry("countsketch", lambda: sketch.countsketch(6, 40, rng=0)),
    _sketch_entry("sparse_sign", lambda: sketch.sparse_sign(6, 40, nnz_per_col=3, rng=0)),
    _sketch_entry("srht", lambda: sketch.srht(6, 40, rng=0)),
    _sketch_entry("row_sampling", lambda: sketch.row_sampling(np.full(40, 1 / 40), 6, rng=0)),
    Entry(
        "sketch.row_sampling",
        lambda probs, **kw: sketch.row_sampling(probs, 5, method="pivotal", rng=0, **kw),
        lambda rng: {"probs": np.linspace(1.0, 2.0, 8) / np.linspace(1.0, 2.0, 8).sum()},
        _check_row_sampling,
        ("probs",),
    ),
    Entry(
        "sketch.leverage_scores",
        sketch.leverage_scores,
        lambda rng: {"A": rng.standard_normal((30, 4))},
        _check_leverage,
        ("A",),
    ),
    Entry(
        "sketch.ridge_leverage_scores",
        lambda X, **kw: sketch.ridge_leverage_scores(X, 0.5, **kw),
        lambda rng: {"X": rng.standard_normal((30, 4))},
        _check_ridge_leverage,
        ("X",),
    ),
    Entry(
        "sketch.nystrom",
        lambda A, **kw: sketch.nystrom(A, 16, rng=0, **kw),
        lambda rng: {"A": spd_matrix(rng, 16)},
        _check_nystrom,
        ("A",),
    ),
    Entry(
        "sketch.nystrom_preconditioner",
        lambda A, **kw: sketch.nystrom_preconditioner(A, 16, mu=0.1, rng=0, **kw),
        lambda rng: {"A": spd_matrix(rng, 16)},
        _check_nystrom_preconditioner,
        ("A",),
    ),
    Entry(
        "sketch.sketched_lstsq",
        lambda A, b, **kw: sketch.sketched_lstsq(A, b, rng=0, **kw),
        lambda rng: {"A": rng.standard_normal((60, 4)), "b": rng.standard_normal(60)},
        _check_least_squares,
        ("A", "b"),
    ),
    Entry(
        "svd.randomized_svd",
        lambda A, **kw: svd.randomized_svd(A, 3, method="lanczos", rng=0, **kw),
        lambda rng: {"A": rng.standard_normal((40, 30)) * np.geomspace(1.0, 1e-3, 30)},
        _check_randomized_svd,
        ("A",),
    ),
    Entry(
        "svd.TruncatedSVD",
        svd.TruncatedSVD,
        lambda rng: dict(zip(("U", "s", "Vt"), _tsvd_factors(), strict=True)),
        _tsvd_check(lambda inputs: (np.asarray(inputs["U"]) * inputs["s"]) @ inputs["Vt"]),
        ("U", "s", "Vt"),
    ),
    Entry(
        "svd.TruncatedSVD.from_matrix",
        lambda A, **kw: svd.TruncatedSVD.from_matrix(A, 4, rng=0, **kw),
        lambda rng: {"A": rng.standard_normal((30, 4)) @ rng.standard_normal((4, 20))},
        _tsvd_check(lambda inputs: np.asarray(inputs["A"])),
        ("A",),
    ),
    Entry(
        "svd.TruncatedSVD.add_rows",
        lambda E, **kw: svd.TruncatedSVD(*_tsvd_factors(), **kw).add_rows(E),
        lambda rng: {"E": rng.standard_normal((3, 20))},
        _tsvd_check(lambda inputs: np.vstack([_surrogate(), inputs["E"]])),
        ("E",),
    ),
    Entry(
        "svd.TruncatedSVD.add_columns",
        lambda E, **kw: svd.TruncatedSVD(*_tsvd_factors(), **kw).add_columns(E),
        lambda rng: {"E": rng.standard_normal((30, 3))},
        _tsvd_check(lambda inputs: np.hstack([_surrogate(), inputs["E"]])),
        ("E",),
    ),
    Entry(
        "svd.TruncatedSVD.update",
        lambda B, C, **kw: svd.TruncatedSVD(*_tsvd_factors(), **kw).update(B, C),
        lambda rng: {"B": rng.standard_normal((30, 2)), "C": rng.standard_normal((20, 2))},
        _tsvd_check(lambda inputs: _surrogate() + inputs["B"] @ np.asarray(inputs["C"]).T),
        ("B", "C"),
    ),
    _ot_entry("sinkhorn", ot.sinkhorn),
    _ot_entry("sinkhorn_newton", ot.sinkhorn_newton),
    _ot_entry("sinkhorn_newton_sparse", ot.sinkhorn_newton_sparse),
    Entry(
        "ot.marginal_error",
        ot.marginal_error,
        lambda rng: {
            "plan": rng.uniform(size=(4, 3)) / 12,
            "a": np.full(4, 0.25),
            "b": np.full(3, 1 / 3),
        },
        _check_marginal_error,
        ("plan", "a", "b"),
    ),
    Entry(
        "ot.sqeuclidean_cost",
        ot.sqeuclidean_cost,
        lambda rng: {"x": rng.standard_normal((5, 2)), "y": rng.standard_normal((4, 2))},
        _check_sqeuclidean,
        ("x", "y"),
    ),
    Entry(
        "ot.grid_cost",
        ot.grid_cost,
        lambda rng: {"shape": (3, 4)},
        _check_grid_cost,
        (),
    ),
    Entry(
        "solvers.jacobi",
        solvers.jacobi,
        lambda rng: {"A": _spd(rng, 16)},
        _check_jacobi,
        ("A",),
    ),
]

IDS = [entry.name for entry in TABLE]


def _copy(value):
    return value.copy() if isinstance(value, np.ndarray) or sp.issparse(value) else value


def _assert_unchanged(before: dict, after: dict) -> None:
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[key], value, err_msg=f"{key} was modified")
        elif sp.issparse(value):
            assert (after[key] != value).nnz == 0, f"{key} was modified"


def _call(entry: Entry, inputs: dict):
    kwargs = dict(inputs)
    positional = [kwargs.pop(name) for name in entry.arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return entry.function(*positional, **kwargs)


def _poisoned(value: np.ndarray, poison: float) -> np.ndarray:
    bad = np.array(value, dtype=np.float64)
    bad.flat[bad.size // 2] = poison
    return bad


BAD_VALUES = {
    "nan": (lambda x: _poisoned(x, np.nan), ValueError, "contains NaN"),
    "inf": (lambda x: _poisoned(x, np.inf), ValueError, "contains Inf"),
    "extra_dim": (lambda x: x[..., None, None], ValueError, "must be"),
    "complex": (lambda x: x.astype(np.complex128), TypeError, "complex"),
    "object": (lambda x: x.astype(object), TypeError, "numeric"),
    "empty": (lambda x: x[:0], ValueError, None),
}


@pytest.mark.parametrize("entry", TABLE, ids=IDS)
def test_valid_input_gives_the_right_answer_and_is_not_modified(entry, rng):
    inputs = entry.make(rng)
    before = {k: _copy(v) for k, v in inputs.items()}
    entry.check(_call(entry, inputs), inputs)
    _assert_unchanged(before, inputs)


@pytest.mark.parametrize("entry", TABLE, ids=IDS)
def test_read_only_and_non_contiguous_inputs_work(entry, rng):
    inputs = entry.make(rng)
    for name in entry.arrays:
        value = inputs[name]
        strided = np.repeat(value, 2, axis=-1)[..., ::2]
        assert not strided.flags.c_contiguous or value.ndim == 0
        strided.flags.writeable = False
        inputs[name] = strided
    entry.check(_call(entry, inputs), inputs)


@pytest.mark.parametrize("bad", list(BAD_VALUES), ids=list(BAD_VALUES))
@pytest.mark.parametrize("entry", TABLE, ids=IDS)
def test_bad_arrays_get_an_error_naming_the_argument(entry, bad, rng):
    if bad == "extra_dim" and entry.batched:
        pytest.skip("extra dimensions make a batch of matrices for this routine")
    make_bad, error, match = BAD_VALUES[bad]
    for name in entry.arrays:
        inputs = entry.make(rng)
        inputs[name] = make_bad(inputs[name])
        before = {k: _copy(v) for k, v in inputs.items()}
        with pytest.raises(error, match=match) as caught:
            _call(entry, inputs)
        assert name in str(caught.value), f"{entry.name}: {caught.value} does not name {name}"
        _assert_unchanged(before, inputs)


# Entries whose callables are NumPy closures: with device vectors it is the closure
# that fails. Their device paths are tested with device closures elsewhere
# (tests/solvers/test_cg_namespace.py for ihvp_cg).
_HOST_CLOSURES = {"curvature.ihvp_cg"}


def _on_device(value, xp):
    return xp.asarray(value) if isinstance(value, np.ndarray) else value


@pytest.mark.parametrize("entry", TABLE, ids=IDS)
def test_device_arrays_are_computed_there_or_refused_with_a_remedy(entry, rng):
    """array_api_strict stands in for a device library: a routine either computes
    on it (and gives the right answer) or refuses it, before any work, with a
    TypeError that says what to do — never an AttributeError or a raw error."""
    xp = pytest.importorskip("array_api_strict")
    if entry.name in _HOST_CLOSURES:
        pytest.skip("its hvp is a NumPy closure; the device path is tested with a device one")
    remedies = ("move", "host", "pass", "use ", "convert")
    inputs = entry.make(rng)
    on_device = {k: _on_device(v, xp) for k, v in inputs.items()}
    try:
        result = _call(entry, on_device)
    except TypeError as exc:
        assert any(word in str(exc) for word in remedies), str(exc)
        return
    try:
        entry.check(result, inputs)
    except TypeError as exc:  # an object built on the device refuses the check's host arrays
        assert "convert" in str(exc) and "array type of" in str(exc), str(exc)
