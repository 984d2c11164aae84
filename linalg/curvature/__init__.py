"""Inverse-Hessian (inverse-Fisher) vector products and Hutchinson estimators.

``DenseIHVP`` and ``SlidingWindowIHVP`` apply the inverse of a damped
empirical Fisher ``λI + (1/m) Gᵀ G`` through Woodbury's identity (M-FAC's
answers at BLAS-3 cost); ``woodbury`` solves ``D + U C Uᵀ`` systems;
``ihvp_cg`` and ``ihvp_lissa`` work on any Hessian-vector-product callable;
``hutchinson_trace`` and ``hutchinson_diag`` estimate traces and diagonals.
"""

from linalg.curvature._dense import DenseIHVP
from linalg.curvature._hutchinson import hutchinson_diag, hutchinson_trace
from linalg.curvature._matrix_free import ihvp_cg, ihvp_lissa
from linalg.curvature._sliding import SlidingWindowIHVP
from linalg.curvature._woodbury import WoodburySolver, woodbury, woodbury_solve

__all__ = [
    "DenseIHVP",
    "SlidingWindowIHVP",
    "WoodburySolver",
    "hutchinson_diag",
    "hutchinson_trace",
    "ihvp_cg",
    "ihvp_lissa",
    "woodbury",
    "woodbury_solve",
]
