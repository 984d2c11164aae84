"""Kronecker-family routines on arrays computed through their own array-API namespace.

array_api_strict stands in for a device library in the default run: it has no
NumPy fallbacks, so code that works on it uses only the standard. The same tests
run on CuPy arrays and torch CUDA tensors under ``-m gpu``. Results are compared
with the NumPy path (1e-10 in float64, 1e-4 in float32) and with the exact root.
"""

from __future__ import annotations

import numpy as np
import pytest

from linalg._core.results import ConvergenceWarning, LinAlgError
from linalg.kron import (
    EKFAC,
    KFAC,
    KFACFactors,
    Shampoo,
    fisher_weighted_svd,
    kfac_factors,
    kron_matvec,
    kron_solve,
    matrix_inverse_root,
    nearest_kronecker,
)

from conftest import RTOL, spd_matrix


def exact_root(A: np.ndarray, p: int, eps: float = 0.0) -> np.ndarray:
    lam, V = np.linalg.eigh(A.astype(np.float64))
    return (V * (lam + eps) ** (-1.0 / p)) @ V.T


@pytest.mark.parametrize("method", ["eigh", "newton", "auto"])
@pytest.mark.parametrize("p", [1, 2, 4])
def test_equals_numpy_path(namespace, rng, dtype, method, p):
    to_array, to_numpy = namespace
    A = spd_matrix(rng, 24, cond=1e3).astype(dtype)
    x = to_array(A)
    result = matrix_inverse_root(x, p, eps=1e-3, method=method)
    assert type(result) is type(x)
    assert to_numpy(result).dtype == dtype
    got = to_numpy(result)
    rtol = RTOL[np.dtype(dtype)]
    scale = np.abs(exact_root(A, p, 1e-3)).max()
    on_numpy = matrix_inverse_root(A, p, eps=1e-3, method=method)
    assert np.abs(got - on_numpy).max() <= rtol * scale
    assert np.abs(got - exact_root(A, p, 1e-3)).max() <= 10 * rtol * scale
    assert np.array_equal(to_numpy(x), A)  # the input is not modified


def test_auto_is_eigh(namespace, rng):
    to_array, to_numpy = namespace
    x = to_array(spd_matrix(rng, 16))
    auto = to_numpy(matrix_inverse_root(x, 2, method="auto"))
    assert np.array_equal(auto, to_numpy(matrix_inverse_root(x, 2, method="eigh")))
    assert not np.array_equal(auto, to_numpy(matrix_inverse_root(x, 2, method="newton")))


@pytest.mark.parametrize("method", ["eigh", "newton"])
def test_batch(namespace, rng, method):
    to_array, to_numpy = namespace
    A = np.stack([spd_matrix(rng, 8, cond=10.0 ** (i + 1)) for i in range(3)])
    got = to_numpy(matrix_inverse_root(to_array(A), 4, method=method))
    for i in range(3):
        assert np.abs(got[i] - exact_root(A[i], 4)).max() <= 1e-9 * np.abs(got[i]).max()


def test_integers_are_promoted(namespace):
    to_array, to_numpy = namespace
    A = np.array([[4, 0], [0, 16]])
    got = to_numpy(matrix_inverse_root(to_array(A), 2, method="eigh"))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, np.diag([0.5, 0.25]), rtol=1e-14)


def test_semidefinite_needs_eps(namespace):
    to_array, _ = namespace
    A = np.diag([1.0, 0.5, -0.25])
    with pytest.raises(LinAlgError, match=r"use eps > 0\.25"):
        matrix_inverse_root(to_array(A), 2, method="eigh")


