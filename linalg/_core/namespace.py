"""Which array library and device an input lives on, and the DLPack bridge.

Nothing here imports an array library to ask about an input: the checks look
at the input's type and at :data:`sys.modules`, through array-api-compat's
``is_*_array`` helpers, which do the same. NumPy arrays take a fast path.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from linalg._core.random import RandomStream

__all__ = [
    "HOST",
    "ArrayKind",
    "Placement",
    "array_kind",
    "check_lives_with",
    "cholesky_or_none",
    "device_of",
    "draw_engine",
    "namespace_of",
    "numpy_dtype",
    "placement_of",
    "to_caller",
    "to_host",
    "to_numpy",
]


@dataclass(frozen=True)
class ArrayKind:
    """Where an array lives.

    Attributes
    ----------
    library : str
        ``"numpy"``, ``"scipy.sparse"``, ``"torch"``, ``"jax"``, ``"cupy"``,
        ``"dask"``, ``"array-api"`` (another library of the array API
        standard) or ``"python"`` (lists, scalars).
    device : str
        ``"cpu"`` or a CUDA device such as ``"cuda:0"``.
    """

    library: str
    device: str = "cpu"

    @property
    def on_host(self) -> bool:
        """Whether the data is in host memory, readable by NumPy without a copy."""
        return self.device == "cpu" and self.library not in {"cupy", "dask", "array-api"}

    @property
    def via_namespace(self) -> bool:
        """Whether routines that support it compute on the data through its own
        array-API namespace: CuPy arrays, torch and JAX arrays on a GPU, and
        arrays of other array-API libraries (``array_api_strict`` for one)."""
        return not self.on_host and self.library != "dask"

    def __str__(self) -> str:
        return f"{self.library} arrays on {self.device}"


NUMPY = ArrayKind("numpy")


def _compat():
    import array_api_compat

    return array_api_compat


def array_kind(x: Any) -> ArrayKind:
    """Describe where ``x`` lives without importing any array library.

    Examples
    --------
    >>> import numpy as np
    >>> from linalg._core.namespace import array_kind
    >>> array_kind(np.ones(3))
    ArrayKind(library='numpy', device='cpu')
    """
    if isinstance(x, np.ndarray | np.generic):
        return NUMPY
    module = type(x).__module__
    if module.startswith("scipy.sparse"):
        return ArrayKind("scipy.sparse")
    compat = _compat()
    if compat.is_torch_array(x):
        device = x.device
        name = device.type if device.index is None else f"{device.type}:{device.index}"
        return ArrayKind("torch", name)
    if compat.is_jax_array(x):
        platforms = {d.platform for d in x.devices()}
        platform = "cpu" if platforms == {"cpu"} else "gpu"
        return ArrayKind("jax", "cpu" if platform == "cpu" else "cuda")
    if compat.is_cupy_array(x):
        return ArrayKind("cupy", f"cuda:{x.device.id}")
    if compat.is_dask_array(x):
        return ArrayKind("dask", "cpu")
    if module.startswith("cupyx.scipy.sparse"):
        return ArrayKind("cupy", f"cuda:{x.device.id}" if hasattr(x, "device") else "cuda")
    if compat.is_array_api_obj(x):
        return ArrayKind("array-api", str(compat.device(x)))
    return ArrayKind("python")


def device_of(x: Any) -> Any:
    """The device object of an array, as its namespace's ``device=`` arguments take it."""
    return _compat().device(x)


def numpy_dtype(dtype: Any) -> np.dtype:
    """The NumPy dtype of the same name as any library's dtype (``torch.float32``,
    ``array_api_strict.float64``, a NumPy dtype)."""
    try:
        return np.dtype(dtype)
    except TypeError:
        return np.dtype(str(dtype).rpartition(".")[2])


def namespace_of(x: Any) -> Any:
    """The array-API namespace that computes on ``x`` (array-api-compat's wrapper
    for NumPy, CuPy and torch; the library itself for JAX and strict ones)."""
    return _compat().array_namespace(x)


def common_kind(*arrays: Any) -> ArrayKind:
    """The one kind shared by ``arrays`` (``None`` and Python objects ignored).

    NumPy arrays and SciPy sparse matrices mix freely with any host library;
    NumPy with device data (CuPy, a GPU tensor), two device libraries, or two
    devices raise a TypeError.
    """
    kinds = {array_kind(a) for a in arrays if a is not None and not callable(a)}
    kinds.discard(ArrayKind("python"))
    kinds.discard(ArrayKind("scipy.sparse"))
    if len(kinds) > 1 and not any(kind.via_namespace for kind in kinds):
        kinds.discard(NUMPY)
    if len(kinds) > 1:
        listed = ", ".join(sorted(str(k) for k in kinds))
        raise TypeError(
            f"inputs live in different places ({listed}); linalg copies nothing between "
            "libraries or devices silently: convert them to one array type first"
        )
    return kinds.pop() if kinds else NUMPY


