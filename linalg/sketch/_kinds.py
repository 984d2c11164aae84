"""Sketch kinds by name, for routines that take ``sketch="countsketch"`` and the like."""

from __future__ import annotations

from typing import Any

import numpy as np

from linalg.sketch._dense_sketches import gaussian, rademacher
from linalg.sketch._operator import SketchOperator
from linalg.sketch._sparse_sketches import countsketch, sparse_sign
from linalg.sketch._srht import srht

__all__ = ["SKETCH_KINDS", "make_sketch"]

SKETCH_KINDS = {
    "gaussian": gaussian,
    "rademacher": rademacher,
    "countsketch": countsketch,
    "sparse_sign": sparse_sign,
    "srht": srht,
}


def make_sketch(
    sketch: Any,
    d: int,
    n: int,
    *,
    rng: Any = None,
    dtype: Any = np.float64,
    engine: str | None = None,
    name: str = "sketch",
) -> SketchOperator:
    """A ``d × n`` sketch of the kind named ``sketch`` (or ``sketch`` itself if it is one)."""
    if isinstance(sketch, SketchOperator):
        if sketch.shape != (d, n):
            raise ValueError(f"{name} must have shape ({d}, {n}), got {sketch.shape}")
        return sketch
    if sketch not in SKETCH_KINDS:
        raise ValueError(
            f"{name} must be a SketchOperator or one of {', '.join(map(repr, SKETCH_KINDS))}, "
            f"got {sketch!r}"
        )
    return SKETCH_KINDS[sketch](d, n, rng=rng, dtype=dtype, engine=engine)
