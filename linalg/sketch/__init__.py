"""Sketching: reproducible sketch operators, leverage and ridge-leverage scores,
Nyström approximation and preconditioning, sketch-and-precondition least squares.

Every sketch is a :class:`SketchOperator` defined by its seed: the same ``rng``
gives the same matrix on every engine, and blocks of columns can be applied
separately (``S @ A == S[:, :m] @ A[:m] + S[:, m:] @ A[m:]``).
"""

from linalg.sketch._dense_sketches import gaussian, rademacher
from linalg.sketch._leverage import leverage_scores
from linalg.sketch._lstsq import sketched_lstsq
from linalg.sketch._nystrom import (
    NystromApproximation,
    NystromPreconditioner,
    nystrom,
    nystrom_preconditioner,
)
from linalg.sketch._operator import SketchOperator, TransposedSketch
from linalg.sketch._ridge_leverage import RBFKernel, rbf_kernel, ridge_leverage_scores
from linalg.sketch._sampling import RowSamplingSketch, row_sampling
from linalg.sketch._sparse_sketches import countsketch, sparse_sign
from linalg.sketch._srht import SRHTSketch, srht

__all__ = [
    "NystromApproximation",
    "NystromPreconditioner",
    "RBFKernel",
    "RowSamplingSketch",
    "SRHTSketch",
    "SketchOperator",
    "TransposedSketch",
    "countsketch",
    "gaussian",
    "leverage_scores",
    "nystrom",
    "nystrom_preconditioner",
    "rademacher",
    "rbf_kernel",
    "ridge_leverage_scores",
    "row_sampling",
    "sketched_lstsq",
    "sparse_sign",
    "srht",
]
