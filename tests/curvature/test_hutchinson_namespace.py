"""hutchinson_trace and hutchinson_diag on matrices and closures computed through
their own array-API namespace.

array_api_strict (default run) stands in for a device library; the same cases
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. The probes are the
host's (drawn from the same stream, then copied over), so every estimate is
compared with the NumPy path on the same seed (1e-10 in float64, 1e-4 in
float32), and with exact answers where the estimators are exact.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from linalg import LinAlgError
from linalg.curvature import hutchinson_diag, hutchinson_trace

from conftest import RTOL

METHODS = ["hutchinson", "hutch++", "xtrace"]


def relative(got: float, want: float) -> float:
    return abs(got - want) / max(abs(want), 1e-300)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("symmetric", [True, False], ids=["symmetric", "general"])
def test_trace_of_a_matrix_equals_numpy_path(namespace, rng, dtype, method, symmetric):
    to_array, to_numpy = namespace
    A = rng.standard_normal((40, 40))
    A = (A + A.T if symmetric else A).astype(dtype)
    A_device = to_array(A)
    got = hutchinson_trace(A_device, n_matvecs=24, method=method, rng=11)
    want = hutchinson_trace(A, n_matvecs=24, method=method, rng=11)
    rtol = RTOL[np.dtype(dtype)]
    assert type(got.estimate) is float and type(got.std_error) is float
    assert relative(got.estimate, want.estimate) <= rtol
    assert abs(got.std_error - want.std_error) <= rtol * (want.std_error + abs(want.estimate))
    assert got.n_matvecs == want.n_matvecs and got.info == want.info
    np.testing.assert_array_equal(to_numpy(A_device), A)  # the input is unchanged


@pytest.mark.parametrize("method", METHODS)
def test_trace_of_a_closure_with_like(namespace, rng, dtype, method):
    to_array, _ = namespace
    A = rng.standard_normal((30, 30))
    A_device = to_array(A.astype(dtype))
    seen = []

    def matvec(v):
        seen.append((type(v), str(v.dtype), tuple(v.shape)))
        return A_device @ v

    like = to_array(np.zeros(1, dtype=dtype))
    got = hutchinson_trace(matvec, 30, n_matvecs=12, method=method, rng=2, like=like)
    want = hutchinson_trace(lambda v: A @ v, 30, n_matvecs=12, method=method, rng=2)
    assert len(seen) == got.n_matvecs == want.n_matvecs
    assert set(seen) == {(type(like), str(like.dtype), (30,))}  # probes in like's type and dtype
    assert relative(got.estimate, want.estimate) <= RTOL[np.dtype(dtype)]


def test_like_a_host_tensor_hands_the_closure_its_type(rng):
    torch = pytest.importorskip("torch")
    A = rng.standard_normal((20, 20))
    A_torch = torch.from_numpy(A.astype(np.float32))
    seen = set()

    def matvec(v):
        seen.add((type(v), v.dtype))
        return A_torch @ v

    like = torch.zeros(1, dtype=torch.float32)
    got = hutchinson_trace(matvec, 20, n_matvecs=9, rng=1, like=like)
    want = hutchinson_trace(A, n_matvecs=9, rng=1)
    assert seen == {(torch.Tensor, torch.float32)}
    assert relative(got.estimate, want.estimate) <= 1e-4
    diag = hutchinson_diag(matvec, 20, n_matvecs=4, rng=1, like=like)
    assert isinstance(diag.estimate, np.ndarray) and diag.estimate.dtype == np.float32


def test_exact_estimates(namespace, rng):
    to_array, _ = namespace
    D = np.diag(rng.standard_normal(50))
    got = hutchinson_trace(to_array(D), n_matvecs=2, method="hutchinson", rng=0)
    assert relative(got.estimate, np.trace(D)) <= 1e-14 and got.std_error <= 1e-13
    A = rng.standard_normal((10, 10))
    got = hutchinson_trace(to_array(A), n_matvecs=40, method="hutch++", rng=0)
    assert got.info["sketch_size"] == 10
    assert relative(got.estimate, np.trace(A)) <= 1e-12 and got.std_error <= 1e-12
    B = rng.standard_normal((60, 3))
    for method in ("hutch++", "xtrace"):
        for low_rank in (B @ B.T, B @ rng.standard_normal((3, 60)), np.zeros((60, 60))):
            got = hutchinson_trace(to_array(low_rank), n_matvecs=20, method=method, rng=4)
            assert np.isfinite(got.std_error)
            assert abs(got.estimate - np.trace(low_rank)) <= 1e-10 * abs(np.trace(low_rank)) + 1e-12


def test_diag_of_a_matrix(namespace, rng, dtype):
    to_array, to_numpy = namespace
    A = rng.standard_normal((30, 30)).astype(dtype)
    A_device = to_array(A)
    got = hutchinson_diag(A_device, n_matvecs=8, rng=1)
    want = hutchinson_diag(A, n_matvecs=8, rng=1)
    assert type(got.estimate) is type(A_device) and type(got.std_error) is type(A_device)
    estimate, std_error = to_numpy(got.estimate), to_numpy(got.std_error)
    assert estimate.dtype == std_error.dtype == dtype and estimate.shape == (30,)
    scale = np.abs(want.estimate).max()
    assert np.abs(estimate - want.estimate).max() <= RTOL[np.dtype(dtype)] * scale
    assert np.abs(std_error - want.std_error).max() <= RTOL[np.dtype(dtype)] * scale
    assert got.n_matvecs == 8 and got.info == {"method": "hutchinson"}
    np.testing.assert_array_equal(to_numpy(A_device), A)


def test_diag_is_exact_for_a_diagonal_matrix(namespace, rng):
    to_array, to_numpy = namespace
    d = rng.uniform(-2.0, 2.0, 40)
    D_device = to_array(np.diag(d))
    for got in (
        hutchinson_diag(D_device, n_matvecs=2, rng=0),
        hutchinson_diag(lambda v: D_device @ v, 40, n_matvecs=3, rng=0, like=D_device),
    ):
        assert type(got.estimate) is type(D_device)
        np.testing.assert_allclose(to_numpy(got.estimate), d, rtol=1e-15)
        assert to_numpy(got.std_error).max() <= 1e-15 * np.abs(d).max()


def test_nan_from_the_operator_is_a_breakdown(namespace):
    to_array, _ = namespace
    like = to_array(np.zeros(1))
    for method in METHODS:
        with pytest.raises(LinAlgError, match="matvec returned NaN or Inf"):
            hutchinson_trace(lambda v: v * float("nan"), 8, n_matvecs=6, method=method, like=like)
    with pytest.raises(LinAlgError, match="matvec returned NaN or Inf"):
        hutchinson_diag(lambda v: v * float("inf"), 8, n_matvecs=4, like=like)


@pytest.mark.parametrize("routine", [hutchinson_trace, hutchinson_diag])
def test_bad_input_names_the_argument(namespace, routine):
    to_array, _ = namespace
    A = to_array(np.eye(6))
    with pytest.raises(ValueError, match="matvec contains NaN"):
        routine(to_array(np.full((6, 6), np.nan)), n_matvecs=4)
    with pytest.raises(ValueError, match="matvec must be square"):
        routine(to_array(np.ones((6, 5))), n_matvecs=4)
    with pytest.raises(ValueError, match="dim is 5 but matvec has shape"):
        routine(A, 5, n_matvecs=4)
    with pytest.raises(TypeError, match=r"like must be an array .* got float"):
        routine(lambda v: v, 6, n_matvecs=4, like=1.0)
    with pytest.raises(TypeError, match="like is complex"):
        routine(lambda v: v, 6, n_matvecs=4, like=to_array(np.zeros(1, dtype=complex)))
    with pytest.raises(TypeError, match=r"like holds numpy arrays .* pass like where matvec lives"):
        routine(A, n_matvecs=4, like=np.zeros(1))
    with pytest.raises(TypeError, match=r"matvec returned numpy arrays .* leave like out"):
        routine(lambda v: np.ones(6), 6, n_matvecs=4, like=A)
    with pytest.raises(ValueError, match=r"matvec returned .* of shape \(3,\)"):
        routine(lambda v: v[:3], 6, n_matvecs=4, like=A)


@pytest.mark.gpu
@pytest.mark.parametrize("method", METHODS)
def test_cupyx_sparse_matrix(cp, method):
    from cupyx.scipy import sparse as cupyx_sparse

    A = sp.random(80, 80, density=0.1, random_state=1, format="csr") + sp.eye(80, format="csr")
    got = hutchinson_trace(cupyx_sparse.csr_matrix(A), n_matvecs=12, method=method, rng=3)
    want = hutchinson_trace(A, n_matvecs=12, method=method, rng=3)
    assert relative(got.estimate, want.estimate) <= 1e-10
