"""The CuPy engine of the OT kernels (``cuda/ot.cu``), on a CUDA device.

Every test needs a GPU (marker ``gpu``, skipped by the default run): run with
``python -m pytest -m gpu tests/ot/test_ot_gpu.py`` where CuPy is installed.
The log-sum-exp adds in another order than the reference, so it agrees to
rounding (float64 1e-10, float32 1e-4 relative to the largest value); the
sparsification compares values, so its CSR arrays equal the reference's
exactly. The solvers keep CuPy input on the device (their Sinkhorn
half-steps are the CuPy engine's fused passes, the Newton steps CuPy's dense
products): each equals the reference solver to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

import linalg
import linalg.ot
from linalg._core.engines import select
from linalg._core.namespace import array_kind, namespace_of
from linalg.ot._dual import REFERENCE_KERNELS
from linalg.ot._sns import DeviceRowSparsifier

from conftest import RTOL

pytestmark = pytest.mark.gpu

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]
REG = 1e-3  # K = C / reg up to 1000: the log domain is needed


@pytest.fixture(scope="module")
def kernels(cp):
    from linalg.ot._cupy import CUPY_KERNELS

    return CUPY_KERNELS


def _close(got, want, dtype) -> None:
    """Equal to the reference up to ``RTOL`` of the largest magnitude (the lse adds in blocks)."""
    scale = np.abs(want[np.isfinite(want)]).max(initial=1.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=RTOL[np.dtype(dtype)] * scale)


def _problem(dtype, batch: int, n: int, m: int, shared: bool, seed: int):
    rng = np.random.default_rng(seed)
    K = (rng.random((1 if shared else batch, n, m)) / REG).astype(dtype)
    x = (rng.random((batch, m)) / REG).astype(dtype)
    return K, x


def test_the_cupy_engine_is_selected_for_cupy_data(cp, kernels):
    kind = array_kind(cp.ones(3))
    for engine in ("cupy", None):
        impl = select("ot.kernels", engine=engine, kind=kind, dtype=np.dtype(np.float64))
        assert impl.engine == "cupy" and impl.load() is kernels


@pytest.mark.parametrize(("n", "m"), [(1, 1), (5, 20), (37, 301), (64, 4097)], ids=str)
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "batch"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_lse_equals_the_reference(cp, kernels, dtype, shared, n, m):
    K, x = _problem(dtype, 3, n, m, shared, seed=n + m)
    ks = np.array([2, 0])
    want = np.full((3, n), 7.0, dtype=dtype)
    REFERENCE_KERNELS.lse(K, x, ks, want)
    Kd, xd = cp.asarray(K), cp.asarray(x)
    out = cp.full((3, n), 7.0, dtype=dtype)
    kernels.lse(Kd, xd, ks, out)
    got = cp.asnumpy(out)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got[1], 7.0)  # members not in ks are left alone
    _close(got[ks], want[ks], dtype)
    np.testing.assert_array_equal(cp.asnumpy(Kd), K)
    np.testing.assert_array_equal(cp.asnumpy(xd), x)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_lse_takes_cupy_members_and_a_strided_output(cp, kernels, dtype):
    K, x = _problem(dtype, 2, 50, 70, False, seed=3)
    want = np.empty((2, 50), dtype=dtype)
    REFERENCE_KERNELS.lse(K, x, np.arange(2), want)
    wide = cp.zeros((2, 100), dtype=dtype)
    out = wide[:, ::2]
    kernels.lse(cp.asarray(K), cp.asarray(x), cp.arange(2), out)
    _close(cp.asnumpy(out), want, dtype)
    np.testing.assert_array_equal(cp.asnumpy(wide[:, 1::2]), 0.0)


def test_lse_with_minus_infinity_potentials(cp, kernels):
    K = np.zeros((1, 3, 40))
    x = np.full((2, 40), -np.inf)
    x[0, 5] = 1e5
    out = cp.empty((2, 3))
    kernels.lse(cp.asarray(K), cp.asarray(x), np.arange(2), out)
    np.testing.assert_allclose(cp.asnumpy(out[0]), 1e5, rtol=1e-15)
    np.testing.assert_array_equal(cp.asnumpy(out[1]), -np.inf)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_sinkhorn_iterations_on_the_kernels_follow_the_reference(cp, kernels, dtype):
    # Both half-steps: the column one on the contiguous K^T, as LogSinkhorn runs them.
    rng = np.random.default_rng(0)
    n, m = 100, 150
    C = rng.random((1, n, m))
    K = (C / 0.05).astype(dtype)
    KT = np.ascontiguousarray(np.swapaxes(K, 1, 2))
    loga = np.log(np.full((1, n), 1.0 / n, dtype=dtype))
    logb = np.log(np.full((1, m), 1.0 / m, dtype=dtype))
    ks = np.arange(1)

    def iterate(lib, lse, K, KT, loga, logb):
        u, v = lib.zeros_like(loga), lib.zeros_like(logb)
        rows, cols = lib.empty_like(u), lib.empty_like(v)
        for _ in range(20):
            lse(K, v, ks, rows)
            u = loga - rows
            lse(KT, u, ks, cols)
            v = logb - cols
        return u, v

    want = iterate(np, REFERENCE_KERNELS.lse, K, KT, loga, logb)
    got = iterate(cp, kernels.lse, *(cp.asarray(a) for a in (K, KT, loga, logb)))
    for g, w in zip(got, want, strict=True):
        assert g.dtype == dtype
        _close(cp.asnumpy(g), w, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_plan_equals_the_reference(cp, kernels, dtype):
    K, x = _problem(dtype, 1, 40, 60, True, seed=4)
    u = (x[0, :40] - 1000) / 20  # exponents u + v - K in [-1100, 0]: some underflow
    v = (x[0] - 1000) / 20
    want = REFERENCE_KERNELS.plan(K[0], u, v)
    got = cp.asnumpy(kernels.plan(cp.asarray(K[0]), cp.asarray(u), cp.asarray(v)))
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=RTOL[np.dtype(dtype)], atol=0)


@pytest.mark.parametrize(("n", "m"), [(1, 1), (29, 203), (10, 5000)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_sparsify_equals_the_reference(cp, kernels, dtype, n, m):
    rng = np.random.default_rng(n)
    P = np.exp(rng.standard_normal((n, m)) * 4).astype(dtype)
    theta = (1e-2 * P.sum(axis=1)).astype(dtype)
    P[n // 2] = 0.0
    theta[-1] = P[-1, m // 2]
    Pd = cp.asarray(P)
    got = kernels.sparsify(Pd, cp.asarray(theta))
    want = REFERENCE_KERNELS.sparsify(P, theta)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(cp.asnumpy(g), w)
    np.testing.assert_array_equal(cp.asnumpy(Pd), P)


def test_sparsify_keeping_nothing(cp, kernels):
    indptr, indices, data = kernels.sparsify(cp.ones((4, 10)), cp.full(4, 2.0))
    np.testing.assert_array_equal(cp.asnumpy(indptr), 0)
    assert indices.size == 0 and data.size == 0


@pytest.mark.parametrize(("n", "m"), [(1, 1), (29, 203), (10, 5000)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_kth_largest_equals_the_array_api_path(cp, kernels, dtype, n, m):
    rng = np.random.default_rng(m)
    P = np.exp(rng.standard_normal((n, m)) * 4).astype(dtype)
    P[n // 2] = 0.0
    P[-1, : m // 2] = P[-1, -1]  # ties
    Pd = cp.asarray(P)
    r = Pd.sum(axis=1)
    for k in sorted({1, 2, 8, m // 3 + 1, m} & set(range(1, m + 1))):
        sort = DeviceRowSparsifier(namespace_of(Pd), k)  # the array-API path: a row sort
        select = DeviceRowSparsifier(namespace_of(Pd), k, kernels.kth_largest)
        got = cp.asnumpy(select.thresholds(Pd, r))
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, cp.asnumpy(sort.thresholds(Pd, r)))
        np.testing.assert_array_equal(got, np.partition(P, m - k, axis=1)[:, m - k])
    np.testing.assert_array_equal(cp.asnumpy(Pd), P)


def test_kth_largest_refuses_a_k_out_of_range(cp, kernels):
    for k in (0, 4):
        with pytest.raises(ValueError, match=r"k must be in \[1, 3\]"):
            kernels.kth_largest(cp.ones((2, 3)), k)


# --- the solvers on CuPy input: kept on the device -------------------------------------


def _ot_problem(dtype, n=60, m=80, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.random(n) + 0.1
    b = rng.random(m) + 0.1
    a, b = a / a.sum(), b / b.sum()
    x, y = rng.random((n, 2)), rng.random((m, 2))
    C = ((x[:, None, :] - y[None, :, :]) ** 2).sum(axis=2)
    return a.astype(dtype), b.astype(dtype), C.astype(dtype)


def _compare_results(cp, got, want, dtype) -> None:
    assert got.converged == want.converged
    for name in ("plan", "f", "g"):
        g, w = getattr(got, name), getattr(want, name)
        assert isinstance(g, cp.ndarray) and g.dtype == dtype
        _close(cp.asnumpy(g), w, dtype)
    _close(np.array(float(got.cost)), np.array(want.cost), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_sinkhorn_on_cupy_input_equals_the_reference(cp, dtype):
    a, b, C = _ot_problem(dtype)
    want = linalg.ot.sinkhorn(a, b, C, 0.05, engine="reference")
    got = linalg.ot.sinkhorn(cp.asarray(a), cp.asarray(b), cp.asarray(C), 0.05, engine="cupy")
    assert got.info["engine"] == "cupy"
    _compare_results(cp, got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(
    "solver", [linalg.ot.sinkhorn_newton, linalg.ot.sinkhorn_newton_sparse], ids=["newton", "sns"]
)
def test_newton_solvers_on_cupy_input_equal_the_reference(cp, solver, dtype):
    # check_every=1: the device CG tests every iteration, as the host CG does.
    a, b, C = _ot_problem(dtype, seed=1)
    reg = 0.002 if dtype == np.float64 else 0.005
    want = solver(a, b, C, reg, engine="reference", check_every=1)
    assert want.n_newton > 0  # the Newton steps ran
    got = solver(cp.asarray(a), cp.asarray(b), cp.asarray(C), reg, engine="cupy", check_every=1)
    assert got.info["engine"] == "cupy" and got.n_newton == want.n_newton
    _compare_results(cp, got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(
    "solver",
    [linalg.ot.sinkhorn, linalg.ot.sinkhorn_newton, linalg.ot.sinkhorn_newton_sparse],
    ids=["sinkhorn", "newton", "sns"],
)
def test_torch_cuda_tensors_reach_the_cupy_kernels(cp, solver, dtype):
    """torch CUDA tensors are handed to the CuPy engine's kernels through DLPack (no
    copy) and the results come back as torch tensors on the same device."""
    torch = pytest.importorskip("torch")
    a, b, C = _ot_problem(dtype, seed=1)
    reg = 0.005
    want = solver(a, b, C, reg, engine="reference", check_every=1)
    on_gpu = [torch.as_tensor(x, device="cuda") for x in (a, b, C)]
    got = solver(*on_gpu, reg, check_every=1)
    assert got.info["engine"] == "cupy"
    for name in ("plan", "f", "g"):
        value = getattr(got, name)
        assert isinstance(value, torch.Tensor) and value.device == on_gpu[0].device
        _close(value.cpu().numpy(), getattr(want, name), dtype)


def test_the_bridge_shares_memory(cp):
    torch = pytest.importorskip("torch")
    from linalg._core.dlpack import cupy_bridge

    x = torch.zeros(4, device="cuda")
    bridge = cupy_bridge(array_kind(x), "auto")
    view = bridge.to_cupy(x)
    view += 1.0
    assert float(x.sum()) == 4.0 and isinstance(bridge.back(view), torch.Tensor)
