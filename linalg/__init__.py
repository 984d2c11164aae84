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
sketch, svd, ot (import them as ``linalg.sketch``, ...)
    Sketch operators, leverage scores, Nyström, sketched least squares;
    randomized SVD and truncated-SVD updates; entropic optimal transport
    (log-domain Sinkhorn, Sinkhorn–Newton, Sinkhorn–Newton-Sparse).
"""

from linalg import curvature, kron, solvers
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
    "solvers",
]
