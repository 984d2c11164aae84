"""What a caller's callable returned, checked before it is used."""

from __future__ import annotations

from typing import Any

from linalg._core.namespace import array_kind

__all__ = ["checked_product"]


def checked_product(out: Any, u: Any, name: str, *, remedy: str) -> Any:
    """``out``, the product that callable ``name`` returned for the vector ``u``,
    once known to be shaped like ``u`` and, for device data (CuPy, a GPU tensor,
    another array-API library), of ``u``'s own array type; ``remedy`` ends the
    TypeError otherwise."""
    shape = getattr(out, "shape", None)
    shape = None if shape is None else tuple(shape)
    if shape != tuple(u.shape):
        raise ValueError(
            f"{name} returned {type(out).__name__} of shape {shape} for a vector of shape "
            f"{tuple(u.shape)}; it must return an array shaped like its input"
        )
    kind = array_kind(u)
    if kind.via_namespace and array_kind(out) != kind:
        raise TypeError(
            f"{name} returned {array_kind(out)} for a vector of {kind}: it must compute "
            f"where its input lives; {remedy}"
        )
    return out
