"""CUDA kernel sources: where they are, and their compiled CuPy modules.

The sources live in the repository's ``cuda/`` folder (one ``<family>.cu`` per
family, shared headers such as ``philox.cuh`` beside them). A wheel ships that
folder as ``linalg/_cuda_sources`` (pyproject's hatch ``force-include``), so an
installed package finds them inside itself and a source checkout (or an
editable install) next to the package.

:func:`load_module` compiles a family's source with CuPy's NVRTC
(``cupy.RawModule``) on first use and caches the module per source, options
and device. ``#include "x.cuh"`` lines are replaced by the header's text before
compiling: NVRTC then needs no include path, and CuPy's on-disk cache, keyed by
the source text, sees an edit of a header. Every module is compiled with
``--fmad=false`` (and never with fast math), so that no multiply and add are
fused into an FMA: the random streams must give the same bits as the CPU
engines. Nothing here imports CuPy until a module is loaded.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["NVRTC_OPTIONS", "load_module", "read_source", "source_dir", "sources"]

#: Options of every compilation: C++17, and no contraction of a * b + c into an FMA.
NVRTC_OPTIONS = ("--std=c++17", "--fmad=false")
SOURCE_SUFFIXES = (".cu", ".cuh")
_PACKAGED = "_cuda_sources"
_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"[ \t]*$', re.MULTILINE)
_PRAGMA_ONCE = re.compile(r"^[ \t]*#[ \t]*pragma[ \t]+once[ \t]*$", re.MULTILINE)


def source_dir(package: Any = None) -> Path:
    """The folder holding the kernel sources.

    Parameters
    ----------
    package : path-like, optional
        The ``linalg`` package folder to look in; by default the imported one.
        ``<package>/_cuda_sources`` (an installed wheel) is preferred to
        ``<package>/../cuda`` (a source checkout).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        If neither folder exists: the installation is incomplete.

    Examples
    --------
    >>> from linalg._core.cuda_sources import source_dir
    >>> (source_dir() / "philox.cuh").is_file()
    True
    """
    root = Path(str(resources.files("linalg"))) if package is None else Path(package)
    for candidate in (root / _PACKAGED, root.parent / "cuda"):
        if candidate.is_dir() and any(candidate.glob("*.cu")):
            return candidate
    raise FileNotFoundError(
        f"no CUDA kernel sources in {root / _PACKAGED} or {root.parent / 'cuda'}: "
        "this linalg installation is incomplete; reinstall it from a wheel or a source checkout"
    )


def sources(package: Any = None) -> dict[str, Path]:
    """Every kernel source and header, by file name (``"sketch.cu"``, ``"philox.cuh"``).

    Parameters
    ----------
    package : path-like, optional
        As in :func:`source_dir`.

    Returns
    -------
    dict of str to pathlib.Path
        Sorted by name.

    Examples
    --------
    >>> from linalg._core.cuda_sources import sources
    >>> {"philox.cuh", "random.cu", "sketch.cu"} <= set(sources())
    True
    """
    folder = source_dir(package)
    found = (p for p in folder.iterdir() if p.suffix in SOURCE_SUFFIXES and p.is_file())
    return {p.name: p for p in sorted(found)}


def read_source(family: str, *, package: Any = None) -> str:
    """The source of ``cuda/<family>.cu`` with its ``#include "..."`` headers inlined.

    Parameters
    ----------
    family : str
        ``"sketch"``, ``"random"``, ...; or a file name such as ``"philox.cuh"``.
    package : path-like, optional
        As in :func:`source_dir`.

    Returns
    -------
    str
        Self-contained CUDA C++: each header appears once, where first included.

    Raises
    ------
    ValueError
        If there is no such source (the message lists the known ones).

    Examples
    --------
    >>> from linalg._core.cuda_sources import read_source
    >>> text = read_source("random")
    >>> "#include" in text, "linalg_stream_fill_f64" in text
    (False, True)
    """
    known = sources(package)
    name = family if family.endswith(SOURCE_SUFFIXES) else f"{family}.cu"
    if name not in known:
        raise ValueError(
            f"family must name a kernel source, one of {sorted(known)}; got {family!r}"
        )
    return _expand(name, known, set())


def _expand(name: str, known: dict[str, Path], seen: set[str]) -> str:
    if name not in known:
        raise ValueError(f"#include {name!r}: no such header among {sorted(known)}")
    seen.add(name)
    text = _PRAGMA_ONCE.sub("", known[name].read_text(encoding="utf-8"))

    def include(match: re.Match) -> str:
        header = match.group(1)
        if header in seen:
            return f"// {header}: included above"
        return f"// --- {header} ---\n{_expand(header, known, seen)}// --- end {header} ---"

    return _INCLUDE.sub(include, text)


def load_module(family: str, *, options: tuple[str, ...] = ()) -> Any:
    """The compiled ``cupy.RawModule`` of ``cuda/<family>.cu`` on the current device.

    Compiled on the first call for a given family, options and device, then
    cached (CuPy also keeps compiled code on disk across processes).

    Parameters
    ----------
    family : str
        The source's name without ``.cu``.
    options : tuple of str, optional
        NVRTC options added to :data:`NVRTC_OPTIONS` (for example
        ``("-DBLOCK=256",)``).

    Returns
    -------
    cupy.RawModule
        Its kernels by name through ``get_function``.

    Raises
    ------
    RuntimeError
        If CuPy is not installed or there is no usable CUDA device (the
        message says which).
    """
    from linalg._core.engines import require_usable

    require_usable("cupy")
    import cupy

    return _compiled(family, tuple(options), cupy.cuda.Device().id)


@functools.cache
def _compiled(family: str, options: tuple[str, ...], device: int) -> Any:
    import cupy

    with cupy.cuda.Device(device):
        module = cupy.RawModule(code=read_source(family), options=(*NVRTC_OPTIONS, *options))
        module.compile()
    return module
