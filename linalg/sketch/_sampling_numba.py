"""Numba kernel for the ordered pivotal method (engine ``"numba"``).

The very function :func:`linalg.sketch._sampling.pivotal_loop`, compiled: the
same float64 operations in the same order, so the same selection.
Imported only through the engine registry.
"""

from __future__ import annotations

import numba

from linalg.sketch._sampling import pivotal_loop as _pivotal_loop

__all__ = ["pivotal_loop"]

pivotal_loop = numba.njit(cache=True)(_pivotal_loop)
