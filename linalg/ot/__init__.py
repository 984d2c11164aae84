"""Entropic optimal transport: log-domain Sinkhorn, Sinkhorn–Newton, Sinkhorn–Newton-Sparse.

All solvers return an :class:`OTResult` holding the dual potentials, with the
plan computed from them on access, and stop on the same measure, the L1 error
of both marginals (:func:`marginal_error`).
"""

from linalg.ot._costs import grid_cost, sqeuclidean_cost
from linalg.ot._newton import sinkhorn_newton
from linalg.ot._result import OTResult, marginal_error
from linalg.ot._sinkhorn import sinkhorn
from linalg.ot._sns import sinkhorn_newton_sparse

__all__ = [
    "OTResult",
    "grid_cost",
    "marginal_error",
    "sinkhorn",
    "sinkhorn_newton",
    "sinkhorn_newton_sparse",
    "sqeuclidean_cost",
]
