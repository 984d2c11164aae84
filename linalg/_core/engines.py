"""The engine registry: (operation, engine) -> implementation.

An implementation is named by a ``"module:attribute"`` string and imported on
first use, so registering a Numba or CuPy kernel never imports Numba or CuPy.
Each one declares the array libraries, devices and dtypes it takes.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

import numpy as np

from linalg._core.config import requested_engine
from linalg._core.namespace import ArrayKind

__all__ = ["EngineStatus", "engines", "register", "require_usable", "select"]

ENGINE_NAMES = ("reference", "numba", "cupy", "numba-cuda")
# Auto tries these in order for data on the host, then for data off the host
# (where "reference" is array-API code run in the data's own namespace).
_AUTO_ORDER = {True: ("numba", "reference"), False: ("cupy", "numba-cuda", "reference")}
# The libraries of a reference implementation written against the array API.
ANY_ARRAY_LIBRARY = ("numpy", "cupy", "torch", "jax", "array-api")


@dataclass(frozen=True)
class EngineStatus:
    """Whether an engine can run on this machine, and why not if it cannot."""

    name: str
    usable: bool
    reason: str
    version: str | None = None

    def __str__(self) -> str:
        version = f" {self.version}" if self.version else ""
        state = "usable" if self.usable else "not usable"
        return f"{self.name}{version}: {state} ({self.reason})"


@dataclass(frozen=True)
class Implementation:
    """One engine's implementation of one operation."""

    operation: str
    engine: str
    target: str
    libraries: frozenset[str]
    dtypes: frozenset[str]
    auto: bool

    def load(self) -> Any:
        return _load(self.target)

    def takes(self, library: str, dtype: np.dtype) -> bool:
        return library in self.libraries and np.dtype(dtype).name in self.dtypes


@functools.cache
def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


_REGISTRY: dict[tuple[str, str], Implementation] = {}


def register(
    operation: str,
    engine: str,
    target: str,
    *,
    libraries: tuple[str, ...] = ("numpy",),
    dtypes: tuple[str, ...] = ("float32", "float64"),
    auto: bool = True,
) -> None:
    """Declare that ``engine`` implements ``operation`` at ``target``.

    ``auto=False`` keeps the implementation out of automatic choice (for
    example where it was not measured faster than the reference).
    """
    check_engine_name(engine, "engine")
    _REGISTRY[operation, engine] = Implementation(
        operation, engine, target, frozenset(libraries), frozenset(dtypes), auto
    )


def check_engine_name(engine: Any, name: str) -> None:
    if engine != "auto" and engine not in ENGINE_NAMES:
        raise ValueError(
            f"{name} must be 'auto' or one of {', '.join(map(repr, ENGINE_NAMES))}, got {engine!r}"
        )


def _probe_numba() -> EngineStatus:
    if importlib.util.find_spec("numba") is None:
        return EngineStatus(
            "numba", False, "Numba is not installed: pip install 'linalg-backend[numba]'"
        )
    try:
        import numba
    except Exception as exc:  # a broken install must not break linalg
        return EngineStatus("numba", False, f"importing numba failed: {exc}")
    return EngineStatus("numba", True, "CPU kernels compiled by Numba", numba.__version__)


def _probe_cupy() -> EngineStatus:
    if importlib.util.find_spec("cupy") is None:
        return EngineStatus(
            "cupy", False, "CuPy is not installed: pip install 'linalg-backend[cuda12]' or [cuda13]"
        )
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return EngineStatus("cupy", False, f"no CUDA device or driver: {exc}")
    if count == 0:
        return EngineStatus("cupy", False, "no CUDA device")
    return EngineStatus("cupy", True, f"{count} CUDA device(s)", cupy.__version__)


