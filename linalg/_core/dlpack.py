"""The CuPy engine's kernels on torch CUDA tensors: CuPy views through DLPack.

Device routines compute on torch CUDA tensors through torch's own namespace.
Where a routine has a custom CuPy kernel (the fused Sinkhorn half-step, SNS's
top-k selection), :func:`cupy_bridge` lets that kernel read and write the
tensors' memory instead: ``cupy.from_dlpack`` and ``torch.from_dlpack`` share
the buffers (no copy) and order the two libraries' streams.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from linalg._core.namespace import ArrayKind

__all__ = ["CupyBridge", "cupy_bridge"]


def _same(x: Any) -> Any:
    return x


@dataclass(frozen=True)
class CupyBridge:
    """How CuPy kernels reach data of another library on a CUDA device.

    Attributes
    ----------
    kind : ArrayKind
        The CuPy arrays the kernels see (what the engine is selected for).
    to_cupy, back : callable
        The data as a CuPy array, and a CuPy result as the data's library
        (identities for CuPy data).
    """

    kind: ArrayKind
    to_cupy: Callable[[Any], Any]
    back: Callable[[Any], Any]


def cupy_bridge(kind: ArrayKind, engine: str | None) -> CupyBridge | None:
    """The bridge to the CuPy engine for data of ``kind``, or None.

    CuPy arrays need none (identities); torch tensors on a CUDA device get
    DLPack views when ``engine`` may be CuPy's (None, "auto" or "cupy") and
    CuPy is usable here. Anything else (another library, no CuPy, a demand
    for another engine) returns None: the caller computes in the data's own
    namespace, or refuses the demand.

    Examples
    --------
    >>> from linalg._core.dlpack import cupy_bridge
    >>> from linalg._core.namespace import ArrayKind
    >>> cupy_bridge(ArrayKind("array-api"), "auto") is None
    True
    """
    if engine not in (None, "auto", "cupy"):
        return None
    if kind.library == "cupy":
        return CupyBridge(kind, _same, _same)
    if kind.library != "torch" or not kind.device.startswith("cuda"):
        return None
    from linalg._core.engines import _status

    if not _status("cupy").usable:
        return None
    import cupy

    torch = sys.modules["torch"]
    return CupyBridge(ArrayKind("cupy", kind.device), cupy.from_dlpack, torch.from_dlpack)
