"""Sinkhorn–Newton-Sparse: Sinkhorn warm-up, then Newton steps with a sparsified Hessian."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from linalg._core.dlpack import cupy_bridge
from linalg._core.engines import select
from linalg._core.namespace import to_host
from linalg._core.validate import check_int
from linalg.ot._newton import solve_newton
from linalg.ot._newton_device import device_plan
from linalg.ot._options import check_common
from linalg.ot._problem import Problem, prepare_problem
from linalg.ot._result import OTResult
from linalg.ot._sinkhorn import LogSinkhorn

__all__ = ["sinkhorn_newton_sparse"]

AUTO_MASS = 1e-6  # sparsity="auto": each row drops at most this fraction of its mass
HORIZON = 100  # keep Sinkhorn while it is predicted to converge within this many iterations
MAX_DENSITY = 0.25  # switch only once the kept entries are at most this fraction of the plan
DENSIFY = 1e-2  # a failed step multiplies the mass budget by this (top-k: doubles k)


class RowSparsifier:
    """Per-row sparsification of the plan: a mass budget or the top ``k`` entries.

    Row ``i`` keeps the entries ``P_ij >= θ_i``: for a mass budget ``τ``,
    ``θ_i = τ r_i / m`` (the dropped entries hold at most ``τ r_i``); for
    top-``k``, ``θ_i`` is the row's ``k``-th largest entry
    (:func:`numpy.partition` row by row; ties are kept). No global sort.
    """

    def __init__(self, kernels: Any, sparsity: Any) -> None:
        self.kernels = kernels
        if isinstance(sparsity, str):
            if sparsity != "auto":
                raise ValueError(f"sparsity must be 'auto', a float or an int, got {sparsity!r}")
            self.mass, self.k = AUTO_MASS, None
        elif isinstance(sparsity, numbers.Integral) and not isinstance(sparsity, bool):
            self.mass, self.k = None, check_int(sparsity, "sparsity", low=1)
        elif isinstance(sparsity, numbers.Real) and not isinstance(sparsity, bool):
            if not 0.0 <= float(sparsity) < 1.0:
                raise ValueError(f"sparsity as a mass budget must be in [0, 1), got {sparsity}")
            self.mass, self.k = float(sparsity), None
        else:
            raise TypeError(f"sparsity must be 'auto', a float or an int, got {sparsity!r}")

    def describe(self) -> str:
        return f"top-{self.k} per row" if self.k is not None else f"row mass budget {self.mass:g}"

    def thresholds(self, P: Any, r: Any) -> Any:
        m = P.shape[1]
        if self.k is None:
            return (self.mass / m) * r
        return self._kth_largest(P, min(self.k, m))

    @staticmethod
    def _kth_largest(P: np.ndarray, k: int) -> np.ndarray:
        m = P.shape[1]
        return np.partition(P, m - k, axis=1)[:, m - k]

    def __call__(self, P: np.ndarray, r: np.ndarray) -> sp.csr_array:
        indptr, indices, data = self.kernels.sparsify(P, self.thresholds(P, r))
        return sp.csr_array((data, indices, indptr), shape=P.shape)

    def kept(self, P: np.ndarray) -> int:
        """How many entries of the plan ``P`` the Hessian would keep."""
        return int(self(P, P.sum(axis=1)).nnz)

    def densify(self, reason: str) -> None:
        if self.k is None:
            self.mass *= DENSIFY
        else:
            self.k *= 2


class DeviceRowSparsifier(RowSparsifier):
    """:class:`RowSparsifier` for a plan on the device, in the data's namespace ``xp``.

    Sparse matrices are not in the array API standard, so the sparsified plan
    is the dense plan with its dropped entries set to zero, ``P ⊙ [P >= θ]``:
    ``n m`` entries of memory (a second dense plan beside ``P``) and ``O(n m)``
    per Hessian product, where a CSR matrix would take ``O(nnz)`` of each. It
    keeps exactly the entries the host's CSR keeps, so the Newton steps are
    the host's; it saves no work over the dense Newton solver. The top-``k``
    threshold is ``kth_largest(P, k)`` where given (the CuPy engine's
    selection kernel), else read from a sort of each row (``xp.sort``: a
    sorted copy of ``P``, ``O(m log m)`` per row); the mass budget needs
    neither. Calling it returns the masked plan and the number of kept
    entries (one host read).
    """

    def __init__(
        self, xp: Any, sparsity: Any, kth_largest: Callable[[Any, int], Any] | None = None
    ) -> None:
        super().__init__(None, sparsity)
        self.xp, self.kth_largest = xp, kth_largest

    def _kth_largest(self, P: Any, k: int) -> Any:
        if self.kth_largest is not None:
            return self.kth_largest(P, k)
        return self.xp.sort(P, axis=1)[:, P.shape[1] - k]

    def __call__(self, P: Any, r: Any) -> tuple[Any, int]:
        xp = self.xp
        keep = self.thresholds(P, r)[:, None] <= P
        kept = int(to_host(xp.sum(xp.astype(keep, xp.int64))))
        return xp.where(keep, P, xp.zeros_like(P)), kept

    def kept(self, P: Any) -> int:
        return self(P, self.xp.sum(P, axis=1))[1]


class AutoSwitch:
    """Decides, at each Sinkhorn check, whether to switch to Newton steps.

    Sinkhorn goes on while its observed linear rate predicts convergence
    within ``HORIZON`` iterations (there Newton steps would be wasted);
    otherwise the switch happens once the plan (``plan()``, at the current
    potentials) is approximately sparse: the entries the sparsifier keeps are
    at most ``MAX_DENSITY`` of the plan.
    """

    def __init__(
        self, plan: Callable[[], Any], sparsifier: RowSparsifier, tol: float, every: int
    ) -> None:
        self.plan, self.sparsifier, self.tol, self.every = plan, sparsifier, tol, every
        self.previous = math.inf

    def __call__(self, iteration: int, error: float) -> bool:
        previous, self.previous = self.previous, error
        if error <= self.tol or not math.isfinite(previous):
            return False
        rate = (error / previous) ** (1.0 / self.every) if previous > 0 else 0.0
        if 0.0 < rate < 1.0 and math.log(self.tol / error) / math.log(rate) <= HORIZON:
            return False
        P = self.plan()
        return self.sparsifier.kept(P) <= MAX_DENSITY * math.prod(P.shape)


def sinkhorn_newton_sparse(
    a: Any,
    b: Any,
    C: Any,
    reg: float,
    *,
    tol: float | None = None,
    maxiter: int = 10_000,
    warmup: Any = "auto",
    sparsity: Any = "auto",
    init: Any = None,
    normalize: bool = False,
    cg_maxiter: int | None = None,
    check_every: int = 10,
    warn: bool = True,
    engine: str | None = None,
) -> OTResult:
    """Entropic optimal transport by Sinkhorn–Newton-Sparse (SNS).

    Log-domain Sinkhorn iterations until the plan is approximately sparse,
    then Newton steps on the dual with the plan in the Hessian sparsified
    row by row and stored in CSR (``O(nnz)`` memory): CG with a Jacobi
    preconditioner on the Schur complement, costing ``O(nnz)`` per
    iteration, and an Armijo line search on the dual. Reaches marginal
    errors near rounding at small ``reg``, where Sinkhorn crawls.

    Parameters
    ----------
    a, b : array_like, shape (n,) and (m,)
        Non-negative marginals with equal totals.
    C : array_like, shape (n, m)
        Finite cost matrix.
    reg : float
        Entropic regularization ``ε > 0``.
    tol : float, optional
        Stop when the L1 error of both marginals is ``<= tol`` (default
        1e-9 in float64, 1e-5 in float32).
    maxiter : int
        Limit on Sinkhorn iterations plus Newton steps.
    warmup : "auto" or int
        Sinkhorn iterations before the first Newton step: a fixed number, or
        ``"auto"``: Sinkhorn continues while its observed rate predicts
        convergence within 100 iterations, and otherwise stops once the
        sparsified plan keeps at most a quarter of the entries.
    sparsity : "auto", float or int
        Which entries of each row of the plan the Hessian keeps: a float
        ``τ`` keeps the entries ``P_ij >= τ r_i / m`` (at most ``τ`` of the
        row's mass is dropped); an int ``k`` keeps the row's ``k`` largest;
        ``"auto"`` is ``τ = 1e-6``.
    init : pair of array_like, optional
        Warm start ``(f, g)``.
    normalize : bool
        Rescale ``a`` and ``b`` to unit mass instead of requiring equal totals.
    cg_maxiter : int, optional
        CG iterations per Newton system (default ``m``).
    check_every : int
        Sinkhorn checks (and switch decisions) every this many iterations;
        also the Sinkhorn iterations run when a Newton step fails, and on
        device data the CG iterations between two of its convergence tests.
    warn : bool
        Emit :class:`linalg.ConvergenceWarning` if not converged.
    engine : {"auto", "reference", "numba", "cupy"}, optional
        Engine for the log-sum-exp, plan and sparsification passes. CuPy
        arrays, GPU tensors and arrays of other array-API libraries are
        solved on their device, as by :func:`sinkhorn_newton`. Sparse
        matrices are not in the array API standard: there the sparsified
        plan is the dense plan with the dropped entries set to zero (the
        same entries as on the host, but ``n m`` memory and ``O(n m)`` work
        per product instead of ``O(nnz)``); the top-``k`` thresholds come
        from the CuPy engine's selection kernel for CuPy arrays ("auto" or
        "cupy"), else from a sort of each row.

    Returns
    -------
    OTResult
        ``n_iter`` counts Sinkhorn iterations (warm-up and fall-backs),
        ``n_newton`` Newton steps. ``history``: per Newton step ``"dual"``
        (non-decreasing), ``"marginal_error"``, ``"step"``,
        ``"cg_iterations"``, ``"nnz"`` (entries kept), ``"seconds"`` (since
        the start); per warm-up check ``"sinkhorn_iteration"``,
        ``"sinkhorn_marginal_error"``, ``"sinkhorn_seconds"``. ``info``:
        ``"switch_iteration"``, ``"sparsity"`` at the start and at the end,
        and ``"fallbacks"``: each failed Newton step, with its reason.

    Raises
    ------
    ValueError
        Negative marginals, totals that differ (unless ``normalize=True``),
        NaN or Inf in ``C``, ``reg <= 0``, shapes that do not match, a bad
        ``sparsity`` or ``warmup``.

    Notes
    -----
    The Hessian's diagonal blocks keep the exact marginals ``r = P1``,
    ``c = Pᵀ1``; only the off-diagonal ``P`` is sparsified, so the Schur
    complement ``diag(c) − P̃ᵀ diag(1/r) P̃`` is positive definite. As in
    :func:`sinkhorn_newton`, the dual's null direction ``(1, −1)`` is removed
    by fixing ``g_m`` (``dv_m = 0``). When a Newton step fails to increase
    the dual (or CG breaks down), ``check_every`` Sinkhorn iterations are run
    instead, the Hessian is made denser (the mass budget times 1e-2, or
    ``k`` doubled), and the event is recorded in ``info["fallbacks"]``.

    References
    ----------
    .. [1] X. Tang, M. Shavlovsky, H. Rahmanian, E. Tardini, K. K. Thekumparampil,
       T. Xiao and L. Ying, "Accelerating Sinkhorn algorithm with sparse Newton
       iterations", ICLR 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg.ot import sinkhorn_newton_sparse
    >>> C = np.random.default_rng(0).uniform(size=(40, 40))
    >>> a = np.full(40, 1 / 40)
    >>> res = sinkhorn_newton_sparse(a, a, C, 1e-2)
    >>> res.converged, res.n_newton > 0
    (True, True)
    """
    problem = prepare_problem(a, b, C, reg, normalize=normalize, batched=False, anywhere=True)
    tol, impl = check_common(
        problem, tol=tol, maxiter=maxiter, check_every=check_every, warn=warn, engine=engine
    )
    check_int(cg_maxiter, "cg_maxiter", low=1, allow_none=True)
    if not (isinstance(warmup, str) and warmup == "auto"):
        if isinstance(warmup, str):
            raise ValueError(f"warmup must be 'auto' or an int, got {warmup!r}")
        check_int(warmup, "warmup", low=0)
    if problem.on_device:
        sparsifier = DeviceRowSparsifier(problem.xp, sparsity, _selection_kernel(problem, engine))
    else:
        sparsifier = RowSparsifier(impl.load(), sparsity)
    start = sparsifier.describe()
    switch: dict[str, int] = {}

    def warm_up(sk: Any) -> tuple[int, dict]:
        if warmup == 0:
            switch["switch_iteration"] = 0
            return 0, {}
        fixed = not isinstance(warmup, str)
        out = sk.run(
            np.zeros(1, dtype=np.int64),
            tol=tol,
            maxiter=min(warmup, maxiter) if fixed else maxiter,
            check_every=check_every,
            stop=None if fixed else AutoSwitch(_plan_of(sk), sparsifier, tol, check_every),
        )
        iterations = int(out["n_iter"][0])
        switch["switch_iteration"] = iterations
        record = {
            "sinkhorn_iteration": out["iteration"],
            "sinkhorn_marginal_error": out["marginal_error"][:, 0],
            "sinkhorn_seconds": out["seconds"],
        }
        return iterations, record

    info: dict[str, Any] = {"sparsity": start}
    result = solve_newton(
        problem,
        init,
        impl,
        tol=tol,
        maxiter=maxiter,
        check_every=check_every,
        cg_maxiter=cg_maxiter,
        warn=warn,
        solver="sinkhorn_newton_sparse",
        warmup=warm_up,
        offdiagonal=sparsifier,
        on_failure=sparsifier.densify,
        info=info,
        engine=engine,
    )
    result.info.update(switch, final_sparsity=sparsifier.describe())
    return result


def _plan_of(sk: Any) -> Callable[[], Any]:
    """The plan at a Sinkhorn solver's current potentials, host or device."""
    if isinstance(sk, LogSinkhorn):
        return lambda: sk.kernels.plan(sk.K[0], sk.u[0], sk.v[0])
    return lambda: device_plan(sk)


def _selection_kernel(problem: Problem, engine: str | None) -> Callable[[Any, int], Any] | None:
    """The CuPy engine's top-``k`` selection for CuPy data and torch CUDA tensors, where
    the engine is CuPy's (as :class:`DeviceSinkhorn` picks its half-steps); None: sort
    the rows in ``xp``."""
    bridge = cupy_bridge(problem.kind, engine)
    if bridge is None:
        return None
    kernels = select("ot.kernels", engine=engine, kind=bridge.kind, dtype=problem.dtype).load()
    return lambda P, k: bridge.back(kernels.kth_largest(bridge.to_cupy(P), k))
