"""What K-FAC and EK-FAC share: factors, validation, lazy factorizations, plumbing."""

from __future__ import annotations

from typing import Any

from linalg._core.engines import select
from linalg._core.namespace import NUMPY, check_lives_with, common_kind, namespace_of, to_caller
from linalg._core.operators import check_host_data
from linalg._core.validate import result_dtype
from linalg.kron._products import (
    astype,
    check_damping,
    check_matrices,
    inverse_operator,
    symmetric_factor,
)

__all__ = ["KroneckerFactored"]


class KroneckerFactored:
    """What K-FAC and EK-FAC share: factors, validation, lazy factorizations, plumbing.

    Subclasses set ``_operation`` and implement ``_factorize`` (the cached
    pieces), ``_solve``, ``_matvec`` and ``_logdet`` on the factors' arrays:
    NumPy for host data, else the factors' own library (``self.xp``) on their
    device.
    """

    _operation: str

    def __init__(self, A: Any, G: Any, damping: float, engine: str | None) -> None:
        self.damping = check_damping(damping)
        self._engine = engine
        self.update(A, G)

    def update(self, A: Any, G: Any) -> KroneckerFactored:
        """Replace the factors; the factorizations are recomputed on next use."""
        kind = common_kind(A, G)
        A = symmetric_factor(A, "A", anywhere=True)
        G = symmetric_factor(G, "G", anywhere=True)
        dtype = result_dtype(A.dtype, G.dtype)
        where = kind if kind.via_namespace else NUMPY
        implementation = select(self._operation, engine=self._engine, kind=where, dtype=dtype)
        self._kernels = implementation.load()
        self.engine = implementation.engine
        self.A, self.G, self.dtype, self._kind = astype(A, dtype), astype(G, dtype), dtype, kind
        self.xp = namespace_of(self.A)
        self.dim_in, self.dim_out = A.shape[0], G.shape[0]
        self._cache = None
        return self

    @property
    def _pieces(self) -> Any:
        if self._cache is None:
            self._cache = self._factorize()
        return self._cache

    def solve(self, V: Any) -> Any:
        """The damped inverse applied to ``V``, shape ``(out, in)`` or ``(k, out, in)``."""
        return self._public(V, self._solve)

    def matvec(self, V: Any) -> Any:
        """The undamped approximate Fisher applied to ``V`` (``(out, in)`` or batched)."""
        return self._public(V, self._matvec)

    def logdet(self) -> float:
        """``log det`` of the damped matrix whose inverse :meth:`solve` applies."""
        return float(self._logdet())

    def as_linear_operator(self):
        """The inverse as a SciPy LinearOperator on column-major ``vec(V)`` (``V.T.ravel()``)."""
        check_host_data(self._kind, "host factors", "use solve() on the device")
        return inverse_operator(self._solve, (self.dim_out, self.dim_in), self.dtype)

    def _public(self, V: Any, apply) -> Any:
        check_lives_with(V, "V", self._kind, "the factors")
        kind = common_kind(V)
        V = check_matrices(V, "V", (self.dim_out, self.dim_in), anywhere=True)
        dtype = result_dtype(self.dtype, V.dtype)
        Y = astype(apply(astype(V, self.dtype)), dtype)
        return to_caller(Y, self._kind if kind == NUMPY else kind)
