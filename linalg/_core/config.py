"""Configuration on :mod:`contextvars`: thread-safe and async-safe."""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

__all__ = ["config_context", "get_config"]

ENGINE_ENV_VAR = "LINALG_ENGINE"

_DEFAULTS: dict[str, Any] = {"engine": None}
_config: contextvars.ContextVar[MappingProxyType] = contextvars.ContextVar(
    "linalg_config", default=MappingProxyType(dict(_DEFAULTS))
)


def get_config() -> dict[str, Any]:
    """Return the configuration in force in this context.

    Returns
    -------
    dict
        ``{"engine": name or None}``; ``None`` means "not set here", so the
        ``LINALG_ENGINE`` environment variable and then ``"auto"`` apply.

    Examples
    --------
    >>> import linalg
    >>> with linalg.config_context(engine="reference"):
    ...     linalg.get_config()["engine"]
    'reference'
    """
    return dict(_config.get())


@contextlib.contextmanager
def config_context(*, engine: str | None = None) -> Iterator[None]:
    """Set options for the code run inside a ``with`` block.

    Settings are stored in a :class:`contextvars.ContextVar`, so threads and
    asyncio tasks each see their own; blocks nest and restore on exit.

    Parameters
    ----------
    engine : {"auto", "reference", "numba", "cupy", "numba-cuda"}, optional
        The engine used by calls that do not pass ``engine=`` themselves.

    Examples
    --------
    >>> import numpy as np, linalg
    >>> A = np.diag([1.0, 2.0, 4.0])
    >>> with linalg.config_context(engine="reference"):
    ...     res = linalg.solvers.cg(A, np.ones(3))
    >>> res.info["engine"]
    'reference'
    """
    if engine is not None:
        from linalg._core.engines import check_engine_name

        check_engine_name(engine, "engine")
    new = dict(_config.get())
    if engine is not None:
        new["engine"] = engine
    token = _config.set(MappingProxyType(new))
    try:
        yield
    finally:
        _config.reset(token)


def requested_engine(engine: str | None) -> str:
    """The engine asked for: the argument, the context, the environment, "auto"."""
    if engine is not None:
        return engine
    configured = _config.get()["engine"]
    if configured is not None:
        return configured
    return os.environ.get(ENGINE_ENV_VAR, "").strip() or "auto"
