"""Bad input to the OT solvers: an error naming the argument, before any work."""

from __future__ import annotations

import numpy as np
import pytest

from linalg.ot import (
    marginal_error,
    sinkhorn,
    sinkhorn_newton,
    sinkhorn_newton_sparse,
)

SOLVERS = [sinkhorn, sinkhorn_newton, sinkhorn_newton_sparse]
IDS = [s.__name__ for s in SOLVERS]


def _valid():
    return np.full(4, 0.25), np.full(3, 1 / 3), np.linspace(0.0, 1.0, 12).reshape(4, 3)


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda a, b, C: (a - np.array([0.5, 0, 0, 0]), b, C), ValueError, "a has negative"),
        (lambda a, b, C: (a, -b, C), ValueError, "b has negative"),
        (lambda a, b, C: (2 * a, b, C), ValueError, "a and b have different totals"),
        (lambda a, b, C: (a, b, np.where(C > 0.5, np.nan, C)), ValueError, "C contains NaN"),
        (lambda a, b, C: (a, b, C[:, :2]), ValueError, "C must have shape"),
        (lambda a, b, C: (a, b, C.T), ValueError, "C must have shape"),
        (lambda a, b, C: (np.zeros(4), b, C), ValueError, "a has zero total mass"),
        (lambda a, b, C: (a, b.astype(complex), C), TypeError, "b is complex"),
    ],
)
def test_bad_problem(solver, change, error, match):
    a, b, C = change(*_valid())
    with pytest.raises(error, match=match):
        solver(a, b, C, 0.1)


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
@pytest.mark.parametrize(
    ("option", "error", "match"),
    [
        ({"tol": -1.0}, ValueError, "tol must be >= 0"),
        ({"maxiter": 0}, ValueError, "maxiter must be >= 1"),
        ({"check_every": 1.5}, TypeError, "check_every must be an integer"),
        ({"warn": "yes"}, TypeError, "warn must be True or False"),
        ({"normalize": 1}, TypeError, "normalize must be True or False"),
        ({"engine": "gpu"}, ValueError, "engine must be"),
        ({"init": np.zeros(4)}, TypeError, "init must be a pair"),
        ({"init": (np.zeros(3), np.zeros(3))}, ValueError, r"init\[0\] must have shape"),
        ({"init": (np.zeros(4), np.full(3, np.nan))}, ValueError, r"init\[1\] contains NaN"),
    ],
)
def test_bad_options(solver, option, error, match):
    with pytest.raises(error, match=match):
        solver(*_valid(), 0.1, **option)


@pytest.mark.parametrize("solver", SOLVERS, ids=IDS)
@pytest.mark.parametrize("reg", [0.0, -1.0, np.inf, "0.1"])
def test_bad_reg(solver, reg):
    with pytest.raises((ValueError, TypeError), match="reg must"):
        solver(*_valid(), reg)


def test_batches_only_for_sinkhorn():
    a, b, C = _valid()
    for solver in (sinkhorn_newton, sinkhorn_newton_sparse):
        with pytest.raises(ValueError, match="a must be 1-D"):
            solver(np.stack([a, a]), np.stack([b, b]), C, 0.1)
    with pytest.raises(ValueError, match="a and b must both be 1-D or both 2-D"):
        sinkhorn(np.stack([a, a]), b, C, 0.1)
    with pytest.raises(ValueError, match="same batch size"):
        sinkhorn(np.stack([a, a]), np.stack([b, b, b]), C, 0.1)
    with pytest.raises(ValueError, match="C has batch size 3"):
        sinkhorn(np.stack([a, a]), np.stack([b, b]), np.stack([C, C, C]), 0.1)
    with pytest.raises(ValueError, match="is a batch"):
        sinkhorn(a, b, np.stack([C, C]), 0.1)


@pytest.mark.parametrize(
    ("eps_scaling", "error", "match"),
    [
        ([0.05], ValueError, "eps_scaling must be > 0.1"),
        ([1.0, 2.0], ValueError, "eps_scaling must be decreasing"),
        (0, ValueError, "eps_scaling must be >= 1"),
        ("fast", TypeError, "eps_scaling must be"),
    ],
)
def test_bad_eps_scaling(eps_scaling, error, match):
    with pytest.raises(error, match=match):
        sinkhorn(*_valid(), 0.1, eps_scaling=eps_scaling)


@pytest.mark.parametrize(
    ("option", "error", "match"),
    [
        ({"sparsity": "dense"}, ValueError, "sparsity must be 'auto'"),
        ({"sparsity": 1.5}, ValueError, "mass budget must be in"),
        ({"sparsity": 0}, ValueError, "sparsity must be >= 1"),
        ({"sparsity": None}, TypeError, "sparsity must be"),
        ({"warmup": "soon"}, ValueError, "warmup must be 'auto' or an int"),
        ({"warmup": -1}, ValueError, "warmup must be >= 0"),
        ({"cg_maxiter": 0}, ValueError, "cg_maxiter must be >= 1"),
    ],
)
def test_bad_sns_options(option, error, match):
    with pytest.raises(error, match=match):
        sinkhorn_newton_sparse(*_valid(), 0.1, **option)


def test_marginal_error_checks_and_norms():
    P = np.array([[0.5, 0.0], [0.1, 0.4]])
    assert marginal_error(P, [0.5, 0.5], [0.5, 0.5], norm=np.inf) == pytest.approx(0.1)
    assert marginal_error(P, [0.5, 0.5], [0.5, 0.5], norm=2) == pytest.approx(0.1 * np.sqrt(2))
    with pytest.raises(ValueError, match="norm must be 1, 2 or inf"):
        marginal_error(P, [0.5, 0.5], [0.5, 0.5], norm=3)
    with pytest.raises(ValueError, match="a and b must have shapes"):
        marginal_error(P, [0.5, 0.5, 0.0], [0.5, 0.5])
    with pytest.raises(ValueError, match="plan contains NaN"):
        marginal_error(np.full((2, 2), np.nan), [0.5, 0.5], [0.5, 0.5])
