"""DenseIHVP: every method against the explicit float64 Fisher and its inverse."""

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from linalg._core.results import LinAlgError
from linalg.curvature._dense import DenseIHVP

from conftest import RTOL

# The Woodbury form F⁻¹ v = (v − Gᵀ C⁻¹ G v) / λ subtracts two terms of size ‖v‖ / λ, so
# its absolute error is about eps ‖v‖ / λ. With m < d the answer is dominated by the null
# space of G, where F⁻¹ = I / λ, and float32 meets 1e-4 at damping 1e-4 x the mean
# eigenvalue (measured: 1e-7). With m > d every direction is curved, ‖F⁻¹ v‖ ≈ ‖v‖ / ‖F‖,
# and the relative error grows to about eps₃₂ ‖F‖ / λ even where κ(F) is small (measured:
# 4e-4 at 1e-4 x the mean eigenvalue with κ(F) = 180): float32 there is tested at damping
# 1e-2 x the mean eigenvalue (measured: 5e-6).

RELATIVE_DAMPING = 1e-4
RELATIVE_DAMPING_F32_OVERDETERMINED = 1e-2
SHAPES = {"m<d": (40, 300), "m>d": (300, 80)}


def _weight(m, scale):
    return 1.0 / m if scale == "mean" else 1.0


def _damping(G, scale, relative):
    """``relative`` x the mean eigenvalue of the undamped Fisher."""
    m, d = G.shape
    return relative * _weight(m, scale) * float(np.sum(G.astype(np.float64) ** 2)) / d


def _fisher(G, damping, scale, block_size=None):
    """The explicit (block-diagonal) damped Fisher in float64."""
    m, d = G.shape
    G = G.astype(np.float64)
    size = block_size or d
    F = np.zeros((d, d))
    for start in range(0, d, size):
        block = slice(start, min(start + size, d))
        F[block, block] = _weight(m, scale) * G[:, block].T @ G[:, block]
    return F + damping * np.eye(d)


def _problem(rng, dtype, shape, scale):
    m, d = SHAPES[shape]
    G = rng.standard_normal((m, d)) * np.geomspace(1.0, 10.0, d)  # anisotropic coordinates
    G = G.astype(dtype)
    overdetermined_f32 = m > d and dtype == np.float32
    relative = RELATIVE_DAMPING_F32_OVERDETERMINED if overdetermined_f32 else RELATIVE_DAMPING
    return G, _damping(G, scale, relative)


def _relative_error(x, exact):
    x = np.asarray(x, dtype=np.float64)
    return np.linalg.norm(x - exact) / np.linalg.norm(exact)


@pytest.mark.parametrize("scale", ["mean", "sum"])
@pytest.mark.parametrize("shape", ["m<d", "m>d"])
def test_solve_and_matvec_match_the_explicit_fisher(rng, dtype, shape, scale):
    G, damping = _problem(rng, dtype, shape, scale)
    F = _fisher(G, damping, scale)
    ihvp = DenseIHVP(G, damping=damping, scale=scale)
    d = G.shape[1]
    v = rng.standard_normal(d).astype(dtype)
    V = rng.standard_normal((5, d)).astype(dtype)
    x, X = ihvp.solve(v), ihvp.solve(V)
    assert x.shape == (d,) and X.shape == (5, d)
    assert x.dtype == dtype and X.dtype == dtype
    assert _relative_error(x, np.linalg.solve(F, v.astype(np.float64))) <= RTOL[dtype]
    assert _relative_error(X, np.linalg.solve(F, V.astype(np.float64).T).T) <= RTOL[dtype]
    assert _relative_error(ihvp.matvec(v), F @ v.astype(np.float64)) <= RTOL[dtype]
    assert _relative_error(ihvp.matvec(V), V.astype(np.float64) @ F) <= RTOL[dtype]


@pytest.mark.parametrize("scale", ["mean", "sum"])
@pytest.mark.parametrize("shape", ["m<d", "m>d"])
def test_inverse_entries_and_logdet_match(rng, dtype, shape, scale):
    G, damping = _problem(rng, dtype, shape, scale)
    F = _fisher(G, damping, scale)
    inverse = np.linalg.inv(F)
    ihvp = DenseIHVP(G, damping=damping, scale=scale)
    diagonal = ihvp.inv_diag()
    assert diagonal.dtype == dtype
    assert _relative_error(diagonal, np.diag(inverse)) <= RTOL[dtype]
    d = G.shape[1]
    pairs = rng.integers(0, d, size=(30, 2))
    entries = [ihvp.inv_entry(int(i), int(j)) for i, j in pairs]
    exact = inverse[pairs[:, 0], pairs[:, 1]]
    assert _relative_error(entries, exact) <= RTOL[dtype]
    assert ihvp.inv_entry(3, 7) == pytest.approx(ihvp.inv_entry(7, 3), rel=1e-6)
    sign, logdet = np.linalg.slogdet(F)
    assert sign == 1.0
    assert ihvp.logdet() == pytest.approx(logdet, rel=RTOL[dtype])


