"""Krylov solvers and preconditioners.

Solvers return a :class:`linalg.SolveResult`; preconditioners return an
:class:`~linalg._core.operators.Operator` that applies an approximation of
``A⁻¹`` and plugs into any solver's ``M=`` (or SciPy's, through
``as_linear_operator()``).
"""

from linalg.solvers.cg import cg
from linalg.solvers.jacobi import jacobi

__all__ = ["cg", "jacobi"]
