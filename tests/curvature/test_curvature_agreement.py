"""The curvature routines agree with each other on the same empirical Fisher."""

import numpy as np
import pytest

from linalg.curvature import DenseIHVP, SlidingWindowIHVP, ihvp_cg


@pytest.mark.parametrize("window", [1, 5, 12])
def test_sliding_window_equals_dense_over_the_gradients_it_holds(engine, window, rng):
    dim, damping = 40, 0.3
    grads = rng.standard_normal((10 * window + 3, dim))
    sliding = SlidingWindowIHVP(dim, window, damping=damping, dtype=np.float64, engine=engine)
    V = rng.standard_normal((3, dim))
    for count, g in enumerate(grads, start=1):
        sliding.push(g)
        if count % 7 == 0 or count <= window or count == len(grads):
            held = grads[max(0, count - window) : count]
            dense = DenseIHVP(held, damping=damping)
            np.testing.assert_allclose(sliding.solve(V), dense.solve(V), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(sliding.inv_diag(), dense.inv_diag(), rtol=1e-10)


def test_ihvp_cg_on_a_torch_fisher_closure_equals_dense():
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(3)
    G = torch.randn(16, 60, generator=generator, dtype=torch.float64)
    v = torch.randn(60, generator=generator, dtype=torch.float64)
    seen = []

    def fisher_hvp(u):  # the empirical-Fisher product (1/m) Gᵀ G u, in torch
        seen.append(type(u))
        return G.T @ (G @ u) / G.shape[0]

    res = ihvp_cg(fisher_hvp, v, damping=0.05, rtol=1e-12)
    dense = DenseIHVP(G, damping=0.05).solve(v)
    assert isinstance(res.x, torch.Tensor) and isinstance(dense, torch.Tensor)
    assert set(seen) == {torch.Tensor}
    torch.testing.assert_close(res.x, dense, rtol=1e-9, atol=1e-12)