# 60 divides d = 300; 64 and 128 leave a short last block (44 >= m = 40 coordinates).
@pytest.mark.parametrize("block_size", [60, 64, 128])
def test_blocked_fisher_matches_the_block_diagonal(rng, dtype, block_size):
    G, damping = _problem(rng, dtype, "m<d", "mean")
    F = _fisher(G, damping, "mean", block_size)
    inverse = np.linalg.inv(F)
    ihvp = DenseIHVP(G, damping=damping, block_size=block_size)
    assert ihvp.block_size == block_size
    V = rng.standard_normal((3, 300)).astype(dtype)
    assert _relative_error(ihvp.solve(V), V.astype(np.float64) @ inverse) <= RTOL[dtype]
    assert _relative_error(ihvp.solve(V[0]), inverse @ V[0]) <= RTOL[dtype]
    assert _relative_error(ihvp.matvec(V), V.astype(np.float64) @ F) <= RTOL[dtype]
    assert _relative_error(ihvp.inv_diag(), np.diag(inverse)) <= RTOL[dtype]
    pairs = [(0, 0), (0, 1), (block_size - 1, 0), (299, 298), (299, 299), (299, 260)]
    entries = [ihvp.inv_entry(i, j) for i, j in pairs]
    assert _relative_error(entries, [inverse[i, j] for i, j in pairs]) <= RTOL[dtype]
    assert ihvp.inv_entry(0, block_size) == 0.0 == inverse[0, block_size]
    assert ihvp.logdet() == pytest.approx(np.linalg.slogdet(F)[1], rel=RTOL[dtype])


def test_large_dimension_in_float64(rng):
    G = rng.standard_normal((150, 2000))
    damping = _damping(G, "mean", RELATIVE_DAMPING)
    F = _fisher(G, damping, "mean")
    ihvp = DenseIHVP(G, damping=damping)
    V = rng.standard_normal((2, 2000))
    assert _relative_error(ihvp.solve(V), np.linalg.solve(F, V.T).T) <= 1e-10
    assert _relative_error(ihvp.inv_diag(), np.diag(np.linalg.inv(F))) <= 1e-10


def test_as_linear_operator_applies_the_inverse(rng):
    G, damping = _problem(rng, np.float64, "m<d", "mean")
    F = _fisher(G, damping, "mean", 64)
    ihvp = DenseIHVP(G, damping=damping, block_size=64)
    op = ihvp.as_linear_operator()
    assert op.shape == (300, 300) and op.dtype == np.float64
    B = rng.standard_normal((300, 2))
    assert _relative_error(op @ B, np.linalg.solve(F, B)) <= 1e-10
    assert _relative_error(op.rmatvec(B[:, 0]), np.linalg.solve(F, B[:, 0])) <= 1e-10
    x, info = spla.cg(F, B[:, 0], M=op, rtol=1e-10)  # the exact inverse as preconditioner
    assert info == 0
    assert _relative_error(x, np.linalg.solve(F, B[:, 0])) <= 1e-9


def test_attributes_and_engine_selection(rng):
    G = rng.standard_normal((6, 20)).astype(np.float32)
    ihvp = DenseIHVP(G, damping=0.5, scale="sum", engine="reference")
    assert (ihvp.damping, ihvp.scale, ihvp.n_grads, ihvp.dim) == (0.5, "sum", 6, 20)
    assert ihvp.dtype == np.float32 and ihvp.block_size is None
    assert ihvp.engine == "reference"
    assert DenseIHVP(G, damping=0.5).engine == "reference"  # auto
    with pytest.raises(TypeError, match=r"has no implementation of curvature\.dense_ihvp"):
        DenseIHVP(G, damping=0.5, engine="numba")
    with pytest.raises(ValueError, match="engine must be"):
        DenseIHVP(G, damping=0.5, engine="fast")


def test_dtypes_and_layouts(rng):
    G = rng.standard_normal((8, 30))
    v = rng.standard_normal(30)
    expected = DenseIHVP(G, damping=0.1).solve(v)
    G32 = G.astype(np.float32)
    assert DenseIHVP(G32, damping=0.1).solve(v).dtype == np.float64  # the wider dtype
    assert DenseIHVP(G32, damping=0.1).solve(v.astype(np.float32)).dtype == np.float32
    fortran = DenseIHVP(np.asfortranarray(G), damping=0.1).solve(v)
    strided = DenseIHVP(np.repeat(G, 2, axis=1)[:, ::2], damping=0.1).solve(v[::1])
    np.testing.assert_allclose(fortran, expected, rtol=1e-12)
    np.testing.assert_allclose(strided, expected, rtol=1e-12)
    integer = DenseIHVP(np.arange(24).reshape(4, 6) % 5, damping=1.0)
    assert integer.dtype == np.float64
    ihvp = DenseIHVP(G, damping=0.1)
    assert np.shares_memory(ihvp._G, G)  # kept by reference, as documented