def check_lives_with(x: Any, name: str, kind: ArrayKind, owner: str) -> None:
    """Refuse ``x`` unless it lives where ``owner`` (data of ``kind``) does.

    Host data of any library mixes freely with host data; device data must be
    of ``kind`` exactly (the same library and device).

    Raises
    ------
    TypeError
        Naming ``name``, both places and the remedy.
    """
    if kind == NUMPY and isinstance(x, np.ndarray):
        return
    got = array_kind(x)
    if got != kind and (got.via_namespace or kind.via_namespace):
        raise TypeError(
            f"{name} holds {got} and {owner} {kind}: convert {name} to the array type of "
            f"{owner} (linalg copies nothing between libraries or devices silently)"
        )


def to_numpy(x: Any, name: str) -> Any:
    """Host array -> NumPy without a copy (DLPack for torch and JAX on the CPU).

    Lists, tuples and Python numbers go through :func:`numpy.asarray`; NumPy
    arrays and other objects (operators, callables, SciPy sparse) pass unchanged.
    """
    if isinstance(x, np.ndarray) or x is None:
        return x
    kind = array_kind(x)
    if kind.library == "python":
        return np.asarray(x) if isinstance(x, list | tuple | int | float) else x
    if kind.library == "scipy.sparse":
        return x
    if not kind.on_host:
        raise TypeError(
            f"{name!r} holds {kind}; the NumPy engines read host memory only: "
            "move it to the CPU first, or use a GPU engine when one is available"
        )
    if kind.library == "torch":
        return np.from_dlpack(x.detach().resolve_conj().resolve_neg())
    return np.from_dlpack(x)


def to_caller(x: Any, kind: ArrayKind) -> Any:
    """Return a NumPy result as the caller's array type (DLPack, no copy); a result
    computed through the caller's own namespace is already in it."""
    if kind.library in {"numpy", "python", "scipy.sparse"} or kind.via_namespace:
        return x
    x = np.ascontiguousarray(x)
    if not x.flags.writeable:
        x = x.copy()
    if kind.library == "torch":
        torch = sys.modules["torch"]
        return torch.from_dlpack(x)
    if kind.library == "jax":
        jnp = sys.modules.get("jax.numpy") or __import__("jax.numpy", fromlist=["asarray"])
        return jnp.asarray(x)
    raise TypeError(f"cannot return results as {kind}")


def to_host(x: Any) -> np.ndarray:
    """A NumPy copy of an array of any library or device (CuPy, torch, JAX, array-API)."""
    if isinstance(x, np.ndarray | np.generic):
        return np.asarray(x)
    library = array_kind(x).library
    if library == "cupy":
        return x.get()
    if library == "torch":
        return x.detach().cpu().numpy()
    if library == "jax":
        return np.asarray(x)
    return np.from_dlpack(x)


