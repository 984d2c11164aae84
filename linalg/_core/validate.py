"""Argument checks. Every error names the argument and what was expected.

Checks run before any work and never modify their input: a promoted or
contiguous copy is made only where one is needed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from linalg._core.namespace import NUMPY, ArrayKind, array_kind, namespace_of, numpy_dtype, to_numpy

__all__ = [
    "as_float_array",
    "as_float_namespace_array",
    "check_bool",
    "check_callable",
    "check_finite",
    "check_int",
    "check_real",
    "check_symmetric",
    "float_input",
    "result_dtype",
]

# A matrix counts as symmetric when max|A - Aᵀ| <= SYMMETRY_RTOL * eps * max|A|.
SYMMETRY_RTOL = 1e3

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_EMPTY = np.empty(0)  # names array-api-compat's NumPy namespace


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
    return np.result_type(*(numpy_dtype(d) for d in dtypes))


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


def as_float_namespace_array(
    x: Any, name: str, xp: Any, *, ndim: int | tuple[int, ...] | None = None, finite: bool = True
) -> Any:
    """:func:`as_float_array` for an array computed through its namespace ``xp``
    (CuPy, a GPU tensor, another array-API library): float32/float64 kept,
    integers promoted to float64, the rest refused; non-empty and finite (one
    device synchronization). Returned in ``xp``, unchanged when it qualifies."""
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if x.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want}, got shape {tuple(x.shape)}")
    if xp.isdtype(x.dtype, "integral"):
        x = xp.astype(x, xp.float64)
    elif x.dtype not in (xp.float32, xp.float64):
        kind = "complex" if xp.isdtype(x.dtype, "complex floating") else "of dtype"
        raise TypeError(f"{name} is {kind} {x.dtype}; expected float32 or float64")
    if math.prod(x.shape) == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); expected at least one entry")
    if finite and not bool(xp.all(xp.isfinite(x))):
        bad = "NaN" if bool(xp.any(xp.isnan(x))) else "Inf"
        raise ValueError(f"{name} contains {bad}; all entries must be finite")
    return x


def float_input(
    x: Any, name: str, *, ndim: int | tuple[int, ...] | None = None, finite: bool = True
) -> tuple[Any, Any, ArrayKind]:
    """Validate an array argument of a routine that also computes on device arrays.

    Returns ``(array, xp, kind)``: host data (NumPy, lists, CPU tensors) as a
    float32/float64 NumPy array with ``xp`` array-api-compat's NumPy namespace;
    arrays that :attr:`ArrayKind.via_namespace` (CuPy, GPU tensors, other
    array-API libraries) unchanged, with their own namespace. ``kind`` says
    where the result goes back (:func:`~linalg._core.namespace.to_caller`;
    NumPy for lists and Python numbers).
    """
    kind = array_kind(x)
    if kind.via_namespace:
        xp = namespace_of(x)
        return as_float_namespace_array(x, name, xp, ndim=ndim, finite=finite), xp, kind
    array = as_float_array(to_numpy(x, name), name, ndim=ndim, finite=finite)
    return array, namespace_of(_EMPTY), NUMPY if kind.library == "python" else kind


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
        raise ValueError(f"{name} must be square, got shape {tuple(A.shape)}")
    xp = np if hasattr(A, "tocsr") or isinstance(A, np.ndarray) else namespace_of(A)
    if hasattr(A, "tocsr"):  # SciPy sparse: compare the stored entries
        asymmetry = np.abs((A - A.T).data).max(initial=0.0)
        scale = np.abs(A.data).max(initial=0.0)
    elif xp is not np:  # CuPy, a GPU tensor: one device synchronization below
        asymmetry = xp.max(xp.abs(A - xp.matrix_transpose(A)), axis=(-2, -1))
        scale = xp.max(xp.abs(A), axis=(-2, -1))
    elif A.ndim == 2:
        asymmetry = _asymmetry(A)
        scale = max(float(A.max()), -float(A.min()))  # max|A| without an |A| temporary
    else:
        asymmetry = np.abs(A - np.swapaxes(A, -1, -2)).max(axis=(-2, -1))
        scale = np.abs(A).max(axis=(-2, -1))
    finfo = xp.finfo(A.dtype)
    if bool(xp.any(asymmetry > rtol * finfo.eps * scale)):
        worst = float(xp.max(asymmetry / xp.maximum(scale, finfo.smallest_normal)))
        raise ValueError(
            f"{name} must be symmetric; max|{name} - {name}ᵀ| / max|{name}| = {worst:.3g} "
            f"exceeds {rtol * float(finfo.eps):.3g} ({rtol:g} * eps)"
        )