def test_torch_in_torch_out(rng):
    torch = pytest.importorskip("torch")
    G, damping = _problem(rng, np.float64, "m<d", "mean")
    F = _fisher(G, damping, "mean")
    ihvp = DenseIHVP(torch.from_numpy(G), damping=damping)
    v = rng.standard_normal(300)
    x = ihvp.solve(torch.from_numpy(v))
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float64
    assert _relative_error(x.numpy(), np.linalg.solve(F, v)) <= 1e-10
    assert isinstance(ihvp.solve(v), torch.Tensor)  # the caller's kind, from grads
    diagonal = ihvp.inv_diag()
    assert isinstance(diagonal, torch.Tensor)
    assert _relative_error(diagonal.numpy(), np.diag(np.linalg.inv(F))) <= 1e-10
    assert isinstance(ihvp.matvec(torch.from_numpy(v)), torch.Tensor)


def test_inputs_are_not_modified(rng):
    G, damping = _problem(rng, np.float64, "m<d", "mean")
    V = rng.standard_normal((3, 300))
    for a in (G, V):
        a.setflags(write=False)
    copies = G.copy(), V.copy()
    for block_size in (None, 64):
        ihvp = DenseIHVP(G, damping=damping, block_size=block_size)
        ihvp.solve(V)
        ihvp.solve(V[1])
        ihvp.matvec(V)
        ihvp.inv_diag()
        ihvp.inv_entry(2, 5)
        ihvp.logdet()
        ihvp.as_linear_operator().matmat(V.T)
    np.testing.assert_array_equal(G, copies[0])
    np.testing.assert_array_equal(V, copies[1])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"damping": -1.0}, ValueError, "damping must be >= 0"),
        ({"damping": 0.0}, ValueError, "damping must be > 0.*singular"),
        ({"damping": np.nan}, ValueError, "damping must be finite"),
        ({"damping": "1"}, TypeError, "damping must be a real number"),
        ({"damping": 1.0, "scale": "max"}, ValueError, "scale must be 'mean' or 'sum'"),
        ({"damping": 1.0, "block_size": 0}, ValueError, "block_size must be >= 1"),
        ({"damping": 1.0, "block_size": 21}, ValueError, "block_size must be <= dim = 20"),
        ({"damping": 1.0, "block_size": 2.5}, TypeError, "block_size must be an integer"),
    ],
)
def test_bad_options_are_named(rng, kwargs, error, match):
    with pytest.raises(error, match=match):
        DenseIHVP(rng.standard_normal((5, 20)), **kwargs)


def test_zero_damping_is_refused_even_when_m_exceeds_d(rng):
    with pytest.raises(ValueError, match="damping must be > 0"):
        DenseIHVP(rng.standard_normal((30, 5)), damping=0.0)


@pytest.mark.parametrize(
    ("grads", "error", "match"),
    [
        (np.ones(20), ValueError, "grads must be 2-D"),
        (np.ones((0, 20)), ValueError, "grads is empty"),
        (np.ones((5, 20)) * 1j, TypeError, "grads is complex"),
        (np.where(np.eye(5, 20) > 0, np.nan, 1.0), ValueError, "grads contains NaN"),
        (np.where(np.eye(5, 20) > 0, -np.inf, 1.0), ValueError, "grads contains Inf"),
    ],
)
def test_bad_gradients_are_named(grads, error, match):
    with pytest.raises(error, match=match):
        DenseIHVP(grads, damping=1.0)


def test_bad_vectors_and_indices_are_named(rng):
    ihvp = DenseIHVP(rng.standard_normal((5, 20)), damping=1.0)
    for method in (ihvp.solve, ihvp.matvec):
        with pytest.raises(ValueError, match="v must have last dimension 20"):
            method(np.ones(19))
        with pytest.raises(ValueError, match="v must have last dimension 20"):
            method(np.ones((20, 3)))
        with pytest.raises(ValueError, match="v contains NaN"):
            method(np.full(20, np.nan))
        with pytest.raises(ValueError, match="v must be 1-D or 2-D"):
            method(np.ones((2, 2, 20)))
    with pytest.raises(ValueError, match="j must be < dim = 20"):
        ihvp.inv_entry(0, 20)
    with pytest.raises(ValueError, match="i must be >= 0"):
        ihvp.inv_entry(-1, 0)
    with pytest.raises(TypeError, match="i must be an integer"):
        ihvp.inv_entry(1.0, 0)


def test_too_little_damping_for_float32_raises_linalg_error(rng):
    G = rng.standard_normal((200, 50)).astype(np.float32)  # G Gᵀ has rank 50 < 200
    with pytest.raises(LinAlgError, match="increase damping"):
        DenseIHVP(G, damping=_damping(G, "mean", 1e-12))
