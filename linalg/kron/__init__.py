"""Kronecker-factored curvature: K-FAC, EK-FAC, Shampoo and inverse p-th roots,
nearest Kronecker product, rank-one inverse updates, Fisher-weighted SVD.

Builds on ``linalg._core`` alone; the work is BLAS-3, so every routine runs on
the NumPy reference engine.
"""

from linalg.kron._ekfac import EKFAC
from linalg.kron._factors import KFACFactors, kfac_factors
from linalg.kron._fisher_svd import LowRank, fisher_weighted_svd
from linalg.kron._inverse_factor import InverseFactor
from linalg.kron._kfac import KFAC
from linalg.kron._nearest import KronApprox, nearest_kronecker
from linalg.kron._products import kron_matvec, kron_solve
from linalg.kron._roots import matrix_inverse_root
from linalg.kron._shampoo import Shampoo

__all__ = [
    "EKFAC",
    "KFAC",
    "InverseFactor",
    "KFACFactors",
    "KronApprox",
    "LowRank",
    "Shampoo",
    "fisher_weighted_svd",
    "kfac_factors",
    "kron_matvec",
    "kron_solve",
    "matrix_inverse_root",
    "nearest_kronecker",
]
