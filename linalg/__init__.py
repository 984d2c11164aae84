"""linalg: numerical linear algebra for machine learning and scientific computing.

Every routine has a NumPy reference path; faster engines (Numba on the CPU,
CuPy and numba-cuda on the GPU) are chosen by one dispatch layer. Importing
this package loads no optional library.

Families
--------
curvature
    Inverse-Hessian vector products (M-FAC dense and sliding window,
    Woodbury, CG and LiSSA on an hvp callable) and Hutchinson estimators.
kron
    Kronecker-factored curvature: K-FAC, EK-FAC, Shampoo and inverse p-th
    roots, nearest Kronecker product, rank-one inverse updates, Fisher-weighted SVD.
solvers
    Krylov solvers (cg with many right-hand sides, minres, gmres, lsqr) and
    preconditioners (jacobi, ichol).
sketch
    Sketch operators, leverage scores, Nyström, sketched least squares.
svd
    Randomized SVD and truncated-SVD updates.
ot
    Entropic optimal transport (log-domain Sinkhorn, Sinkhorn–Newton,
    Sinkhorn–Newton-Sparse).

A family is imported on first use (``linalg.ot`` or ``from linalg import
ot``), so ``import linalg`` itself loads NumPy and little else.
"""

import importlib
from typing import Any

from linalg._core.config import config_context, get_config
from linalg._core.engines import engines
from linalg._core.results import ConvergenceWarning, EstimateResult, LinAlgError, SolveResult
from linalg._version import __version__

__all__ = [
    "ConvergenceWarning",
    "EstimateResult",
    "LinAlgError",
    "SolveResult",
    "__version__",
    "config_context",
    "curvature",
    "engines",
    "get_config",
    "kron",
    "ot",
    "sketch",
    "solvers",
    "svd",
]

_FAMILIES = ("curvature", "kron", "ot", "sketch", "solvers", "svd")


def __getattr__(name: str) -> Any:
    """Import a family on first use (PEP 562)."""
    if name in _FAMILIES:
        return importlib.import_module(f"linalg.{name}")
    raise AttributeError(f"module 'linalg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_FAMILIES})