@dataclass(frozen=True)
class Placement:
    """Where a computation keeps its large arrays; its small ones stay NumPy.

    ``HOST`` (NumPy, large arrays in Fortran order) or an array library ``xp``
    and device, for a computation that runs on device data through its
    namespace: tall blocks stay on the device, and small factors (Gram
    matrices, Cholesky factors, projected matrices and their SVDs) go to the
    host, where NumPy and LAPACK handle them in microseconds.
    """

    xp: Any
    device: Any = None

    @property
    def on_host(self) -> bool:
        return self.device is None

    def dtype(self, dtype: np.dtype) -> Any:
        """``xp``'s dtype of the same name as the NumPy ``dtype``."""
        return np.dtype(dtype) if self.on_host else getattr(self.xp, np.dtype(dtype).name)

    def put(self, x: np.ndarray) -> Any:
        """A host array where the large arrays live."""
        return x if self.on_host else self.xp.asarray(x, device=self.device)

    def host(self, x: Any) -> np.ndarray:
        """A (small) array of this placement on the host."""
        return x if self.on_host else to_host(x)

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        if self.on_host:
            return np.empty(shape, dtype=dtype, order="F")
        return self.xp.empty(shape, dtype=self.dtype(dtype), device=self.device)

    def copy(self, x: Any, dtype: np.dtype) -> Any:
        """A fresh copy of ``x`` (of this placement) in ``dtype``."""
        if self.on_host:
            return np.array(x, dtype=dtype, order="F", copy=True)
        return self.xp.astype(x, self.dtype(dtype), copy=True)

    def draw(
        self,
        stream: RandomStream,
        kind: str,
        shape: tuple[int, ...],
        *,
        dtype: np.dtype,
        offset: int = 0,
    ) -> Any:
        """Stream elements ``offset, offset + 1, ...`` as a C-ordered array of this placement.

        The numbers of ``stream.normal(shape, dtype=dtype, offset=offset)`` (or
        ``uniform``, ``rademacher``), bit for bit, drawn where the large arrays
        live: CuPy arrays and torch CUDA tensors are allocated on their device
        and filled there by the engine :func:`draw_engine` names; elsewhere
        (the host, other array-API libraries, JAX, no usable CUDA engine) the
        draw is made on the host and moved with :meth:`put`.

        Parameters
        ----------
        stream : RandomStream
        kind : {"uniform", "normal", "rademacher"}
        shape : tuple of int
        dtype : {numpy.float64, numpy.float32}
        offset : int, default 0
            Stream index of the first element (in C order).

        Returns
        -------
        array
            Of ``shape``, in this placement's library, dtype and device.

        Examples
        --------
        >>> import numpy as np
        >>> from linalg._core.namespace import HOST
        >>> from linalg._core.random import RandomStream
        >>> rs = RandomStream(3)
        >>> got = HOST.draw(rs, "normal", (2, 3), dtype=np.float32, offset=4)
        >>> bool(np.array_equal(got, rs.normal((2, 3), dtype=np.float32, offset=4)))
        True
        """
        engine = draw_engine(self)
        if engine == "reference":
            return self.put(stream.fill(np.empty(shape, dtype=dtype), kind, offset=offset))
        out = self.xp.empty(shape, dtype=self.dtype(dtype), device=self.device)
        with _filling_on(engine, self):
            return stream.fill(out, kind, offset=offset, engine=engine)


HOST = Placement(np)


def draw_engine(place: Placement) -> str:
    """The :class:`~linalg._core.random.RandomStream` engine :meth:`Placement.draw` uses.

    ``"cupy"``, else ``"numba-cuda"``, whichever is usable here first, for
    CuPy data and torch CUDA tensors (arrays their libraries let us fill in
    place); ``"reference"`` (a host draw, then :meth:`Placement.put`) for
    everything else. Probing an engine imports CuPy or numba-cuda, once.

    Examples
    --------
    >>> from linalg._core.namespace import HOST, draw_engine
    >>> draw_engine(HOST)
    'reference'
    """
    compat = _compat()
    fillable = compat.is_cupy_namespace(place.xp) or (
        compat.is_torch_namespace(place.xp) and getattr(place.device, "type", None) == "cuda"
    )
    if not place.on_host and fillable:
        from linalg._core import engines  # not at import: engines imports this module

        for engine in ("cupy", "numba-cuda"):
            if engines._status(engine).usable:
                return engine
    return "reference"


@contextlib.contextmanager
def _filling_on(engine: str, place: Placement):
    """Where ``engine``'s fill kernel runs: on the data's CUDA device and, for torch
    tensors, ordered with torch's current stream (CuPy launches on that stream; a
    numba-cuda fill is fenced by synchronizations on both sides)."""
    device = place.device
    index = getattr(device, "id", None)
    index = getattr(device, "index", None) if index is None else index
    torch_stream = None
    if type(device).__module__ == "torch":  # a torch.device: the data are torch tensors
        torch_stream = sys.modules["torch"].cuda.current_stream(device)
    with contextlib.ExitStack() as stack:
        if engine == "cupy":
            import cupy

            if index is not None:
                stack.enter_context(cupy.cuda.Device(index))
            if torch_stream is not None:
                stack.enter_context(cupy.cuda.ExternalStream(torch_stream.cuda_stream))
            yield
            return
        from numba import cuda

        if index is not None:
            stack.enter_context(cuda.gpus[index])
        if torch_stream is not None:
            torch_stream.synchronize()  # the buffer torch just allocated is free to write
        yield
        if torch_stream is not None:
            cuda.synchronize()  # the numbers are written before torch reads them


def placement_of(x: Any) -> Placement:
    """:data:`HOST` for host data, else ``x``'s namespace and device."""
    if array_kind(x).via_namespace:
        return Placement(namespace_of(x), device_of(x))
    return HOST


def cholesky_or_none(A: Any) -> Any:
    """The lower Cholesky factor of ``A`` in its own namespace, or ``None`` where ``A``
    is not numerically positive definite: NumPy and torch raise, CuPy returns NaN
    (one device synchronization to tell)."""
    xp = namespace_of(A)
    try:
        L = xp.linalg.cholesky(A)
    except (np.linalg.LinAlgError, RuntimeError):
        return None
    return L if bool(xp.all(xp.isfinite(L))) else None
