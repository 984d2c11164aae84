"""Krylov solvers and preconditioners.

Solvers return a :class:`linalg.SolveResult`; preconditioners return an
:class:`~linalg._core.operators.Operator` that applies an approximation of
``A⁻¹`` and plugs into any solver's ``M=`` (or SciPy's, through
``as_linear_operator()``).
"""

from linalg.solvers._cg import cg
from linalg.solvers._gmres import gmres
from linalg.solvers._ichol import IncompleteCholesky, ichol
from linalg.solvers._jacobi import DiagonalOperator, jacobi
from linalg.solvers._lsqr import lsqr
from linalg.solvers._minres import minres

__all__ = [
    "DiagonalOperator",
    "IncompleteCholesky",
    "cg",
    "gmres",
    "ichol",
    "jacobi",
    "lsqr",
    "minres",
]