@pytest.mark.parametrize(
    ("A", "error", "message"),
    [
        (np.array([[1.0, 2.0], [0.0, 1.0]]), ValueError, "A must be symmetric"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), ValueError, "A contains NaN"),
        (np.ones((2, 3)), ValueError, "A must be a square matrix"),
        (np.eye(2, dtype=np.complex128), TypeError, "A is complex"),
        (np.eye(2, dtype=bool), TypeError, "A is of dtype"),
        (np.zeros((0, 0)), ValueError, "A is empty"),
    ],
    ids=["asymmetric", "nan", "not-square", "complex", "bool", "empty"],
)
def test_bad_input_names_the_argument(namespace, A, error, message):
    to_array, _ = namespace
    with pytest.raises(error, match=message):
        matrix_inverse_root(to_array(A), 2)


def test_newton_failure_falls_back_to_eigh(namespace, rng):
    to_array, to_numpy = namespace
    A = spd_matrix(rng, 12, cond=1e8)
    with pytest.warns(ConvergenceWarning, match="computed by eigh instead"):
        got = to_numpy(matrix_inverse_root(to_array(A), 2, method="newton", maxiter=2))
    assert np.abs(got - exact_root(A, 2)).max() <= 1e-8 * np.abs(got).max()


@pytest.mark.parametrize("beta2", [None, 0.9])
@pytest.mark.parametrize("shape", [(5, 7), (3, 4, 2)], ids=str)
def test_shampoo_equals_numpy_path(namespace, rng, dtype, shape, beta2):
    to_array, to_numpy = namespace
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(3)]
    on_device, on_host = (
        Shampoo(shape, eps=1e-3, beta2=beta2),
        Shampoo(shape, eps=1e-3, beta2=beta2),
    )
    for G in grads:
        on_device.update(to_array(G))
        on_host.update(G)
    rtol = RTOL[np.dtype(dtype)]
    for S, expected in zip(on_device.statistics, on_host.statistics, strict=True):
        assert type(S) is type(to_array(grads[0]))
        assert np.abs(to_numpy(S) - expected).max() <= rtol * np.abs(expected).max()
    x = to_array(grads[0])
    result = on_device.precondition(x)
    assert type(result) is type(x)
    expected = on_host.precondition(grads[0])
    assert to_numpy(result).dtype == dtype
    assert np.abs(to_numpy(result) - expected).max() <= 10 * rtol * np.abs(expected).max()


def test_shampoo_before_any_update(namespace):
    to_array, to_numpy = namespace
    G = np.arange(6.0).reshape(2, 3)
    got = to_numpy(Shampoo((2, 3), eps=4.0).precondition(to_array(G)))
    np.testing.assert_allclose(got, G / 4.0 ** (1 / 4) / 4.0 ** (1 / 4), rtol=1e-14)


def test_shampoo_keeps_one_array_type(namespace):
    to_array, _ = namespace
    opt = Shampoo((2, 2))
    opt.update(to_array(np.eye(2)))
    with pytest.raises(TypeError, match="statistics hold"):
        opt.update(np.eye(2))
    with pytest.raises(ValueError, match=r"grad must have shape \(2, 2\)"):
        opt.update(to_array(np.eye(3)))


def test_kron_matvec_equals_numpy_path(namespace, rng, dtype):
    to_array, to_numpy = namespace
    A, B = rng.standard_normal((4, 3)).astype(dtype), rng.standard_normal((5, 6)).astype(dtype)
    rtol = RTOL[np.dtype(dtype)]
    for X in (rng.standard_normal((6, 3)), rng.standard_normal((2, 6, 3))):
        X = X.astype(dtype)
        got = kron_matvec(to_array(A), to_array(B), to_array(X))
        expected = kron_matvec(A, B, X)
        assert type(got) is type(to_array(X)) and to_numpy(got).dtype == dtype
        assert np.abs(to_numpy(got) - expected).max() <= rtol * np.abs(expected).max()
    factors = [
        rng.standard_normal((2, 3)),
        rng.standard_normal((4, 2)),
        rng.standard_normal((3, 3)),
    ]
    factors = [F.astype(dtype) for F in factors]
    T = rng.standard_normal((5, 3, 2, 3)).astype(dtype)  # a leading batch axis
    got = to_numpy(kron_matvec([to_array(F) for F in factors], to_array(T)))
    expected = kron_matvec(factors, T)
    assert got.shape == expected.shape == (5, 2, 4, 3)
    assert np.abs(got - expected).max() <= rtol * np.abs(expected).max()


