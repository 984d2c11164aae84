"""Namespaces, validation and operators."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import aslinearoperator

from linalg._core.namespace import ArrayKind, array_kind, common_kind, to_caller, to_numpy
from linalg._core.operators import CallableOperator, Operator, as_operator
from linalg._core.validate import as_float_array, check_int, check_real


def test_numpy_fast_path_and_python_objects():
    assert array_kind(np.ones(2)) == ArrayKind("numpy", "cpu")
    assert array_kind([1, 2]) == ArrayKind("python")
    assert array_kind(sp.eye(2)).library == "scipy.sparse"
    assert common_kind(np.ones(2), None, [1.0], sp.eye(2)).library == "numpy"


def test_torch_roundtrip_without_copy():
    torch = pytest.importorskip("torch")
    t = torch.arange(4, dtype=torch.float32)
    kind = array_kind(t)
    assert kind == ArrayKind("torch", "cpu")
    a = to_numpy(t, "t")
    assert a.dtype == np.float32
    assert np.shares_memory(a, to_numpy(t, "t"))
    back = to_caller(a * 2, kind)
    assert isinstance(back, torch.Tensor)
    assert back.tolist() == [0.0, 2.0, 4.0, 6.0]
    grad = torch.ones(3, requires_grad=True)
    assert to_numpy(grad, "g").tolist() == [1.0, 1.0, 1.0]


def test_mixing_libraries_is_refused():
    torch = pytest.importorskip("torch")
    assert common_kind(torch.ones(2), np.ones(2)) == ArrayKind("torch", "cpu")
    with pytest.raises(TypeError, match="different places"):
        common_kind(torch.ones(2), torch.ones(2, device="meta"))
    with pytest.raises(TypeError, match="move it to the CPU"):
        to_numpy(torch.ones(2, device="meta"), "b")


@pytest.mark.parametrize(
    ("value", "dtype"),
    [([1, 2], np.float64), (np.ones(2, np.float32), np.float32), (np.arange(3), np.float64)],
)
def test_float_dtypes_are_kept_or_promoted(value, dtype):
    assert as_float_array(value, "x").dtype == dtype


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (np.ones(2, complex), TypeError, "x is complex"),
        (np.ones(2, bool), TypeError, "bool"),
        (np.ones(2, np.float16), TypeError, "float32 or float64"),
        (np.array([1.0, np.nan]), ValueError, "x contains NaN"),
        (np.array([1.0, np.inf]), ValueError, "x contains Inf"),
        (np.ones((0,)), ValueError, "x is empty"),
        (np.ones((2, 2, 2)), ValueError, "x must be 1-D or 2-D"),
        (np.array(["a"], dtype=object), TypeError, "objects"),
    ],
)
def test_bad_arrays_name_the_argument(value, error, match):
    with pytest.raises(error, match=match):
        as_float_array(value, "x", ndim=(1, 2))


def test_scalar_checks():
    assert check_int(3, "n", low=1) == 3
    with pytest.raises(TypeError, match="n must be an integer"):
        check_int(True, "n")
    with pytest.raises(ValueError, match="n must be >= 1"):
        check_int(0, "n", low=1)
    with pytest.raises(ValueError, match="rtol must be >= 0"):
        check_real(-1.0, "rtol", low=0.0)
    with pytest.raises(ValueError, match="must be finite"):
        check_real(float("nan"), "rtol")
    with pytest.raises(ValueError, match="tau must be > 0"):
        check_real(0.0, "tau", low=0.0, low_inclusive=False)


def _every_form(A):
    return [
        A,
        sp.csr_array(A),
        sp.csc_matrix(A),
        sp.coo_array(A),
        aslinearoperator(A),
        as_operator(A),
    ]


def test_every_form_gives_the_same_products(rng):
    A = rng.standard_normal((5, 4))
    V = rng.standard_normal((4, 3))
    W = rng.standard_normal((5, 3))
    for form in _every_form(A):
        op = as_operator(form)
        assert op.shape == (5, 4)
        np.testing.assert_allclose(op.matvec(V[:, 0]), A @ V[:, 0], rtol=1e-14)
        np.testing.assert_allclose(op.matmat(V), A @ V, rtol=1e-14)
        np.testing.assert_allclose(op.rmatvec(W[:, 0]), A.T @ W[:, 0], rtol=1e-14)
        np.testing.assert_allclose(op.rmatmat(W), A.T @ W, rtol=1e-14)
        np.testing.assert_allclose(op.as_linear_operator() @ V, A @ V, rtol=1e-14)


def test_callable_operator_loops_columns_and_checks_shape(rng):
    A = rng.standard_normal((4, 4))
    op = as_operator(lambda v: A @ v, shape=(4, 4))
    assert isinstance(op, CallableOperator)
    V = rng.standard_normal((4, 2))
    np.testing.assert_allclose(op.matmat(V), A @ V)
    with pytest.raises(TypeError, match="no adjoint"):
        op.rmatvec(V[:, 0])
    bad = as_operator(lambda v: v[:2], shape=(4, 4))
    with pytest.raises(ValueError, match="A returned shape"):
        bad.matvec(V[:, 0])


def test_callable_receives_the_callers_type():
    torch = pytest.importorskip("torch")
    seen = []

    def matvec(v):
        seen.append(type(v))
        return 2 * v

    op = as_operator(matvec, shape=(3, 3), kind=ArrayKind("torch", "cpu"))
    np.testing.assert_allclose(op.matvec(np.ones(3)), 2.0)
    assert seen == [torch.Tensor]


def test_operator_errors():
    with pytest.raises(TypeError, match="A must be an array"):
        as_operator(object())
    with pytest.raises(TypeError, match="shape must be known"):
        as_operator(lambda v: v)
    with pytest.raises(ValueError, match="A contains NaN"):
        as_operator(sp.csr_array(np.array([[np.nan]])))
    with pytest.raises(TypeError, match="A is complex"):
        as_operator(sp.eye(2, dtype=complex))
    with pytest.raises(NotImplementedError):
        Operator((2, 2), np.float64).matvec(np.ones(2))


def test_sparse_integers_are_promoted_without_touching_the_input():
    A = sp.csr_array(np.eye(3, dtype=np.int64))
    op = as_operator(A)
    assert op.dtype == np.float64
    assert A.dtype == np.int64


def test_jax_roundtrip():
    jnp = pytest.importorskip("jax.numpy")
    from linalg.solvers import cg

    A = jnp.asarray(np.diag([1.0, 2.0, 4.0]), dtype=jnp.float32)
    res = cg(A, jnp.ones(3, dtype=jnp.float32), rtol=1e-6)
    assert array_kind(res.x).library == "jax"
    np.testing.assert_allclose(np.asarray(res.x), [1.0, 0.5, 0.25], rtol=1e-5)


def test_check_symmetric_dense_batched_and_sparse():
    from linalg._core.validate import check_symmetric

    S = np.array([[2.0, 1.0], [1.0, 3.0]])
    check_symmetric(S, "A")
    check_symmetric(np.stack([S, 10 * S]), "A")
    check_symmetric(sp.csr_array(S), "A")
    bad = S + np.array([[0.0, 1e-6], [0.0, 0.0]])
    for value in (bad, np.stack([S, bad]), sp.csr_array(bad)):
        with pytest.raises(ValueError, match="A must be symmetric"):
            check_symmetric(value, "A")
    with pytest.raises(ValueError, match="A must be square"):
        check_symmetric(np.ones((2, 3)), "A")


def test_array_api_libraries_take_the_namespace_path():
    xp = pytest.importorskip("array_api_strict")
    from linalg._core.validate import float_input

    x = xp.asarray([[1, 2], [3, 4]])
    kind = array_kind(x)
    assert kind.library == "array-api" and kind.via_namespace and not kind.on_host
    for host in (np.ones(2), [1.0], sp.eye(2)):
        assert not array_kind(host).via_namespace
    with pytest.raises(TypeError, match="'x' holds array-api arrays"):
        to_numpy(x, "x")
    promoted, namespace, same = float_input(x, "x")
    assert namespace is xp and same == kind and promoted.dtype == xp.float64
    assert to_caller(promoted, kind) is promoted  # computed in its own namespace already
    host, namespace, kind = float_input([[1, 2]], "x")
    assert isinstance(host, np.ndarray) and host.dtype == np.float64
    assert namespace.__name__ == "array_api_compat.numpy" and kind == ArrayKind("numpy")
