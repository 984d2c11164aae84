"""woodbury_solve and WoodburySolver: against dense float64 solves, every form of D and C."""

import numpy as np
import pytest

from linalg._core.results import LinAlgError
from linalg.curvature._woodbury import WoodburySolver, woodbury, woodbury_solve
from linalg.solvers import cg

from conftest import RTOL


def _problem(rng, dtype, *, d=60, r=5, diag="vector", middle="identity"):
    """``(U, diag, C)`` with ``D + U C Uᵀ`` well conditioned, and that matrix in float64."""
    U = rng.standard_normal((d, r)).astype(dtype)
    D = rng.uniform(0.5, 2.0, d).astype(dtype) if diag == "vector" else 0.75
    C = {
        "identity": None,
        "spd": np.diag(np.geomspace(0.1, 3.0, r)) + 0.05,
        # a downdate: negative weights small enough for D + U C Uᵀ to stay definite
        "indefinite": np.diag([2.0, 1.0] + [-0.5 / d] * (r - 2)),
        "singular": np.diag([1.0] * (r - 2) + [0.0, 0.0]),
    }[middle]
    C = None if C is None else C.astype(dtype)
    U64 = U.astype(np.float64)
    C64 = np.eye(r) if C is None else C.astype(np.float64)
    dense = np.diag(np.broadcast_to(np.asarray(D, dtype=np.float64), d)) + U64 @ C64 @ U64.T
    return U, D, C, dense


def _relative_error(x, exact):
    x = np.asarray(x, dtype=np.float64)
    return np.linalg.norm(x - exact) / np.linalg.norm(exact)


@pytest.mark.parametrize("middle", ["identity", "spd", "indefinite", "singular"])
@pytest.mark.parametrize("diag", ["vector", "scalar"])
def test_solve_matches_a_dense_solve(rng, dtype, diag, middle):
    U, D, C, dense = _problem(rng, dtype, diag=diag, middle=middle)
    v = rng.standard_normal(60).astype(dtype)
    V = rng.standard_normal((60, 4)).astype(dtype)
    x = woodbury_solve(U, v, diag=D, C=C)
    X = woodbury_solve(U, V, diag=D, C=C)
    assert x.shape == (60,) and X.shape == (60, 4)
    assert x.dtype == dtype and X.dtype == dtype
    assert _relative_error(x, np.linalg.solve(dense, v.astype(np.float64))) <= RTOL[dtype]
    assert _relative_error(X, np.linalg.solve(dense, V.astype(np.float64))) <= RTOL[dtype]


@pytest.mark.parametrize(
    ("middle", "method"),
    [("identity", "cholesky"), ("spd", "cholesky"), ("indefinite", "lu"), ("singular", "lu")],
)
def test_solver_reuses_its_factorization(rng, middle, method):
    U, D, C, dense = _problem(rng, np.float64, middle=middle)
    inverse = np.linalg.inv(dense)
    solver = woodbury(U, diag=D, C=C)
    assert isinstance(solver, WoodburySolver)
    assert solver.shape == (60, 60) and solver.dtype == np.float64
    assert solver.rank == 5 and solver.method == method
    for _ in range(3):  # every solve with the same factors
        v = rng.standard_normal(60)
        np.testing.assert_allclose(solver.solve(v), inverse @ v, rtol=1e-10, atol=1e-12)
    V = rng.standard_normal((60, 3))
    np.testing.assert_allclose(solver.matmat(V), inverse @ V, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(solver.rmatvec(V[:, 0]), inverse @ V[:, 0], rtol=1e-10, atol=1e-12)
    op = solver.as_linear_operator()
    np.testing.assert_allclose(op @ V, inverse @ V, rtol=1e-10, atol=1e-12)


def test_scalar_and_constant_vector_diagonals_agree(rng):
    U = rng.standard_normal((30, 4))
    v = rng.standard_normal(30)
    scalar = woodbury_solve(U, v, diag=0.3)
    vector = woodbury_solve(U, v, diag=np.full(30, 0.3))
    np.testing.assert_allclose(scalar, vector, rtol=1e-12)


def test_dtypes_follow_the_inputs(rng):
    U32 = rng.standard_normal((20, 3)).astype(np.float32)
    v32 = rng.standard_normal(20).astype(np.float32)
    assert woodbury_solve(U32, v32, diag=2.0).dtype == np.float32  # a scalar does not widen
    assert woodbury_solve(U32, v32.astype(np.float64), diag=2.0).dtype == np.float64
    assert woodbury(U32, diag=np.full(20, 2.0)).dtype == np.float64
    solver = woodbury(U32, diag=np.full(20, 2.0, dtype=np.float32))
    assert solver.dtype == np.float32
    assert solver.solve(v32.astype(np.float64)).dtype == np.float64
    x = woodbury_solve(np.arange(6).reshape(3, 2), np.ones(3, dtype=np.int64), diag=1)
    assert x.dtype == np.float64


def test_preconditions_cg(rng):
    # D + U Uᵀ exactly: CG converges in one iteration with its inverse as preconditioner
    U, D, _, dense = _problem(rng, np.float64)
    b = rng.standard_normal(60)
    res = cg(dense, b, M=woodbury(U, diag=D), rtol=1e-10)
    assert res.converged and res.n_iter <= 2


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    U, D, C, dense = _problem(rng, np.float64, middle="spd")
    v = rng.standard_normal(60)
    x = woodbury_solve(torch.from_numpy(U), torch.from_numpy(v), diag=torch.from_numpy(D), C=C)
    assert isinstance(x, torch.Tensor)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(dense, v), rtol=1e-10)
    solver = woodbury(torch.from_numpy(U), diag=D, C=torch.from_numpy(C))
    assert isinstance(solver.solve(v), torch.Tensor)  # the kind of U
    assert isinstance(solver.matvec(v), np.ndarray)  # operator products stay NumPy


