"""Conjugate gradients for symmetric positive definite systems, with many
right-hand sides solved together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from linalg._core.engines import register, select
from linalg._core.namespace import NUMPY, array_kind
from linalg._core.operators import Operator
from linalg._core.results import LinAlgError, SolveResult
from linalg._core.validate import check_int
from linalg.solvers._common import (
    LinearSystem,
    callback_caller,
    check_options,
    check_residual_finite,
    column_norms,
    finish,
    prepare_system,
)

__all__ = ["cg"]

register("solvers.cg", "reference", "linalg.solvers._cg:NumpyCGKernels")
register("solvers.cg", "numba", "linalg.solvers._cg_numba:NumbaCGKernels")


class NumpyCGKernels:
    """The reference engine's vector operations for CG (one pass per NumPy call)."""

    @staticmethod
    def prepare(A: Operator) -> Operator:
        """The operator in the form the kernels read (here: as it is)."""
        return A

    @staticmethod
    def matmul_dot(A: Operator, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``Q = A P`` and the column dots ``pᵀ q``."""
        Q = A.matmat(P)
        return Q, np.einsum("ij,ij->j", P, Q, dtype=np.float64)

    @staticmethod
    def column_dots(R: np.ndarray, Z: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->j", R, Z, dtype=np.float64)

    @staticmethod
    def update_solution(
        X: np.ndarray, R: np.ndarray, P: np.ndarray, Q: np.ndarray, alpha: np.ndarray
    ) -> np.ndarray:
        """``X += alpha P``, ``R -= alpha Q`` in place; return ``||R||²`` per column."""
        alpha = alpha.astype(X.dtype)
        X += P * alpha
        R -= Q * alpha
        return np.einsum("ij,ij->j", R, R, dtype=np.float64)

    @staticmethod
    def update_direction(P: np.ndarray, Z: np.ndarray, beta: np.ndarray) -> None:
        """``P = Z + beta P`` in place."""
        P *= beta.astype(P.dtype)
        P += Z


def cg(
    A: Any,
    b: Any,
    *,
    x0: Any = None,
    rtol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    M: Any = None,
    callback: Callable | None = None,
    check_every: int = 1,
    warn: bool = True,
    engine: str | None = None,
) -> SolveResult:
    """Solve ``A x = b`` for symmetric positive definite ``A`` by conjugate gradients.

    With ``b`` of shape ``(n, k)`` the ``k`` systems are solved together: one
    product ``A @ P`` of ``A`` with a block per iteration, and vector updates
    fused over the block. Each column stops on its own test and is reported
    on its own; converged columns leave the block.

    Parameters
    ----------
    A : array_like, sparse matrix, LinearOperator or callable
        The SPD matrix, ``(n, n)``. A callable ``v -> A v`` receives vectors
        of the caller's array type (a torch closure gets torch tensors).
    b : array_like, shape (n,) or (n, k)
        Right-hand side(s). NumPy, or torch / JAX tensors on the CPU. A CuPy
        array or GPU tensor (or an array of another array-API library) is
        solved where it lives, with ``A`` and ``M`` dense arrays of the same
        library, cupyx sparse matrices, callables or Operators whose products
        take its blocks (such as ``jacobi`` of a device matrix): every
        quantity stays on the device, converged columns are frozen in the
        block rather than removed, and the host looks at the residuals only
        every ``check_every`` iterations (see Notes).
    x0 : array_like, optional
        Starting guess, shaped like ``b`` (default zeros).
    rtol, atol : float
        Column ``j`` has converged when
        ``||b_j - A x_j|| <= max(rtol * ||b_j||, atol)``.
    maxiter : int, optional
        Iteration limit (default ``10 n``).
    M : array_like, sparse matrix, LinearOperator, callable or Operator, optional
        Preconditioner, an SPD approximation of ``A⁻¹`` (for example
        :func:`linalg.solvers.ichol` or :func:`linalg.solvers.jacobi`).
    callback : callable, optional
        Called after every iteration with the current iterate, in the caller's
        array type and shape.
    check_every : int
        Test for convergence every this many iterations (the residual norms
        come from the fused update, so testing is cheap on the CPU; on a
        device each test is a host synchronization, and a column may then run
        up to ``check_every - 1`` iterations past its tolerance).
    warn : bool
        Emit :class:`linalg.ConvergenceWarning` if a column did not converge.
    engine : {"auto", "reference", "numba"}, optional
        Engine for the vector updates (see :func:`linalg.engines`).

    Returns
    -------
    SolveResult
        ``x``, ``converged``, ``n_iter``, ``residual_norm`` (the recursively
        updated ``||b - A x||``), ``history`` (residual norms after every
        iteration) and ``info`` (``engine``).

    Raises
    ------
    linalg.LinAlgError
        If ``A`` (or ``M``) is found not positive definite, or the residual
        becomes non-finite (an operator returned NaN or Inf).

    Notes
    -----
    On device data, a non-positive curvature ``pᵀAp`` (or a NaN) is found at
    the next test rather than at once, and the ``LinAlgError`` says "at or
    before" that iteration. ``engine`` may then only be "auto" or
    "reference": the iteration is array-API code run by the data's library.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.solvers import cg
    >>> A = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> res = cg(A, np.array([1.0, 2.0]), rtol=1e-10)
    >>> res.converged, np.allclose(A @ res.x, [1.0, 2.0])
    (True, True)

    Several right-hand sides at once:

    >>> B = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> res = cg(A, B, rtol=1e-10)
    >>> res.converged
    array([ True,  True])
    """
    check_options(rtol=rtol, atol=atol, maxiter=maxiter, callback=callback, warn=warn)
    check_int(check_every, "check_every", low=1)
    if array_kind(b).via_namespace:
        from linalg.solvers._cg_device import device_cg

        options = {"x0": x0, "rtol": rtol, "atol": atol, "maxiter": maxiter, "M": M}
        options |= {"callback": callback, "check_every": check_every, "warn": warn}
        return device_cg(A, b, **options, engine=engine)
    system = prepare_system(A, b, x0=x0, M=M)
    impl = select("solvers.cg", engine=engine, kind=NUMPY, dtype=system.dtype)
    n = system.A.shape[0]
    maxiter = 10 * n if maxiter is None else maxiter
    X, converged, n_iter, rnorm, history = _iterate(
        system,
        impl.load(),
        rtol=rtol,
        atol=atol,
        maxiter=maxiter,
        check_every=check_every,
        callback=callback_caller(callback, system),
    )
    return finish(
        system,
        X,
        converged=converged,
        n_iter=n_iter,
        residual_norm=rnorm,
        history=history,
        info={"engine": impl.engine},
        warn=warn,
        solver="cg",
    )


def _iterate(
    system: LinearSystem,
    kernels: Any,
    *,
    rtol: float,
    atol: float,
    maxiter: int,
    check_every: int,
    callback: Callable | None,
) -> tuple[np.ndarray, ...]:
    A, B, M = kernels.prepare(system.A), system.B, system.M
    k = B.shape[1]
    if system.X0 is None:
        X = np.zeros(B.shape, dtype=B.dtype)
        R = np.array(B, order="C")
    else:
        X = np.array(system.X0, dtype=B.dtype, order="C")
        R = np.ascontiguousarray(B - A.matmat(X))
    target = np.maximum(rtol * column_norms(B), atol)
    rnorm = column_norms(R)
    converged = rnorm <= target
    n_iter = np.zeros(k, dtype=np.int64)
    history = [rnorm.copy()]

    active = np.flatnonzero(~converged)
    Xa, Ra = np.ascontiguousarray(X[:, active]), np.ascontiguousarray(R[:, active])
    Za = Ra if M is None else _precondition(M, Ra)
    rz = kernels.column_dots(Ra, Za)
    Pa = np.array(Za, order="C")
    iteration = 0
    while active.size and iteration < maxiter:
        iteration += 1
        Q, pq = kernels.matmul_dot(A, Pa)
        _check_definite(pq, "A", iteration)
        rr = kernels.update_solution(Xa, Ra, Pa, Q, rz / pq)
        check_residual_finite(rr, iteration, "cg")
        rnorm[active] = np.sqrt(rr)
        n_iter[active] = iteration
        history.append(rnorm.copy())
        if callback is not None:
            X[:, active] = Xa
            callback(X)
        testing = iteration % check_every == 0 or iteration == maxiter
        done = (rnorm[active] <= target[active]) if testing else (rr == 0.0)
        if done.any():
            X[:, active[done]] = Xa[:, done]
            converged[active[done]] = True
            keep = ~done
            active = active[keep]
            Xa, Ra, Pa = (np.ascontiguousarray(Y[:, keep]) for Y in (Xa, Ra, Pa))
            rz, rr = rz[keep], rr[keep]
            if not active.size:
                break
        if M is None:
            Za, rz_new = Ra, rr
        else:
            Za = _precondition(M, Ra)
            rz_new = kernels.column_dots(Ra, Za)
            _check_definite(rz_new, "M", iteration)
        kernels.update_direction(Pa, Za, rz_new / rz)
        rz = rz_new
    X[:, active] = Xa
    return X, converged, n_iter, rnorm, np.array(history)


def _precondition(M: Operator, R: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(M.matmat(R), dtype=R.dtype)


def _check_definite(values: np.ndarray, name: str, iteration: int) -> None:
    bad = ~(values > 0.0)
    if bad.any():
        value = float(values[bad][0])
        if not np.isfinite(value):
            raise LinAlgError(
                f"cg: a non-finite value appeared at iteration {iteration}; "
                f"the operator {name} returned NaN or Inf"
            )
        raise LinAlgError(
            f"cg: {name} is not positive definite (a curvature pᵀ{name}p = {value:.3g} <= 0 "
            f"at iteration {iteration}); use minres for symmetric indefinite systems"
        )