def _probe_numba_cuda() -> EngineStatus:
    if importlib.util.find_spec("numba_cuda") is None:
        return EngineStatus(
            "numba-cuda",
            False,
            "numba-cuda is not installed: pip install 'linalg-backend[cuda12]' or [cuda13]",
        )
    try:
        from numba import cuda

        available = cuda.is_available()
    except Exception as exc:
        return EngineStatus("numba-cuda", False, f"importing numba.cuda failed: {exc}")
    if not available:
        return EngineStatus("numba-cuda", False, "no CUDA device or driver")
    import numba_cuda
    from numba import config

    reason = (
        "the CUDA simulator (NUMBA_ENABLE_CUDASIM=1): correct but slow"
        if config.ENABLE_CUDASIM
        else "CUDA kernels compiled by Numba"
    )
    return EngineStatus("numba-cuda", True, reason, numba_cuda.__version__)


@functools.cache
def _status(name: str) -> EngineStatus:
    if name == "reference":
        return EngineStatus("reference", True, "NumPy reference path", np.__version__)
    return {"numba": _probe_numba, "cupy": _probe_cupy, "numba-cuda": _probe_numba_cuda}[name]()


def engines() -> dict[str, EngineStatus]:
    """Report which engines are usable here and, for the others, why not.

    Probing imports the optional libraries that are installed (Numba, CuPy),
    once; ``import linalg`` itself imports none of them.

    Returns
    -------
    dict of str to EngineStatus
        Keyed by engine name: ``"reference"``, ``"numba"``, ``"cupy"``,
        ``"numba-cuda"``.

    Examples
    --------
    >>> import linalg
    >>> linalg.engines()["reference"].usable
    True
    """
    return {name: _status(name) for name in ENGINE_NAMES}


def select(
    operation: str, *, engine: str | None, kind: ArrayKind, dtype: np.dtype
) -> Implementation:
    """Pick the implementation of ``operation`` for data of ``kind`` and ``dtype``.

    The ``engine=`` argument is a demand: it is used or a TypeError says why
    not. ``config_context`` and ``LINALG_ENGINE`` state a preference: an
    operation the preferred engine does not implement runs on the engine
    "auto" would pick for the same data. No data is moved between devices.
    """
    demanded = engine is not None
    if demanded:
        check_engine_name(engine, "engine")
    name = requested_engine(engine)
    if not demanded:
        check_engine_name(name, "engine (from config_context or LINALG_ENGINE)")
    if name != "auto":
        impl = _REGISTRY.get((operation, name))
        if impl is not None and impl.takes(kind.library, dtype):
            require_usable(name)
            return impl
        if demanded or impl is not None:
            raise TypeError(_cannot_take(operation, name, kind, dtype, impl))
    unusable = []
    for candidate in _AUTO_ORDER[kind.on_host]:
        impl = _REGISTRY.get((operation, candidate))
        if impl is not None and impl.auto and impl.takes(kind.library, dtype):
            if _status(candidate).usable:
                return impl
            unusable.append(_status(candidate))
    message = _cannot_take(operation, "auto", kind, dtype, None)
    if unusable:
        reasons = "; ".join(f"engine {s.name!r} is not usable here: {s.reason}" for s in unusable)
        message = f"{message} ({reasons})"
    raise TypeError(message)


def require_usable(name: str) -> None:
    """Raise a RuntimeError saying why engine ``name`` cannot run here, if it cannot.

    The reason is the one :func:`engines` reports: the library is not
    installed (and how to install it), it fails to import, or there is no
    CUDA device or driver. Never a raw CUDA error.
    """
    status = _status(name)
    if not status.usable:
        raise RuntimeError(f"engine {name!r} is not usable here: {status.reason}")


def _cannot_take(
    operation: str, name: str, kind: ArrayKind, dtype: np.dtype, impl: Implementation | None
) -> str:
    offered = sorted(e for (op, e) in _REGISTRY if op == operation)
    if impl is None and name != "auto":
        what = f"engine {name!r} has no implementation of {operation}"
    elif impl is None:
        what = f"no engine here implements {operation} for {kind}"
    else:
        what = f"engine {name!r} cannot take {kind} of dtype {np.dtype(dtype).name} in {operation}"
    remedy = (
        "move the data to the host (e.g. tensor.cpu() or cupy.asnumpy)"
        if not kind.on_host
        else f"use one of the engines that implement it: {', '.join(offered)}"
    )
    if name != "auto" and not _status(name).usable:
        remedy += f"; besides, engine {name!r} is not usable here: {_status(name).reason}"
    return f"{what}; {remedy}"
