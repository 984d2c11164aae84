"""The part of new vectors ``Z`` outside a basis ``X``: ``Z = X H + Q R``.

Every update of a truncated SVD meets new vectors ``Z`` (``Eᵀ`` for appended
rows, ``E`` for appended columns, ``B`` and ``C`` for ``A + B Cᵀ``) that
must be split into ``H = XᵀZ`` (``k x p``), inside the current basis, and
an orthonormal ``Q`` (``rows x r``, ``Q ⟂ X``) with ``R`` (``r x p``),
outside it. Three ways:

- :func:`dense_complement` (Zha–Simon, Brand): ``C = Z − X H`` formed,
  projected twice ("twice is enough"), Householder QR.
  ``O(rows k p + rows p²)``.
- :func:`sparse_complement` (after Deng et al., ICLR 2024): ``Q`` is never
  formed. With ``J`` the rows where ``Z`` is non-zero, ``C[J] = Z[J] − X[J] H``
  and ``C[J̄] = −X[J̄] H``, so
  ``CᵀC = C[J]ᵀC[J] + Hᵀ(XᵀX − X[J]ᵀX[J])H = WᵀW`` with
  ``W = [C[J]; Θ^½ Pᵀ H]`` and ``XᵀX − X[J]ᵀX[J] = P Θ Pᵀ`` (``k x k``).
  The R factor is that of a pivoted QR of ``W`` (``(|J| + k) x p``): the
  same as ``C``'s, without forming ``EEᵀ − (EV)(EV)ᵀ``, whose cancellation
  would square the condition number. ``Q = C T`` with
  ``T = Π[:, :r] R₁₁⁻¹`` is applied implicitly by
  :meth:`~linalg.svd._update_side.Side.rotate_sparse`.
  ``O(nnz(Z) + |J| p (k + p) + k³)``; nothing of size ``rows``.
- :func:`krylov_complement`: ``Q`` spans a randomized range finder with
  power steps (a block Krylov space) of ``C`` weighted by the other factor,
  ``q`` columns instead of ``p``: an approximation, exact when that
  operator has rank ``≤ q``.

In the sparse method, directions of ``C`` with
``|Rᵢᵢ| ≤ max(rows, p) · eps · ‖Z‖_F`` are rounding noise and are dropped
(``r`` may be 0), since ``R₁₁`` is inverted.

Off the host (``side.place``), ``Z``, ``Q`` and every product with ``X`` stay
on the device; ``H`` and ``R`` come to the host. The sparse method's pivoted
QR (not in the array API) then runs on ``[R_J; Θ^½ Pᵀ H]`` with ``R_J`` the R
factor of a device QR of ``C[J]``: the same R (up to the signs of its rows),
since the pivots and R of a pivoted QR depend on ``W`` only through ``WᵀW``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from linalg._core.namespace import Placement
from linalg.svd._update_side import Side, thin_qr

__all__ = ["Complement", "dense_complement", "krylov_complement", "sparse_complement"]


@dataclass(frozen=True)
class Complement:
    """``Z = X H + Q R`` with ``Q ⟂ X`` orthonormal; ``rotate`` applies ``X ← X Y1 + Q Y2``.

    Attributes
    ----------
    H : numpy.ndarray, shape (k, p)
    R : numpy.ndarray, shape (r, p)
    Q : array or None
        ``(rows, r)`` when formed (dense and Krylov methods), where ``X`` lives.
    rows, Z_rows : array or None
        The sparse method's touched rows ``J`` (host indices, or a device row
        mask) and ``Z[J]`` dense, where ``X`` lives.
    R11, perm : numpy.ndarray or None
        The sparse method's leading triangle of the pivoted R factor and the
        pivot order.
    """

    H: np.ndarray
    R: np.ndarray
    Q: Any = None
    rows: Any = None
    Z_rows: Any = None
    R11: np.ndarray | None = None
    perm: np.ndarray | None = None

    @property
    def rank(self) -> int:
        return self.R.shape[0]

    def rotate(self, side: Side, Y1: np.ndarray, Y2: np.ndarray) -> None:
        """``X ← X Y1 + Q Y2`` for ``Y1`` ``(k, k)`` and ``Y2`` ``(r, k)``."""
        if self.Q is not None:
            side.rotate_dense(Y1, self.Q, Y2)
            return
        if self.rank == 0:
            side.rotate(Y1)
            return
        TY2 = np.zeros((self.H.shape[1], Y2.shape[1]), Y2.dtype)  # T Y2 = Π[:, :r] R₁₁⁻¹ Y2
        TY2[self.perm[: self.rank]] = scipy.linalg.solve_triangular(self.R11, Y2)
        side.rotate_sparse(Y1, Y2, H=self.H, TY2=TY2, rows=self.rows, Z_rows=self.Z_rows)


def as_dense(Z: Any) -> Any:
    return Z.toarray() if sp.issparse(Z) else Z


def frobenius(Z: Any, place: Placement) -> float:
    if place.on_host:
        return float(np.linalg.norm(Z.data if sp.issparse(Z) else Z))
    return float(place.xp.linalg.vector_norm(Z))


def _pivoted_r(M: np.ndarray, scale: float, size: int):
    """The R factor of a pivoted QR of ``M`` (``M Π = Q R``) cut at the numerical rank.

    Returns ``R[:r]`` in the original column order, the leading ``r x r``
    triangle and the pivot order.
    """
    R, perm = scipy.linalg.qr(M, mode="r", pivoting=True)
    tol = size * np.finfo(M.dtype).eps * scale
    r = int(np.count_nonzero(np.abs(np.diag(R)) > tol))
    R_orig = np.empty((r, M.shape[1]), M.dtype)
    R_orig[:, perm] = R[:r]
    return R_orig, R[:r, :r], perm


def dense_complement(side: Side, Z: Any) -> Complement:
    """The exact complement: ``C`` formed, projected off ``X`` twice, Householder QR.

    No rank cut is needed here: a direction of ``C`` at rounding level gets
    a tiny ``Rᵢᵢ``, and its weight in the new singular vectors is of the
    order ``Rᵢᵢ / s_k``, so its arbitrary ``Q`` column does no harm.
    """
    place = side.place
    X, Zd = side.form(), as_dense(Z)
    H = X.T @ Zd
    C = Zd - X @ H
    H2 = X.T @ C
    C -= X @ H2
    Q, R = thin_qr(C, place)
    return Complement(place.host(H + H2), R, Q=Q)


def _touched_rows(Z: Any, place: Placement) -> tuple[Any, Any]:
    """The rows ``J`` where ``Z`` has non-zeros (indices on the host, a mask on a
    device), and ``Z[J]`` as a dense array."""
    if sp.issparse(Z):
        Z = sp.csr_array(Z)
        rows = np.flatnonzero(np.diff(Z.indptr))
        return rows, Z[rows].toarray()
    touched = place.xp.any(Z != 0, axis=1)
    rows = np.flatnonzero(touched) if place.on_host else touched
    return rows, Z[rows]


def _host_triangle(C: Any, place: Placement) -> np.ndarray:
    """``C`` on the host, or the R factor of its QR when it is a tall device block:
    either has the R factor of ``C`` in a pivoted QR."""
    if place.on_host or C.shape[0] <= C.shape[1]:
        return place.host(C)
    return thin_qr(C, place)[1]


def sparse_complement(side: Side, Z: Any) -> Complement:
    """The exact complement without forming ``Q`` (see the module notes)."""
    place = side.place
    rows, Z_rows = _touched_rows(Z, place)
    X_rows = side.basis[rows] @ place.put(side.K)
    H = place.host(X_rows.T @ Z_rows)
    rest = side.K.T @ side.gram() @ side.K - place.host(X_rows.T @ X_rows)  # X[J̄]ᵀX[J̄]
    theta, P = np.linalg.eigh((rest + rest.T) / 2)
    C_rows = _host_triangle(Z_rows - X_rows @ place.put(H), place)
    W = np.vstack([C_rows, np.sqrt(np.clip(theta, 0, None))[:, None] * (P.T @ H)])
    R, R11, perm = _pivoted_r(W, frobenius(Z, place), max(side.rows, Z_rows.shape[1]))
    return Complement(H, R, rows=rows, Z_rows=Z_rows, R11=R11, perm=perm)


def krylov_complement(side: Side, Z: Any, start: Any, weight: Any, n_iter: int) -> Complement:
    """An approximate complement by randomized subspace iteration on ``C W Cᵀ``.

    ``C = Z − X H``; ``Q`` is an orthonormal basis of ``(C W Cᵀ)^n_iter C S``
    (``W = I`` when ``weight`` is None, ``S = start``, ``p x q``), each block
    projected off ``X`` and orthonormalized, twice. ``R = QᵀZ``
    (Rayleigh–Ritz), so the update is exact when ``C W^½`` has rank ``≤ q``.
    ``start`` and ``weight`` live where ``X`` does.
    """
    place = side.place
    X = side.form()
    H = (Z.T @ X).T

    def orthonormal_complement(Y):
        # projected and orthonormalized twice: the columns QR makes out of
        # rounding noise (when C has rank < q) must end up ⟂ X as well
        for _ in range(2):
            Y = place.xp.linalg.qr(Y - X @ (X.T @ Y))[0]
        return Y

    Q = orthonormal_complement(Z @ start - X @ (H @ start))
    for _ in range(n_iter):
        CtQ = Z.T @ Q - H.T @ (X.T @ Q)
        S = CtQ if weight is None else weight @ CtQ
        Q = orthonormal_complement(Z @ S - X @ (H @ S))
    return Complement(place.host(H), place.host((Z.T @ Q).T), Q=Q)