def test_kron_solve_equals_numpy_path(namespace, rng, dtype):
    to_array, to_numpy = namespace
    A, B = spd_matrix(rng, 5).astype(dtype), spd_matrix(rng, 4).astype(dtype)
    X = rng.standard_normal((3, 4, 5)).astype(dtype)
    got = kron_solve(to_array(A), to_array(B), to_array(X), damping=0.1)
    expected = kron_solve(A, B, X, damping=0.1)
    assert type(got) is type(to_array(X)) and to_numpy(got).dtype == dtype
    rtol = RTOL[np.dtype(dtype)]
    assert np.abs(to_numpy(got) - expected).max() <= rtol * np.abs(expected).max()
    M = np.kron(A.astype(np.float64), B.astype(np.float64)) + 0.1 * np.eye(20)
    vec = np.linalg.solve(M, X[0].astype(np.float64).reshape(-1, order="F"))
    assert np.allclose(to_numpy(got)[0].reshape(-1, order="F"), vec, rtol=10 * rtol, atol=0)


def test_kron_products_refuse_mixed_places_and_bad_factors(namespace, rng):
    to_array, _ = namespace
    A, X = spd_matrix(rng, 3), rng.standard_normal((3, 3))
    with pytest.raises(TypeError, match="inputs live in different places"):
        kron_matvec(A, to_array(A), to_array(X))
    with pytest.raises(ValueError, match="A must be symmetric"):
        kron_solve(to_array(A + np.triu(A, 1)), to_array(A), to_array(X), damping=1.0)
    with pytest.raises(LinAlgError, match="increase damping"):
        kron_solve(to_array(-A), to_array(A), to_array(X), damping=0.0)
    with pytest.raises(ValueError, match=r"X must have shape \(3, 3\)"):
        kron_matvec(to_array(A), to_array(A), to_array(np.ones((2, 2))))


@pytest.mark.parametrize("method", ["svd", "power"])
def test_nearest_kronecker_equals_numpy_path(namespace, rng, dtype, method):
    to_array, to_numpy = namespace
    A, B = rng.standard_normal((3, 2)), rng.standard_normal((4, 5))
    M = (np.kron(A, B) + 0.05 * rng.standard_normal((12, 10))).astype(dtype)
    options = {"rank": 2, "method": method, "n_iter": 30}
    got = nearest_kronecker(to_array(M), (3, 2), (4, 5), **options)
    want = nearest_kronecker(M, (3, 2), (4, 5), **options)
    assert type(got.A) is type(to_array(M)) and to_numpy(got.A).dtype == dtype
    rtol = 10 * RTOL[np.dtype(dtype)]
    for g, w in ((got.A, want.A), (got.B, want.B)):
        assert np.abs(to_numpy(g) - w).max() <= rtol * np.abs(w).max()
    assert abs(got.error - want.error) <= rtol
    with pytest.raises(ValueError, match=r"M must have shape \(m1 \* m2, n1 \* n2\)"):
        nearest_kronecker(to_array(M), (3, 3), (4, 5))


