"""SlidingWindowIHVP against the explicit dense inverse of λI + (1/m) Gᵀ G over the
gradients held, while the window fills and long after; drift and breakdown
recovery; the torch round trip; bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.linalg import LinearOperator

from linalg.curvature._sliding import SlidingWindowIHVP

from conftest import HAVE_NUMBA, RTOL


def gradients(rng: np.random.Generator, count: int, dim: int, dtype) -> list[np.ndarray]:
    """Gradients whose coordinates have scales spread over two decades."""
    scales = np.geomspace(0.1, 10.0, dim)
    return [(rng.standard_normal(dim) * scales).astype(dtype) for _ in range(count)]


def dense_inverse(held: list[np.ndarray], damping: float, dim: int) -> np.ndarray:
    """(λ I + (1/m) Gᵀ G)⁻¹ in float64 from the gradients held."""
    if not held:
        return np.eye(dim) / damping
    G = np.array(held, dtype=np.float64)
    return np.linalg.inv(damping * np.eye(dim) + G.T @ G / len(G))


def mean_eigenvalue(grads: list[np.ndarray]) -> float:
    """Mean eigenvalue of (1/m) Gᵀ G: the mean squared gradient entry."""
    return float(np.mean([np.mean(np.square(g, dtype=np.float64)) for g in grads]))


def relative_error(actual, expected) -> float:
    return float(np.linalg.norm(np.asarray(actual) - expected) / np.linalg.norm(expected))


def filled(rng, dim=20, window=5, dtype=np.float64, damping=0.3, pushes=12, **kwargs):
    """A window after ``pushes`` pushes, and the gradients pushed."""
    ihvp = SlidingWindowIHVP(dim, window, damping=damping, dtype=dtype, **kwargs)
    grads = gradients(rng, pushes, dim, dtype)
    for g in grads:
        ihvp.push(g)
    return ihvp, grads


# --- against the dense inverse --------------------------------------------------------


# (dim, window): the M-FAC regime window < dim, and a window that spans the space
@pytest.mark.parametrize(("dim", "window"), [(24, 6), (5, 9)])
def test_matches_dense_inverse_while_filling_and_after(dim, window, engine, dtype, rng):
    grads = gradients(rng, 10 * window, dim, dtype)
    # float32 Woodbury loses ε32 · (mean eigenvalue / λ) to cancellation in v - Gᵀ C⁻¹ G v
    # where the window spans the space; with window < dim, 1e-4 · mean eigenvalue is fine
    relative_damping = 1e-2 if dtype == np.float32 and window >= dim else 1e-4
    damping = relative_damping * mean_eigenvalue(grads)
    ihvp = SlidingWindowIHVP(dim, window, damping=damping, dtype=dtype, engine=engine)
    assert ihvp.engine == engine
    for t, g in enumerate(grads, start=1):
        ihvp.push(g)
        assert (ihvp.n_pushed, ihvp.n_grads) == (t, min(t, window))
        inverse = dense_inverse(grads[max(0, t - window) : t], damping, dim)
        v = rng.standard_normal(dim).astype(dtype)
        x = ihvp.solve(v)
        assert x.shape == (dim,) and x.dtype == dtype
        assert relative_error(x, inverse @ v) <= RTOL[np.dtype(dtype)]
    # one factorization per solve while filling, none once the window slides
    assert ihvp.n_refactorizations == window


def test_inv_diag_matches_dense_inverse(engine, dtype, rng):
    dim, window = 30, 7
    grads = gradients(rng, 3 * window, dim, dtype)
    damping = 1e-3 * mean_eigenvalue(grads)
    ihvp = SlidingWindowIHVP(dim, window, damping=damping, dtype=dtype, engine=engine)
    np.testing.assert_allclose(ihvp.inv_diag(), np.full(dim, 1.0 / damping), rtol=1e-6)
    for t, g in enumerate(grads, start=1):
        ihvp.push(g)
        if t in (1, window - 1, window, 3 * window):
            expected = np.diag(dense_inverse(grads[max(0, t - window) : t], damping, dim))
            diagonal = ihvp.inv_diag()
            assert diagonal.dtype == dtype
            assert relative_error(diagonal, expected) <= RTOL[np.dtype(dtype)]


def test_several_right_hand_sides(engine, dtype, rng):
    ihvp, grads = filled(rng, dtype=dtype, engine=engine)
    inverse = dense_inverse(grads[-5:], 0.3, 20)
    V = rng.standard_normal((4, 20)).astype(dtype)
    X = ihvp.solve(V)
    assert X.shape == (4, 20) and X.dtype == dtype
    assert relative_error(X, V @ inverse) <= RTOL[np.dtype(dtype)]
    rows = np.array([ihvp.solve(v) for v in V])
    np.testing.assert_allclose(X, rows, rtol=10 * RTOL[np.dtype(dtype)], atol=0)


def test_window_of_one(engine, rng):
    ihvp = SlidingWindowIHVP(6, 1, damping=0.1, dtype=np.float64, engine=engine)
    for g in gradients(rng, 8, 6, np.float64):
        ihvp.push(g)
        v = rng.standard_normal(6)
        expected = np.linalg.solve(0.1 * np.eye(6) + np.outer(g, g), v)
        assert relative_error(ihvp.solve(v), expected) <= 1e-10
    assert ihvp.n_grads == 1 and ihvp.n_refactorizations == 1


def test_no_gradients_is_the_damping(rng):
    ihvp = SlidingWindowIHVP(4, 3, damping=0.25)
    v = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(ihvp.solve(v), 4.0 * v, rtol=1e-7)
    np.testing.assert_array_equal(ihvp.inv_diag(), np.full(4, 4.0, dtype=np.float32))


def test_as_linear_operator_is_a_live_view(engine, rng):
    ihvp, grads = filled(rng, engine=engine, pushes=3)
    op = ihvp.as_linear_operator()
    assert isinstance(op, LinearOperator) and op.shape == (20, 20) and op.dtype == np.float64
    V = rng.standard_normal((20, 3))
    for _ in range(2):
        inverse = dense_inverse(grads[-5:], 0.3, 20)
        assert relative_error(op.matvec(V[:, 0]), inverse @ V[:, 0]) <= 1e-10
        assert relative_error(op.matmat(V), inverse @ V) <= 1e-10
        assert relative_error(op.rmatvec(V[:, 1]), inverse @ V[:, 1]) <= 1e-10
        grads += gradients(rng, 4, 20, np.float64)
        for g in grads[-4:]:
            ihvp.push(g)


def test_auto_engine_prefers_numba():
    ihvp = SlidingWindowIHVP(3, 2, damping=1.0)
    assert ihvp.engine == ("numba" if HAVE_NUMBA else "reference")
    assert ihvp.dtype == np.float32 and ihvp.shape == (3, 3)


# --- factor maintenance ---------------------------------------------------------------


def test_drift_is_detected_and_the_factor_recomputed(engine, rng):
    window = 4
    ihvp, _ = filled(rng, window=window, engine=engine, pushes=6)
    ihvp.solve(np.ones(20))
    count = ihvp.n_refactorizations
    more = gradients(rng, window, 20, np.float64)
    ihvp.push(more[0])
    # Perturb the newest gradient's row of the factor. Deleting and appending are exact
    # on the matrix the factor represents, so this error would leave with that gradient;
    # the check after every `window` pushes runs while it is still held.
    ihvp._R[-1, -1] *= 1.0 + 1e-7
    for g in more[1:-1]:
        ihvp.push(g)
    assert ihvp._R is not None
    ihvp.push(more[-1])
    assert ihvp._R is None
    v = rng.standard_normal(20)
    x = ihvp.solve(v)
    assert ihvp.n_refactorizations == count + 1
    assert relative_error(x, dense_inverse(more, 0.3, 20) @ v) <= 1e-10


def test_append_breakdown_recomputes_the_factor(engine, rng):
    ihvp, grads = filled(rng, window=4, engine=engine, pushes=6)
    ihvp.solve(np.ones(20))
    count = ihvp.n_refactorizations
    ihvp._R *= 1e-3  # y = R⁻ᵀ c grows 1000-fold: the new diagonal d² turns negative
    g = gradients(rng, 1, 20, np.float64)[0]
    ihvp.push(g)
    assert ihvp._R is None
    v = rng.standard_normal(20)
    x = ihvp.solve(v)
    assert ihvp.n_refactorizations == count + 1
    assert relative_error(x, dense_inverse([*grads[-3:], g], 0.3, 20) @ v) <= 1e-10


# --- array types, inputs never modified -----------------------------------------------


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    ihvp = SlidingWindowIHVP(10, 3, damping=0.5)
    grads = gradients(rng, 5, 10, np.float32)
    for g in grads:
        ihvp.push(torch.from_numpy(g.copy()))
    v = torch.from_numpy(rng.standard_normal((2, 10)).astype(np.float32))
    x = ihvp.solve(v)
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape == (2, 10)
    expected = v.numpy().astype(np.float64) @ dense_inverse(grads[-3:], 0.5, 10)
    assert relative_error(x.numpy(), expected) <= 1e-4


def test_inputs_read_only_non_contiguous_and_unmodified(dtype, rng):
    ihvp = SlidingWindowIHVP(8, 3, damping=0.5, dtype=dtype)
    reference = SlidingWindowIHVP(8, 3, damping=0.5, dtype=dtype)
    source = rng.standard_normal((5, 16))  # float64 rows, every other entry used
    for row in source:
        g = row[::2]
        g.flags.writeable = False
        ihvp.push(g)
        reference.push(np.ascontiguousarray(g))
    np.testing.assert_array_equal(source, source.copy())
    V = rng.standard_normal((8, 3)).T  # a transposed, F-ordered (3, 8) block
    V.flags.writeable = False
    V_before = V.copy()
    np.testing.assert_array_equal(ihvp.solve(V), reference.solve(V_before))
    np.testing.assert_array_equal(V, V_before)


def test_integer_gradients_are_cast(rng):
    ihvp = SlidingWindowIHVP(3, 2, damping=1.0, dtype=np.float32)
    ihvp.push(np.array([2, 0, 0]))
    np.testing.assert_allclose(ihvp.solve(np.array([5, 1, 1])), [1.0, 1.0, 1.0], rtol=1e-6)


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"damping": 0.0}, ValueError, "damping"),
        ({"damping": -1.0}, ValueError, "damping"),
        ({"damping": np.nan}, ValueError, "damping"),
        ({"damping": "1"}, TypeError, "damping"),
        ({"dim": 0}, ValueError, "dim"),
        ({"dim": 2.5}, TypeError, "dim"),
        ({"window": 0}, ValueError, "window"),
        ({"window": True}, TypeError, "window"),
        ({"dtype": np.int32}, TypeError, "dtype"),
        ({"dtype": np.complex128}, TypeError, "dtype"),
        ({"dtype": "not a dtype"}, TypeError, "dtype"),
        ({"engine": "fortran"}, ValueError, "engine"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, name):
    arguments = {"dim": 4, "window": 2, "damping": 0.1} | kwargs
    dim, window = arguments.pop("dim"), arguments.pop("window")
    with pytest.raises(error, match=name):
        SlidingWindowIHVP(dim, window, **arguments)


def snapshot(ihvp: SlidingWindowIHVP) -> dict:
    return {key: np.copy(value) for key, value in vars(ihvp).items() if key != "_kernels"}


@pytest.mark.parametrize(
    ("g", "error"),
    [
        (np.array([1.0, np.nan, 0.0, 0.0]), ValueError),
        (np.array([1.0, np.inf, 0.0, 0.0]), ValueError),
        pytest.param(  # Inf once cast to float32
            np.array([1e39, 0.0, 0.0, 0.0]),
            ValueError,
            marks=pytest.mark.filterwarnings("ignore:overflow encountered in cast"),
        ),
        (np.ones(5), ValueError),
        (np.ones((1, 4)), ValueError),
        (np.ones(4, dtype=complex), TypeError),
        ("abcd", TypeError),
    ],
)
def test_rejected_push_leaves_the_window_unchanged(g, error, rng):
    ihvp, _ = filled(rng, dim=4, window=2, dtype=np.float32, pushes=3)
    ihvp.solve(np.ones(4))
    before = snapshot(ihvp)
    with pytest.raises(error, match="g"):
        ihvp.push(g)
    after = snapshot(ihvp)
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


@pytest.mark.parametrize(
    ("v", "error"),
    [
        (np.ones(5), ValueError),
        (np.ones((2, 3)), ValueError),
        (np.ones((2, 2, 4)), ValueError),
        (np.array([np.nan, 0.0, 0.0, 0.0]), ValueError),
        (np.ones(4, dtype=complex), TypeError),
        (np.ones((0, 4)), ValueError),
    ],
)
def test_bad_v(v, error, rng):
    ihvp, _ = filled(rng, dim=4, window=2, pushes=3)
    with pytest.raises(error, match="v"):
        ihvp.solve(v)
