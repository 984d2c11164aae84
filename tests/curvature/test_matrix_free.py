"""ihvp_cg and ihvp_lissa: exact dense solves as the oracle, torch closures, breakdowns."""

import re
import warnings

import numpy as np
import pytest

import linalg
from linalg.curvature._matrix_free import ihvp_cg, ihvp_lissa

from conftest import spd_matrix


def _symmetric(rng, eigenvalues):
    Q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
    return (Q * np.asarray(eigenvalues)) @ Q.T


def _solve(H, damping, v):
    return np.linalg.solve(H + damping * np.eye(len(H)), v)


def _relative_error(x, exact):
    x = np.asarray(x, dtype=np.float64)
    return np.linalg.norm(x - exact) / np.linalg.norm(exact)


@pytest.fixture(scope="module")
def mlp():
    """A 2-layer tanh MLP with 43 parameters, its hvp closure and its explicit Hessian."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny products: threads only add contention
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(20, 5, generator=gen, dtype=torch.float64)
    targets = torch.randn(20, generator=gen, dtype=torch.float64)
    theta = torch.randn(43, generator=gen, dtype=torch.float64, requires_grad=True)

    def loss(p):
        W1, b1, W2, b2 = p[:30].reshape(6, 5), p[30:36], p[36:42], p[42]
        out = torch.tanh(inputs @ W1.T + b1) @ W2 + b2
        return ((out - targets) ** 2).mean()

    (grad,) = torch.autograd.grad(loss(theta), theta, create_graph=True)
    seen = []

    def hvp(v):  # double backward: the gradient of grad·v
        seen.append(type(v))
        (hv,) = torch.autograd.grad(grad @ v, theta, retain_graph=True)
        return hv

    H = torch.stack([hvp(e) for e in torch.eye(43, dtype=torch.float64)], dim=1).numpy()
    seen.clear()
    yield torch, hvp, H, seen
    torch.set_num_threads(threads)


# --- ihvp_cg ------------------------------------------------------------------


def test_cg_matches_the_dense_solve_on_an_spd_hessian(engine, dtype, rng):
    H = spd_matrix(rng, 30).astype(dtype)
    v = rng.standard_normal(30).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    res = ihvp_cg(lambda u: H @ u, v, damping=0.1, rtol=tol, engine=engine)
    assert res.converged and res.x.dtype == dtype and res.info["engine"] == engine
    exact = _solve(H.astype(np.float64), 0.1, v.astype(np.float64))
    assert _relative_error(res.x, exact) <= (1e-3 if dtype == np.float32 else 1e-8)


def test_cg_on_an_indefinite_hessian_with_enough_damping(rng):
    H = _symmetric(rng, np.linspace(-2.0, 5.0, 25))
    v = rng.standard_normal(25)
    res = ihvp_cg(lambda u: H @ u, v, damping=2.5, rtol=1e-12)
    assert res.converged
    assert _relative_error(res.x, _solve(H, 2.5, v)) <= 1e-8
    true = np.linalg.norm(v - (H + 2.5 * np.eye(25)) @ res.x)
    assert res.residual_norm == pytest.approx(true, rel=0.05, abs=1e-11)


def test_cg_with_too_little_damping_says_so(rng):
    H = _symmetric(rng, np.linspace(-2.0, 5.0, 25))
    with pytest.raises(
        linalg.LinAlgError, match="H \\+ damping I is not positive definite; increase damping"
    ) as caught:
        ihvp_cg(lambda u: H @ u, rng.standard_normal(25), damping=1.0)
    assert isinstance(caught.value.__cause__, linalg.LinAlgError)
    assert "damping = 1" in str(caught.value)


def test_cg_many_right_hand_sides(engine, rng):
    H = spd_matrix(rng, 20)
    V = rng.standard_normal((20, 4))
    res = ihvp_cg(lambda u: H @ u, V, damping=0.5, rtol=1e-12, engine=engine)
    assert res.x.shape == (20, 4) and res.converged.all()
    np.testing.assert_allclose(res.x, _solve(H, 0.5, V), rtol=1e-8, atol=1e-12)


def test_cg_torch_closure_on_an_mlp(mlp):
    torch, hvp, H, seen = mlp
    damping = max(0.0, -np.linalg.eigvalsh(H)[0]) + 0.1
    v = torch.linspace(-1.0, 1.0, 43, dtype=torch.float64)
    res = ihvp_cg(hvp, v, damping=damping, rtol=1e-12)
    assert isinstance(res.x, torch.Tensor) and res.x.dtype == torch.float64
    assert set(seen) == {torch.Tensor}
    assert res.converged
    assert _relative_error(res.x.numpy(), _solve(H, damping, v.numpy())) <= 1e-8
    V = torch.stack([v, torch.ones(43, dtype=torch.float64)], dim=1)
    block = ihvp_cg(hvp, V, damping=damping, rtol=1e-12)
    assert isinstance(block.x, torch.Tensor) and block.x.shape == (43, 2)
    np.testing.assert_allclose(block.x.numpy(), _solve(H, damping, V.numpy()), rtol=1e-7)


def test_cg_does_not_modify_read_only_strided_input(rng):
    H = spd_matrix(rng, 12)
    v = np.repeat(rng.standard_normal(12), 2)[::2]
    v.flags.writeable = False
    before = v.copy()
    res = ihvp_cg(lambda u: H @ u, v, damping=0.0, rtol=1e-12)
    np.testing.assert_array_equal(v, before)
    assert _relative_error(res.x, _solve(H, 0.0, before)) <= 1e-8


def test_cg_not_converged_warns():
    H = np.diag(np.geomspace(1.0, 1e4, 50))
    with pytest.warns(linalg.ConvergenceWarning, match="cg did not converge"):
        res = ihvp_cg(lambda u: H @ u, np.ones(50), damping=0.0, maxiter=3)
    assert res.converged is False and res.n_iter == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ihvp_cg(lambda u: H @ u, np.ones(50), damping=0.0, maxiter=3, warn=False)


def test_cg_nan_from_hvp_is_a_breakdown():
    with pytest.raises(linalg.LinAlgError, match="NaN or Inf"):
        ihvp_cg(lambda u: u * np.nan, np.ones(4), damping=1.0)


# --- ihvp_lissa ---------------------------------------------------------------


def test_lissa_converges_to_the_solve(rng):
    H = _symmetric(rng, np.linspace(-1.0, 4.0, 20))
    v = rng.standard_normal(20)
    res = ihvp_lissa(lambda u: H @ u, v, damping=2.0, scale=6.5, depth=2000, rtol=1e-12)
    assert res.converged and res.n_iter < 2000
    assert _relative_error(res.x, _solve(H, 2.0, v)) <= 1e-6
    assert res.history.shape == (res.n_iter + 1,) and res.history[0] == 1.0
    assert res.residual_norm == res.history[-1] <= 1e-12
    assert res.info == {"scale": 6.5, "repeats": 1}


def test_lissa_float32_stays_float32(rng):
    H = spd_matrix(rng, 15, cond=10.0).astype(np.float32)
    v = rng.standard_normal(15).astype(np.float32)
    res = ihvp_lissa(lambda u: H @ u, v, damping=0.0, scale=11.0, depth=1000)
    assert res.converged and res.x.dtype == np.float32
    assert _relative_error(res.x, _solve(H.astype(np.float64), 0.0, v)) <= 1e-4


def test_lissa_scale_too_small_diverges(rng):
    H = _symmetric(rng, np.linspace(0.5, 4.0, 20))
    with pytest.raises(linalg.LinAlgError, match="scale = 1 is too small") as caught:
        ihvp_lissa(lambda u: H @ u, np.ones(20), damping=0.0, scale=1.0, depth=1000)
    # |1 - 4/1| = 3 per step: ||x|| passes 1e8 ||v|| within about 25 steps (3**25 ~ 8e11)
    assert int(re.search(r"at step (\d+)", str(caught.value)).group(1)) <= 25


def test_lissa_indefinite_with_too_little_damping_diverges(rng):
    H = _symmetric(rng, np.linspace(-1.0, 4.0, 20))
    with pytest.raises(linalg.LinAlgError, match="must be positive definite"):
        ihvp_lissa(lambda u: H @ u, np.ones(20), damping=0.5, scale=5.0, depth=5000)


def test_lissa_not_converged_warns(rng):
    H = _symmetric(rng, np.linspace(0.01, 1.0, 20))
    with pytest.warns(linalg.ConvergenceWarning, match="ihvp_lissa did not converge in depth=50"):
        res = ihvp_lissa(lambda u: H @ u, np.ones(20), damping=0.0, scale=1.0, depth=50)
    assert res.converged is False and res.n_iter == 50 and res.residual_norm > 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kw = {"damping": 0.0, "scale": 1.0, "depth": 50, "warn": False}
        ihvp_lissa(lambda u: H @ u, np.ones(20), **kw)


def test_lissa_many_right_hand_sides_stop_on_their_own(rng):
    H = _symmetric(rng, np.linspace(0.5, 2.0, 10))
    V = np.column_stack([rng.standard_normal(10), np.zeros(10), np.linalg.eigh(H)[1][:, -1]])
    res = ihvp_lissa(lambda u: H @ u, V, damping=0.0, scale=2.5, depth=500, rtol=1e-12)
    assert res.converged.tolist() == [True, True, True]
    assert res.n_iter[1] == 0 and (res.x[:, 1] == 0.0).all()
    assert res.n_iter[2] < res.n_iter[0]  # an eigenvector converges at its own, faster rate
    assert res.history.shape == (res.n_iter.max() + 1, 3)
    np.testing.assert_allclose(res.x, _solve(H, 0.0, V), rtol=1e-9, atol=1e-12)


def test_lissa_repeats_average_a_stochastic_hvp(rng):
    H = _symmetric(rng, np.linspace(0.5, 2.0, 10))
    v = rng.standard_normal(10)
    exact = _solve(H, 0.1, v)

    def noisy(seed):
        noise = np.random.default_rng(seed)

        def hvp(u):  # an unbiased estimate of H u, like a mini-batch Hessian
            E = noise.standard_normal((10, 10)) * 0.05
            return H @ u + (E + E.T) @ u

        return hvp

    kw = {"damping": 0.1, "scale": 3.0, "depth": 300, "rtol": 0.0, "warn": False}
    single = [_relative_error(ihvp_lissa(noisy(s), v, **kw).x, exact) for s in range(8)]
    averaged = [
        _relative_error(ihvp_lissa(noisy(s), v, repeats=16, **kw).x, exact) for s in range(8)
    ]
    # 16 independent recursions: the noise shrinks by about 4
    assert np.mean(averaged) < np.mean(single) / 2.5


def test_lissa_repeats_of_a_deterministic_hvp_agree(rng):
    H = spd_matrix(rng, 8, cond=4.0)
    calls = []

    def hvp(u):
        calls.append(1)
        return H @ u

    v = rng.standard_normal(8)
    one = ihvp_lissa(hvp, v, damping=0.0, scale=4.5, depth=300, rtol=1e-10)
    n_one = len(calls)
    three = ihvp_lissa(hvp, v, damping=0.0, scale=4.5, depth=300, rtol=1e-10, repeats=3)
    assert n_one == one.n_iter and len(calls) - n_one == 3 * three.n_iter
    np.testing.assert_allclose(three.x, one.x, rtol=1e-14)


def test_lissa_torch_closure_and_callback(mlp):
    torch, hvp, H, seen = mlp
    eigenvalues = np.linalg.eigvalsh(H)
    damping = max(0.0, -eigenvalues[0]) + 1.0
    scale = 1.05 * (eigenvalues[-1] + damping)
    v = torch.linspace(-1.0, 1.0, 43, dtype=torch.float64)
    steps = []
    res = ihvp_lissa(
        hvp, v, damping=damping, scale=scale, depth=5000, rtol=1e-12, callback=steps.append
    )
    assert isinstance(res.x, torch.Tensor) and res.x.dtype == torch.float64
    assert set(seen) == {torch.Tensor}
    assert res.converged and len(steps) == res.n_iter
    assert isinstance(steps[-1], torch.Tensor) and torch.equal(steps[-1], res.x)
    assert _relative_error(res.x.numpy(), _solve(H, damping, v.numpy())) <= 1e-6


# --- bad input ----------------------------------------------------------------


def _identity(u):
    return u


@pytest.mark.parametrize("routine", ["cg", "lissa"])
@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"damping": -0.1}, ValueError, "damping must be >= 0"),
        ({"damping": float("nan")}, ValueError, "damping must be finite"),
        ({"v": np.array([1.0, np.nan, 2.0])}, ValueError, "v contains NaN"),
        ({"v": np.ones((3, 1, 1))}, ValueError, "v must be 1-D or 2-D"),
        ({"v": np.ones(3, dtype=complex)}, TypeError, "v is complex"),
        ({"hvp": np.eye(3)}, TypeError, "hvp must be callable"),
        ({"hvp": lambda u: u[:2]}, ValueError, "hvp returned .* of shape \\(2,\\)"),
    ],
)
def test_bad_input_names_the_argument(routine, change, error, match):
    args = {"hvp": _identity, "v": np.ones(3), "damping": 0.1} | change
    hvp, v = args.pop("hvp"), args.pop("v")
    if routine == "lissa":
        args |= {"scale": 2.0, "depth": 10, "warn": False}
    with pytest.raises(error, match=match):
        (ihvp_cg if routine == "cg" else ihvp_lissa)(hvp, v, **args)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"scale": 0.0}, ValueError, "scale must be > 0"),
        ({"depth": 0}, ValueError, "depth must be >= 1"),
        ({"depth": 2.5}, TypeError, "depth must be an integer"),
        ({"repeats": 0}, ValueError, "repeats must be >= 1"),
        ({"rtol": -1.0}, ValueError, "rtol must be >= 0"),
        ({"callback": 1}, TypeError, "callback must be callable"),
        ({"warn": None}, TypeError, "warn must be True or False"),
    ],
)
def test_lissa_bad_options(change, error, match):
    kw = {"damping": 0.0, "scale": 2.0, "depth": 10} | change
    with pytest.raises(error, match=match):
        ihvp_lissa(_identity, np.ones(3), **kw)


def test_lissa_nan_from_hvp_is_a_breakdown():
    with pytest.raises(linalg.LinAlgError, match="hvp returned NaN or Inf at step 1"):
        ihvp_lissa(lambda u: u * np.nan, np.ones(3), damping=0.0, scale=2.0, depth=10)
