"""Kronecker-factored curvature against its floors and naive peers.

`impl` is the implementation measured, so one ``asv run --python=same`` gives
every ratio side by side (``asv_bench/ratios.py``: ours / the first non-linalg
impl, and against every peer for linalg rows):

- ``KFACSolve``: ``KFAC.solve`` against ``floor-gemm``, the two matrix
  products any K-FAC solve must do (``G⁻¹ V`` then ``(·) A⁻¹``).
- ``RankOneInverse``: ``InverseFactor.rank_one_update`` against ``recompute``,
  a fresh inverse of the updated matrix by Cholesky.
- ``InverseRoot``: ``matrix_inverse_root`` with ``method="auto"`` against
  ``eigh`` and ``newton`` (the forced methods).
- ``KronSolve``: ``kron_solve`` against ``dense``: forming ``numpy.kron`` and
  solving.
- ``KFACCurvlinops``: the K-FAC inverse of one linear layer against
  curvlinops' ``KFACInverseLinearOperator`` on the same factors (its heuristic
  damping is our ``"pi"``, its exact damping our ``"exact"``): set-up plus one
  solve, and a solve with the factorizations cached. curvlinops is not a
  dependency (its requirements replace torch 2.13 with a CUDA build here): the
  benchmark is skipped unless it is importable, e.g. after
  ``pip install --no-deps curvlinops-for-pytorch backpack-for-pytorch einconv
  unfoldNd linear_operator einops tqdm``.
"""

import numpy as np
import scipy.linalg


def _spd(rng, n, dtype):
    X = rng.standard_normal((n, 2 * n)).astype(dtype)
    return (X @ X.T / (2 * n)).astype(dtype)


def _import(name):
    try:
        import linalg.kron as kron
    except ImportError as exc:
        raise NotImplementedError(str(exc)) from exc
    if not hasattr(kron, name):
        raise NotImplementedError(f"linalg.kron has no {name} yet")
    return getattr(kron, name)


class KFACSolve:
    """K-FAC solve for a (1024, 4096) weight gradient: A 4096x4096, G 1024x1024, float32."""

    params = (["linalg", "floor-gemm"], ["plain", "pi", "exact"])
    param_names = ("impl", "damping_mode")
    number = 1
    repeat = (3, 10, 30.0)
    warmup_time = 0.0
    timeout = 600

    def setup(self, impl, damping_mode):
        rng = np.random.default_rng(0)
        A, G = _spd(rng, 4096, np.float32), _spd(rng, 1024, np.float32)
        self.V = rng.standard_normal((1024, 4096)).astype(np.float32)
        if impl == "floor-gemm":
            self.G_inv, self.A_inv = np.linalg.inv(G), np.linalg.inv(A)
            return
        self.kfac = _import("KFAC")(A, G, damping=1e-3, damping_mode=damping_mode)
        self.kfac.solve(self.V)  # factorize outside the timing: cached and reused

    def time_solve(self, impl, damping_mode):
        if impl == "floor-gemm":
            (self.G_inv @ self.V) @ self.A_inv
        else:
            self.kfac.solve(self.V)


class RankOneInverse:
    """One rank-one update of an SPD inverse, n = 2048, float64."""

    params = (["linalg", "recompute"],)
    param_names = ("impl",)
    number = 1
    repeat = (5, 20, 20.0)
    warmup_time = 0.0

    def setup(self, impl):
        rng = np.random.default_rng(0)
        self.A = _spd(rng, 2048, np.float64) + np.eye(2048)
        self.u = rng.standard_normal(2048) / 45.0
        if impl == "linalg":
            self.factor = _import("InverseFactor")(self.A)

    def time_update(self, impl):
        if impl == "linalg":
            self.factor.rank_one_update(self.u, alpha=1.0, decay=0.99)
        else:
            updated = 0.99 * self.A + np.outer(self.u, self.u)
            scipy.linalg.cho_solve(scipy.linalg.cho_factor(updated), np.eye(2048))


class InverseRoot:
    """(A + eps I)^(-1/4) of an SPD matrix, float32."""

    params = (["linalg", "eigh", "newton"], [256, 1024, 4096])
    param_names = ("impl", "n")
    number = 1
    repeat = (1, 5, 30.0)
    warmup_time = 0.0
    timeout = 1200

    def setup(self, impl, n):
        self.root = _import("matrix_inverse_root")
        self.A = _spd(np.random.default_rng(0), n, np.float32)
        self.method = "auto" if impl == "linalg" else impl

    def time_inverse_root(self, impl, n):
        self.root(self.A, 4, eps=1e-6, method=self.method)


class KronSolve:
    """(A ⊗ B + λI) y = x for A, B of size 48 (a 2,304-unknown system), float64."""

    params = (["linalg", "dense"],)
    param_names = ("impl",)
    number = 1
    repeat = (5, 20, 20.0)
    warmup_time = 0.0

    def setup(self, impl):
        rng = np.random.default_rng(0)
        self.A, self.B = _spd(rng, 48, np.float64), _spd(rng, 48, np.float64)
        self.X = rng.standard_normal((48, 48))
        self.kron_solve = _import("kron_solve") if impl == "linalg" else None

    def time_solve(self, impl):
        if impl == "linalg":
            self.kron_solve(self.A, self.B, self.X, damping=1e-2)
        else:
            K = np.kron(self.A, self.B) + 1e-2 * np.eye(48 * 48)
            np.linalg.solve(K, self.X.reshape(-1, order="F"))


class KFACCurvlinops:
    """K-FAC inverse for a Linear(4096 -> 1024) layer, float32: A 4096², G 1024²."""

    params = (["linalg", "curvlinops"], ["pi", "exact"])
    param_names = ("impl", "damping_mode")
    number = 1
    repeat = (3, 5, 60.0)
    warmup_time = 0.0
    timeout = 900

    def setup(self, impl, damping_mode):
        try:
            import torch
            from curvlinops import KFACInverseLinearOperator, KFACLinearOperator
        except ImportError as exc:
            raise NotImplementedError(f"curvlinops is not installed: {exc}") from exc
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4096, 1024, bias=False))
        X, y = torch.randn(2048, 4096), torch.randn(2048, 1024)
        kfac = KFACLinearOperator(
            model, torch.nn.MSELoss(), list(model.parameters()), [(X, y)],
            fisher_type="empirical", check_deterministic=False,
        )  # fmt: skip
        kfac.compute_kronecker_factors()
        self.A = kfac._input_covariances["0"].numpy()  # the same factors for both
        self.G = kfac._gradient_covariances["0"].numpy()
        self.V = np.random.default_rng(0).standard_normal((1024, 4096)).astype(np.float32)
        if impl == "curvlinops":
            option = "use_heuristic_damping" if damping_mode == "pi" else "use_exact_damping"
            self.build = lambda: KFACInverseLinearOperator(kfac, damping=1e-3, **{option: True})
            self.v = torch.from_numpy(self.V).reshape(-1)
            self.apply = lambda inverse: inverse @ self.v
        else:
            KFAC = _import("KFAC")
            self.build = lambda: KFAC(self.A, self.G, damping=1e-3, damping_mode=damping_mode)
            self.apply = lambda inverse: inverse.solve(self.V)
        self.inverse = self.build()
        self.apply(self.inverse)  # factorizations cached for time_solve

    def time_setup_and_solve(self, impl, damping_mode):
        self.apply(self.build())

    def time_solve(self, impl, damping_mode):
        self.apply(self.inverse)
