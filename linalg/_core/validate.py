"""Argument checks. Every error names the argument and what was expected.

Checks run before any work and never modify their input: a promoted or
contiguous copy is made only where one is needed.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "as_float_array",
    "check_bool",
    "check_callable",
    "check_finite",
    "check_int",
    "check_real",
    "check_symmetric",
    "result_dtype",
]

# A matrix counts as symmetric when max|A - Aᵀ| <= SYMMETRY_RTOL * eps * max|A|.
SYMMETRY_RTOL = 1e3

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype: np.dtype, name: str) -> np.dtype:
    """float32/float64 kept, integers promoted to float64, the rest refused."""
    dtype = np.dtype(dtype)
    if dtype in FLOAT_DTYPES:
        return dtype
    if dtype.kind in "iu":
        return np.dtype(np.float64)
    if dtype.kind == "c":
        raise TypeError(
            f"{name} is complex ({dtype}); this routine supports real float32 and float64 only"
        )
    raise TypeError(
        f"{name} has dtype {dtype}; expected float32 or float64 (integers are promoted to float64)"
    )


def result_dtype(*dtypes: np.dtype) -> np.dtype:
    """The float dtype of a computation on inputs of ``dtypes``."""
    return np.result_type(*(np.dtype(d) for d in dtypes))


def check_finite(x: np.ndarray, name: str) -> None:
    """Raise ValueError if ``x`` holds NaN or Inf."""
    if not np.isfinite(x).all():
        bad = "NaN" if np.isnan(x).any() else "Inf"
        raise ValueError(f"{name} contains {bad}; all entries must be finite")


def as_float_array(
    x: Any,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    dtype: np.dtype | None = None,
    allow_empty: bool = False,
    finite: bool = True,
) -> np.ndarray:
    """Validate ``x`` and return it as a float32/float64 NumPy array.

    The input is returned unchanged (not copied) when it already qualifies;
    otherwise a converted copy. The input object itself is never written.

    Parameters
    ----------
    x : array_like
        The argument's value.
    name : str
        The argument's name, used in error messages.
    ndim : int or tuple of int, optional
        Accepted numbers of dimensions.
    dtype : dtype, optional
        Cast to this float dtype (after the dtype checks on ``x``).
    allow_empty : bool
        Whether an array with a zero-length dimension is accepted.
    finite : bool
        Whether to reject NaN and Inf.
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:
        raise TypeError(f"{name} must be an array, got {type(x).__name__}") from exc
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__} of objects")
    if arr.dtype == bool:
        raise TypeError(f"{name} has dtype bool; expected float32 or float64")
    target = float_dtype(arr.dtype, name)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); expected at least one entry")
    if dtype is not None:
        target = np.dtype(dtype)
    if arr.dtype != target:
        arr = arr.astype(target)
    if finite:
        check_finite(arr, name)
    return arr


def check_int(
    value: Any, name: str, *, low: int | None = None, allow_none: bool = False
) -> int | None:
    """An integer (not a bool) no smaller than ``low``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def check_real(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
) -> float:
    """A finite real number in [low, high] (or (low, high] if not ``low_inclusive``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        sign = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be {sign} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_callable(value: Any, name: str, *, allow_none: bool = True) -> Callable | None:
    if value is None and allow_none:
        return None
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")
    return value


_SYMMETRY_BLOCK = 256


def _asymmetry(A: np.ndarray) -> float:
    """``max|A - Aᵀ|`` of a square matrix, by blocks of rows against blocks of columns.

    ``A - A.T`` in one go reads ``A.T`` across cache lines; a block of rows
    ``A[i:j, i:]`` against the block of columns ``A[i:, i:j]`` reads both in
    contiguous runs, and only the upper triangle is compared.
    """
    worst = 0.0
    for i in range(0, A.shape[0], _SYMMETRY_BLOCK):
        j = i + _SYMMETRY_BLOCK
        worst = max(worst, float(np.abs(A[i:j, i:] - A[i:, i:j].T).max()))
    return worst


def check_symmetric(A: Any, name: str, *, rtol: float = SYMMETRY_RTOL) -> None:
    """Raise ValueError unless ``A`` is symmetric to rounding.

    ``A`` is a square array, a stack ``(..., n, n)`` of them (each matrix
    judged against its own scale), or a SciPy sparse matrix. Symmetric means
    ``max|A - Aᵀ| <= rtol * eps * max|A|``, with ``eps`` of ``A``'s dtype.
    """
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(f"{name} must be square, got shape {A.shape}")
    if hasattr(A, "tocsr"):  # SciPy sparse: compare the stored entries
        asymmetry = np.abs((A - A.T).data).max(initial=0.0)
        scale = np.abs(A.data).max(initial=0.0)
    elif A.ndim == 2:
        asymmetry = _asymmetry(A)
        scale = max(float(A.max()), -float(A.min()))  # max|A| without an |A| temporary
    else:
        asymmetry = np.abs(A - np.swapaxes(A, -1, -2)).max(axis=(-2, -1))
        scale = np.abs(A).max(axis=(-2, -1))
    limit = rtol * np.finfo(A.dtype).eps * scale
    if np.any(asymmetry > limit):
        worst = np.max(asymmetry / np.maximum(scale, np.finfo(A.dtype).tiny))
        raise ValueError(
            f"{name} must be symmetric; max|{name} - {name}ᵀ| / max|{name}| = {worst:.3g} "
            f"exceeds {rtol * np.finfo(A.dtype).eps:.3g} ({rtol:g} * eps)"
        )
