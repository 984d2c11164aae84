"""K-FAC against curvlinops' KFAC inverse on the same factors (skipped without curvlinops).

curvlinops is not a test dependency: its requirements replace the pinned CPU
torch with a CUDA build. Install it beside torch with
``pip install --no-deps curvlinops-for-pytorch backpack-for-pytorch einconv
unfoldNd linear_operator einops tqdm`` to run these.
"""

import numpy as np
import pytest

from linalg.kron import KFAC

torch = pytest.importorskip("torch")
curvlinops = pytest.importorskip("curvlinops")


@pytest.fixture(scope="module")
def layer():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(24, 7, bias=False)).double()
    X, y = torch.randn(50, 24, dtype=torch.float64), torch.randn(50, 7, dtype=torch.float64)
    kfac = curvlinops.KFACLinearOperator(
        model, torch.nn.MSELoss(), list(model.parameters()), [(X, y)],
        fisher_type="type-2", check_deterministic=False,
    )  # fmt: skip
    kfac.compute_kronecker_factors()
    A, G = kfac._input_covariances["0"].numpy(), kfac._gradient_covariances["0"].numpy()
    V = np.random.default_rng(1).standard_normal((7, 24))
    return kfac, A, G, V


def _theirs(operator, V):
    return (operator @ torch.from_numpy(V).reshape(-1)).reshape(V.shape).numpy()


@pytest.mark.parametrize(
    ("mode", "option"), [("pi", "use_heuristic_damping"), ("exact", "use_exact_damping")]
)
@pytest.mark.parametrize("damping", [1e-4, 1e-1])
def test_solve_matches_curvlinops_inverse(layer, mode, option, damping):
    kfac, A, G, V = layer
    inverse = curvlinops.KFACInverseLinearOperator(kfac, damping=damping, **{option: True})
    theirs = _theirs(inverse, V)
    ours = KFAC(A, G, damping=damping, damping_mode=mode).solve(V)
    assert np.linalg.norm(ours - theirs) <= 1e-10 * np.linalg.norm(theirs)


def test_matvec_matches_curvlinops(layer):
    kfac, A, G, V = layer
    theirs = _theirs(kfac, V)
    ours = KFAC(A, G, damping=1.0).matvec(V)
    assert np.linalg.norm(ours - theirs) <= 1e-12 * np.linalg.norm(theirs)
