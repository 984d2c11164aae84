"""What a family's tour reports for ``python -m linalg``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TourRow:
    """One routine run on a default problem.

    Attributes
    ----------
    routine : str
        The call, as a reader would write it.
    result : str
        What it computed, in a few words.
    error : float
        Relative error against an exact reference.
    seconds : float
        Wall time of the call.
    engine : str
        The engine that ran it.
    note : str
        Anything the reader should know (optional).
    """

    routine: str
    result: str
    error: float
    seconds: float
    engine: str
    note: str = ""


def relative_error(x: Any, exact: Any) -> float:
    """``‖x − exact‖ / ‖exact‖`` (Frobenius), in float64."""
    x, exact = np.asarray(x, dtype=np.float64), np.asarray(exact, dtype=np.float64)
    return float(np.linalg.norm(x - exact) / np.linalg.norm(exact))


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    """Call ``function`` once; return its value and the seconds it took."""
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start
