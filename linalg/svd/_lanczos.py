"""Block Golub–Kahan–Lanczos with one-sided reorthogonalization, for
``randomized_svd(method="lanczos")``.

The iteration runs on ``B``, which is ``A`` when ``A`` is tall and ``Aᵀ``
when it is wide, so that ``B`` (``M × N``, ``M >= N``) has the short side on
the right. Starting from an orthonormal block ``Q₁`` of ``N``-vectors:

- ``B Q_j = P_{j-1} S_{j-1}ᵀ + P_j α_j``: the three-term recurrence, with
  ``P_j`` orthonormalized by CholeskyQR but not against earlier blocks (the
  ``M``-vectors are never kept), so ``B Q = P T`` with ``T`` block upper
  bidiagonal;
- ``Bᵀ P_j = Q c_j`` (``c_j`` ends with ``S_j`` for ``Q_{j+1}``): the new
  block is orthonormalized against every kept block (full
  reorthogonalization, on the short side only).

This is Simon and Zha's one-sided scheme: with ``Q`` orthonormal the Ritz
vectors ``Q y`` stay orthonormal, so the loss of orthogonality among the
``P_j`` cannot produce spurious copies of converged values, and the
reorthogonalization costs ``O(N)`` instead of ``O(M + N)`` per kept vector.
Ritz triplets come from ``svd(T)``; the residual ``||Bᵀ P x - σ Q y||`` of a
triplet is ``||C x - σ y||`` from the recorded coefficients ``C``, at no extra
pass. When the ``k`` wanted residuals are below the tolerance, a final
Rayleigh–Ritz step on ``B V_k`` (``V_k = Q Y_k``: one pass with ``k``
columns) gives orthonormal left vectors and the singular values, and one
pass with ``Bᵀ`` measures the true residuals ``||Bᵀ u - σ v||``: the result
is reported converged only when they meet the tolerance too (else the
iteration goes on).

References
----------
H. D. Simon and H. Zha, "Low-rank matrix approximation using the Lanczos
bidiagonalization process with applications", SIAM J. Sci. Comput. 21 (2000).
J. Baglama and L. Reichel, "Augmented implicitly restarted Lanczos
bidiagonalization methods", SIAM J. Sci. Comput. 27 (2005).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla

from linalg._core.namespace import HOST, Placement
from linalg._core.operators import Operator
from linalg.svd._basis import Basis, _orthonormalize, column_norms

__all__ = ["LanczosOutcome", "lanczos_svd"]


@dataclass
class LanczosOutcome:
    """The ``k`` triplets of ``A`` (``U``, ``Vt`` where ``place`` says, ``s`` on
    the host) and how they were reached."""

    U: Any
    s: np.ndarray
    Vt: Any
    tail: float  # σ_{k+1} of the last projection (0 when none is known)
    residual: float  # max true residual ||Aᵀu - σv|| or ||A v - σ u|| over the k triplets
    passes: int
    steps: int
    block: int
    converged: bool
    stop: str
    probe_images: Any  # A ω for the probes, from a product merged with a final pass


class _Side:
    """``B`` and ``Bᵀ`` products of ``A`` (``B = A`` when tall, ``Aᵀ`` when wide)."""

    def __init__(self, op: Operator, place: Placement) -> None:
        self.op, self.place = op, place
        self.tall = op.shape[0] >= op.shape[1]
        self.passes = 0

    def forward(self, X: Any) -> Any:
        """``B X``."""
        return self._product(self.op.matmat if self.tall else self.op.rmatmat, X)

    def backward(self, X: Any) -> Any:
        """``Bᵀ X``."""
        return self._product(self.op.rmatmat if self.tall else self.op.matmat, X)

    def _product(self, product: Any, X: Any) -> Any:
        """A fresh copy of ``product(X)``; on the host in the order it came
        (C order from SciPy's sparse kernels, which also read C order best)."""
        self.passes += 1
        if self.place.on_host:
            return np.array(product(X), dtype=self.op.dtype, copy=True)
        return self.place.copy(product(X), self.op.dtype)

    def forward_with_probes(self, X: Any, probes: Any, *, forward: bool) -> tuple[Any, Any]:
        """``B X`` (``forward``) or ``Bᵀ X``, with ``A ω`` for the probes in the
        same product when that product is with ``A``."""
        with_a = forward == self.tall
        if not with_a:
            return (self.forward(X) if forward else self.backward(X)), None
        place = self.place
        both = place.xp.concat([X, probes], axis=1)
        if place.on_host:
            both = np.asfortranarray(both)
        out = self.forward(both) if forward else self.backward(both)
        b = X.shape[1]
        return out[:, :b], out[:, b:]


def lanczos_svd(
    op: Operator,
    start: Any,
    k: int,
    *,
    max_blocks: int,
    probes: Any,
    place: Placement = HOST,
) -> LanczosOutcome:
    """The ``k`` leading triplets of ``op`` by one-sided block Lanczos.

    Parameters
    ----------
    op : Operator
    start : array, shape (n, b)
        The first block ``Ω`` (where ``place`` says): ``Q₁ = orth(Ω)`` when
        ``A`` is tall, ``orth(A Ω)`` when it is wide.
    k : int
        Wanted triplets.
    max_blocks : int
        Most blocks the kept basis may hold (its ``N`` rows times
        ``max_blocks · b`` columns); the iteration stops unconverged there.
    probes : array, shape (n, p)
        Gaussian probes whose images ``A ω`` are computed along the final passes.
    place : Placement
    """
    side = _Side(op, place)
    dtype = np.dtype(op.dtype)
    N = min(op.shape)  # the short side
    b = start.shape[1]
    rtol = math.sqrt(np.finfo(dtype).eps)
    capacity = min((max_blocks + 1) * b, N)
    Q = Basis(N, capacity, dtype, place)
    first = place.copy(start, dtype) if side.tall else side.backward(place.copy(start, dtype))
    Q.extend(first)
    # T: B Q_{1:J} = P_{1:J} T ; C: Bᵀ P_{1:J} = Q_{1:J+1} C.
    T = np.zeros((capacity, capacity), dtype=dtype)
    C = np.zeros((capacity, capacity), dtype=dtype)
    P = _local(side.forward(Q.columns), None, None, T, 0, place)
    steps, converged = 0, False
    outcome = None
    while True:
        J = steps + 1  # blocks of P (and of T's columns)
        dim = J * b
        if Q.room < b:  # no room for Q_{J+1}: the kept basis is full
            outcome = _final(side, Q, T, dim, k, probes)
            exhausted = Q.size >= N  # Q spans the whole space: the Ritz values are exact
            converged = exhausted or outcome.residual <= rtol * outcome.s[0]
            break
        c = Q.extend(side.backward(P))
        C[: Q.size, dim - b : dim] = c
        outcome = None
        if dim >= k:
            X, s, Y = _ritz(T, dim)
            estimated = C[: Q.size, :dim] @ X[:, :k] - _pad(Y[:, :k] * s[:k], Q.size)
            if float(np.max(np.linalg.norm(estimated, axis=0))) <= rtol * s[0]:
                outcome = _final(side, Q, T, dim, k, probes)
                if outcome.residual <= rtol * outcome.s[0]:
                    converged = True
                    break
        if steps + 1 >= max_blocks:
            if outcome is None:
                outcome = _final(side, Q, T, dim, k, probes)
            converged = outcome.residual <= rtol * outcome.s[0]
            break
        W = side.forward(Q.columns[:, dim:])
        P = _local(W, P, c[dim:], T, dim, place)
        steps += 1
    outcome.passes, outcome.steps, outcome.block = side.passes, steps, b
    outcome.converged = converged
    outcome.stop = "Lanczos converged" if converged else "Lanczos not converged"
    return outcome


def _local(W: Any, P: Any, S: np.ndarray | None, T: np.ndarray, col: int, place: Placement) -> Any:
    """The next long block from ``W = B Q_{j+1}``: ``W - P_j S_jᵀ`` (the three-term
    recurrence; ``Bᵀ P_j = ... + Q_{j+1} S_j``), orthonormalized by CholeskyQR
    twice. Records ``S_jᵀ`` and ``α_{j+1}`` in ``T``'s columns ``col : col + b``."""
    b = W.shape[1]
    if P is not None:
        W -= P @ place.put(np.ascontiguousarray(S.T))
        T[col - b : col, col : col + b] = S.T
    block, R1 = _cholesky_qr(W, place)
    block, R2 = _cholesky_qr(block, place)
    T[col : col + b, col : col + b] = R2 @ R1
    return block


def _cholesky_qr(W: Any, place: Placement) -> tuple[Any, np.ndarray]:
    """``W = Q R`` by CholeskyQR with ``Q = W R⁻¹`` in ``W``'s memory order,
    else as :class:`Basis` does it (Householder QR when the Gram matrix is not
    safely positive definite)."""
    gram = place.host(W.T @ W)
    try:
        L = np.linalg.cholesky(gram)
    except np.linalg.LinAlgError:
        L = None
    diagonal = np.diag(L) if L is not None else None
    if L is None or diagonal.min() <= math.sqrt(np.finfo(gram.dtype).eps) * diagonal.max() * 1e2:
        Q, R, _ = _orthonormalize(W, place)
        return Q, R
    R = L.T
    inverse = sla.solve_triangular(R, np.eye(R.shape[0], dtype=R.dtype), check_finite=False)
    return W @ place.put(inverse), R


def _ritz(T: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X, s, Yt = sla.svd(
        T[:dim, :dim], full_matrices=False, check_finite=False, lapack_driver="gesdd"
    )
    return X, s, Yt.T


def _pad(Z: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((rows, Z.shape[1]), dtype=Z.dtype)
    out[: Z.shape[0]] = Z
    return out


def _final(side: _Side, Q: Basis, T: np.ndarray, dim: int, k: int, probes: Any) -> LanczosOutcome:
    """Rayleigh–Ritz on ``B V_k`` (``V_k`` the ``k`` leading Ritz vectors of
    ``Q``), then the true residuals ``||Bᵀu - σv||`` (``B v = σ u`` holds by
    construction). The probe images ride along whichever of the two products
    is with ``A``."""
    place = side.place
    dtype = np.dtype(T.dtype)
    _, s_T, Y = _ritz(T, dim)
    V = Q.Q[:, :dim] @ place.put(np.asfortranarray(Y[:, :k]))
    BV, images = side.forward_with_probes(V, probes, forward=True)
    left = Basis(BV.shape[0], k, dtype, place)
    R = left.extend(BV)
    X2, s, W2t = sla.svd(R, full_matrices=False, check_finite=False, lapack_driver="gesdd")
    U = left.columns @ place.put(X2)
    V = V @ place.put(np.ascontiguousarray(W2t.T))
    BtU, more = side.forward_with_probes(U, probes, forward=False)
    images = more if images is None else images
    residual = float(np.max(column_norms(BtU - V * place.put(s.astype(dtype)), place)))
    tail = float(s_T[k]) if k < s_T.size else 0.0
    if side.tall:
        U_A, Vt_A = U, V.T
    else:
        U_A, Vt_A = V, U.T
    return LanczosOutcome(U_A, s, Vt_A, tail, residual, 0, 0, 0, False, "", images)