def test_inputs_are_not_modified_and_views_work(rng):
    U, D, C, dense = _problem(rng, np.float64, middle="indefinite")
    V = rng.standard_normal((4, 60)).T  # non-contiguous columns
    for a in (U, D, C, V):
        a.setflags(write=False)
    copies = [a.copy() for a in (U, D, C, V)]
    X = woodbury_solve(np.asfortranarray(U), V, diag=D, C=C)
    woodbury(U[::1], diag=D, C=C).solve(V)
    for a, before in zip((U, D, C, V), copies, strict=True):
        np.testing.assert_array_equal(a, before)
    np.testing.assert_allclose(X, np.linalg.solve(dense, V), rtol=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"diag": 0.0}, ValueError, "diag must be positive"),
        ({"diag": -1.0}, ValueError, "diag must be positive"),
        ({"diag": np.r_[1.0, 0.0, np.ones(8)]}, ValueError, r"diag\[1\] = 0"),
        ({"diag": np.ones(9)}, ValueError, "diag must be a scalar or have shape"),
        ({"diag": np.full(10, np.nan)}, ValueError, "diag contains NaN"),
        ({"diag": 1.0, "C": np.eye(2)}, ValueError, "C must be square of shape"),
        ({"diag": 1.0, "C": np.ones((3, 2))}, ValueError, "C must be square"),
        ({"diag": 1.0, "C": np.triu(np.ones((3, 3)))}, ValueError, "C must be symmetric"),
        ({"diag": 1.0, "C": np.full((3, 3), np.inf)}, ValueError, "C contains Inf"),
        ({"diag": 1.0, "C": np.eye(3) * 1j}, TypeError, "C is complex"),
    ],
)
def test_bad_parameters_are_named(rng, kwargs, error, match):
    U = rng.standard_normal((10, 3))
    with pytest.raises(error, match=match):
        woodbury_solve(U, np.ones(10), **kwargs)
    with pytest.raises(error, match=match):
        woodbury(U, **kwargs)


def test_bad_arrays_are_named(rng):
    U = rng.standard_normal((10, 3))
    with pytest.raises(ValueError, match="v must have 10 rows"):
        woodbury_solve(U, np.ones(9), diag=1.0)
    with pytest.raises(ValueError, match="v must have 10 rows"):
        woodbury(U, diag=1.0).solve(np.ones((9, 2)))
    with pytest.raises(ValueError, match="U must be 2-D"):
        woodbury_solve(np.ones(10), np.ones(10), diag=1.0)
    with pytest.raises(ValueError, match="v must be 1-D or 2-D"):
        woodbury_solve(U, np.ones((10, 1, 1)), diag=1.0)
    bad = U.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="U contains NaN"):
        woodbury_solve(bad, np.ones(10), diag=1.0)
    with pytest.raises(ValueError, match="U is empty"):
        woodbury(np.ones((10, 0)), diag=1.0)


def test_a_singular_matrix_raises_linalg_error():
    u = np.eye(4)[:, :1]  # I - e0 e0ᵀ is singular
    with pytest.raises(LinAlgError, match="singular"):
        woodbury(u, diag=1.0, C=-np.ones((1, 1)))
