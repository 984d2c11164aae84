"""Randomized SVD (subspace iteration, block Krylov, block Lanczos, to a
tolerance) and truncated SVDs that follow a changing matrix."""

from linalg.svd._randomized import randomized_svd
from linalg.svd._result import SVDResult
from linalg.svd._truncated import TruncatedSVD

__all__ = ["SVDResult", "TruncatedSVD", "randomized_svd"]
