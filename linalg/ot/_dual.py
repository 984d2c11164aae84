"""The entropic dual and the reference kernels every OT solver shares.

In scaled potentials ``u = f / ε``, ``v = g / ε`` and scaled cost ``K = C / ε``
the dual (to maximize) is

    D(u, v) = ε (⟨u, a⟩ + ⟨v, b⟩ − Σ_ij exp(u_i + v_j − K_ij)),

the plan is ``P_ij = exp(u_i + v_j − K_ij)`` and the gradient of ``D / ε`` is
``(a − P1, b − Pᵀ1)``. The kernels are registered as ``"ot.kernels"``: the
NumPy reference here, the Numba engine in :mod:`linalg.ot._numba` and the
CuPy engine in :mod:`linalg.ot._cupy` (``cuda/ot.cu``), with the same
signatures.
"""

from __future__ import annotations

import numpy as np

from linalg._core.engines import register

__all__ = ["REFERENCE_KERNELS", "dual_value", "marginal_errors"]

register("ot.kernels", "reference", "linalg.ot._dual:REFERENCE_KERNELS")
register("ot.kernels", "numba", "linalg.ot._numba:NUMBA_KERNELS")
register("ot.kernels", "cupy", "linalg.ot._cupy:CUPY_KERNELS", libraries=("cupy",))


class _ReferenceKernels:
    """NumPy: each pass over the cost is a few vectorized NumPy calls."""

    @staticmethod
    def lse(K: np.ndarray, x: np.ndarray, ks: np.ndarray, out: np.ndarray) -> None:
        """``out[k, i] = log Σ_j exp(x[k, j] − K[k, i, j])`` for ``k`` in ``ks``.

        ``K`` is ``(1, r, c)`` (shared by the batch) or ``(batch, r, c)``;
        the maximum over ``j`` is subtracted before ``exp`` (no overflow).
        """
        Kk = K if K.shape[0] == 1 else K[ks]
        Z = x[ks, None, :] - Kk
        top = Z.max(axis=2, keepdims=True)
        Z -= top
        np.exp(Z, out=Z)
        out[ks] = top[:, :, 0] + np.log(Z.sum(axis=2))

    @staticmethod
    def plan(K: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """The dense plan ``exp(u_i + v_j − K_ij)`` of one problem, ``K`` of shape ``(n, m)``."""
        P = u[:, None] + v[None, :] - K
        return np.exp(P, out=P)

    @staticmethod
    def sparsify(P: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        """CSR arrays ``(indptr, indices, data)`` of the entries ``P_ij >= theta_i``."""
        keep = theta[:, None] <= P
        rows, cols = np.nonzero(keep)
        indptr = np.zeros(P.shape[0] + 1, dtype=np.int64)
        np.cumsum(keep.sum(axis=1), out=indptr[1:])
        return indptr, cols.astype(np.int64), P[rows, cols]


REFERENCE_KERNELS = _ReferenceKernels()


def marginal_errors(
    kernels,
    K: np.ndarray,
    KT: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
) -> np.ndarray:
    """L1 error of both marginals per batch member, from the potentials (two lse passes)."""
    ks = np.arange(u.shape[0])
    rows, cols = np.empty_like(u), np.empty_like(v)
    kernels.lse(K, v, ks, rows)
    kernels.lse(KT, u, ks, cols)
    with np.errstate(invalid="ignore"):
        row_mass = np.exp(u + rows)
        col_mass = np.exp(v + cols)
    return np.abs(row_mass - a).sum(axis=1) + np.abs(col_mass - b).sum(axis=1)


def dual_value(u: np.ndarray, v: np.ndarray, a: np.ndarray, b: np.ndarray, mass: float) -> float:
    """``D / ε = ⟨u, a⟩ + ⟨v, b⟩ − mass`` (zero-mass entries, where ``u = −∞``, skipped)."""
    linear = np.dot(u[a > 0], a[a > 0]) + np.dot(v[b > 0], b[b > 0])
    return float(linear) - mass