@pytest.mark.parametrize("bias", [False, True])
def test_kfac_factors_and_running_averages(namespace, rng, dtype, bias):
    to_array, to_numpy = namespace
    batches = [
        (rng.standard_normal((16, 5)).astype(dtype), rng.standard_normal((16, 3)).astype(dtype))
        for _ in range(3)
    ]
    a, g = batches[0]
    A, G = kfac_factors(to_array(a), to_array(g), bias=bias)
    A_host, G_host = kfac_factors(a, g, bias=bias)
    rtol = RTOL[np.dtype(dtype)]
    assert type(A) is type(to_array(a)) and to_numpy(A).dtype == dtype
    assert np.abs(to_numpy(A) - A_host).max() <= rtol * np.abs(A_host).max()
    assert np.abs(to_numpy(G) - G_host).max() <= rtol * np.abs(G_host).max()
    on_device, on_host = (
        KFACFactors(5, 3, decay=0.7, bias=bias),
        KFACFactors(5, 3, decay=0.7, bias=bias),
    )
    for a, g in batches:
        on_device.update(to_array(a), to_array(g))
        on_host.update(a, g)
    assert np.abs(to_numpy(on_device.A) - on_host.A).max() <= rtol * np.abs(on_host.A).max()
    with pytest.raises(TypeError, match="averages hold"):
        on_device.update(a, g)


@pytest.mark.parametrize(
    ("cls", "options"),
    [(KFAC, {"damping_mode": mode}) for mode in ("plain", "pi", "exact")] + [(EKFAC, {})],
    ids=["kfac-plain", "kfac-pi", "kfac-exact", "ekfac"],
)
def test_kfac_and_ekfac_equal_numpy_path(namespace, rng, dtype, cls, options):
    to_array, to_numpy = namespace
    A, G = spd_matrix(rng, 5).astype(dtype), spd_matrix(rng, 3, cond=10.0).astype(dtype)
    V = rng.standard_normal((4, 3, 5)).astype(dtype)
    on_device = cls(to_array(A), to_array(G), damping=0.1, **options)
    on_host = cls(A, G, damping=0.1, **options)
    if cls is EKFAC:
        grads = rng.standard_normal((20, 3, 5)).astype(dtype)
        on_device.fit_eigenvalues(to_array(grads))
        on_host.fit_eigenvalues(grads)
    rtol = 10 * RTOL[np.dtype(dtype)]
    for name in ("solve", "matvec"):
        got, want = getattr(on_device, name)(to_array(V)), getattr(on_host, name)(V)
        assert type(got) is type(to_array(V)) and to_numpy(got).dtype == dtype
        assert np.abs(to_numpy(got) - want).max() <= rtol * np.abs(want).max()
    assert abs(on_device.logdet() - on_host.logdet()) <= rtol * abs(on_host.logdet())
    with pytest.raises(TypeError, match="V holds numpy arrays"):
        on_device.solve(V)
    with pytest.raises(TypeError, match="as_linear_operator needs host factors"):
        on_device.as_linear_operator()


def test_kfac_damping_too_small_on_device(namespace):
    to_array, _ = namespace
    singular = np.diag([1.0, 0.0, -1.0])
    with pytest.raises(LinAlgError, match="not positive definite; increase damping"):
        KFAC(to_array(singular), to_array(np.eye(2)), damping=1e-4).solve(to_array(np.ones((2, 3))))


def test_fisher_weighted_svd_equals_numpy_path(namespace, rng, dtype):
    to_array, to_numpy = namespace
    W = rng.standard_normal((6, 5)).astype(dtype)
    A, G = spd_matrix(rng, 5).astype(dtype), spd_matrix(rng, 6, cond=10.0).astype(dtype)
    got = fisher_weighted_svd(to_array(W), to_array(A), to_array(G), rank=2)
    want = fisher_weighted_svd(W, A, G, rank=2)
    assert type(got.L) is type(to_array(W)) and to_numpy(got.L).dtype == dtype
    product, expected = to_numpy(got.L) @ to_numpy(got.R), want.L @ want.R
    assert np.abs(product - expected).max() <= 10 * RTOL[np.dtype(dtype)] * np.abs(expected).max()
    assert abs(got.error - want.error) <= 10 * RTOL[np.dtype(dtype)]
    with pytest.raises(LinAlgError, match="G is not positive definite"):
        fisher_weighted_svd(to_array(W), to_array(A), to_array(-G), rank=2)
