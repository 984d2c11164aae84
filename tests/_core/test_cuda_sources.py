"""CUDA kernel sources: the finder, the include expansion, nvcc compile checks, the wheel."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from linalg._core import random as ref
from linalg._core.cuda_sources import read_source, source_dir, sources

REPO = Path(__file__).resolve().parents[2]
CUDA_DIR = REPO / "cuda"
FAMILIES = sorted(p.stem for p in CUDA_DIR.glob("*.cu"))
NVCC = shutil.which("nvcc")
PIP = (sys.executable, "-m", "pip", "-q")
HAVE_HATCHLING = importlib.util.find_spec("hatchling") is not None


def test_the_checkout_sources_are_found():
    assert source_dir() == CUDA_DIR
    found = sources()
    expected = sorted(p.name for p in CUDA_DIR.iterdir() if p.suffix in (".cu", ".cuh"))
    assert list(found) == expected
    assert {"philox.cuh", "random.cu", "sketch.cu"} <= set(found)
    assert all(path.parent == CUDA_DIR for path in found.values())


@pytest.mark.parametrize("family", FAMILIES)
def test_read_source_inlines_every_header_once(family):
    text = read_source(family)
    assert not re.search(r'^\s*#\s*include\s*"', text, re.MULTILINE)
    assert "#pragma once" not in text
    raw = (CUDA_DIR / f"{family}.cu").read_text()
    for header in re.findall(r'#include "([^"]+)"', raw):
        assert text.count(f"// --- {header} ---") == 1
    assert read_source(f"{family}.cu") == text


def test_unknown_family_names_the_argument():
    with pytest.raises(ValueError, match=r"family must name a kernel source.*'nosuch'"):
        read_source("nosuch")


def _fake_package(tmp_path: Path, files: dict[str, str], folder: str = "_cuda_sources") -> Path:
    package = tmp_path / "linalg"
    (package / folder).mkdir(parents=True)
    for name, text in files.items():
        (package / folder / name).write_text(text)
    return package


def test_an_installed_package_is_preferred_and_headers_nest(tmp_path):
    package = _fake_package(
        tmp_path,
        {
            "a.cuh": '#pragma once\n#include "b.cuh"\nint a;\n',
            "b.cuh": "#pragma once\nint b;\n",
            "k.cu": '#include "a.cuh"\n#include "b.cuh"\nint k;\n',
        },
    )
    (tmp_path / "cuda").mkdir()
    (tmp_path / "cuda" / "other.cu").write_text("int other;\n")
    assert source_dir(package) == package / "_cuda_sources"
    assert list(sources(package)) == ["a.cuh", "b.cuh", "k.cu"]
    text = read_source("k", package=package)
    assert text.index("int b;") < text.index("int a;") < text.index("int k;")
    assert text.count("int b;") == 1


def test_a_checkout_beside_the_package_is_found(tmp_path):
    package = tmp_path / "linalg"
    package.mkdir()
    (tmp_path / "cuda").mkdir()
    (tmp_path / "cuda" / "k.cu").write_text("int k;\n")
    assert source_dir(package) == tmp_path / "cuda"


def test_missing_sources_and_headers_are_reported(tmp_path):
    package = tmp_path / "linalg"
    package.mkdir()
    with pytest.raises(FileNotFoundError, match="installation is incomplete"):
        source_dir(package)
    package = _fake_package(tmp_path / "x", {"k.cu": '#include "gone.cuh"\n'})
    with pytest.raises(ValueError, match=r"'gone\.cuh'"):
        read_source("k", package=package)


def _cuh_constants(name: str) -> tuple[float, ...]:
    text = (CUDA_DIR / "philox.cuh").read_text()
    match = re.search(rf"\b{name}(?:\[\d+\])?\s*=\s*\{{?([^;}}]*)\}}?;", text)
    assert match, name
    return tuple(float.fromhex(v) for v in match.group(1).replace("\n", " ").split(","))


@pytest.mark.parametrize(
    "name",
    [
        "ATANH_SERIES",
        "SQRT_HALF",
        "LN2_HI",
        "LN2_LO",
        "CENTRAL_LIMIT",
        "CENTRAL_R",
        "CENTRAL_NUM",
        "CENTRAL_DEN",
        "NEAR_LIMIT",
        "NEAR_SHIFT",
        "NEAR_NUM",
        "NEAR_DEN",
        "FAR_SHIFT",
        "FAR_NUM",
        "FAR_DEN",
    ],
)
def test_philox_header_constants_are_the_reference_floats(name):
    expected = getattr(ref, f"_{name}")
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert _cuh_constants(name) == tuple(float(v) for v in expected)


def test_philox_header_integer_constants_are_the_reference_ones():
    text = (CUDA_DIR / "philox.cuh").read_text()
    for value in (ref._M0, ref._M1, ref._W0, ref._W1):
        assert f"0x{int(value):08X}u" in text


def _nvcc(source: str, tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    path = tmp_path / "expanded.cu"
    path.write_text(source)
    return subprocess.run(
        [NVCC, "-std=c++17", "-fmad=false", *options, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("family", FAMILIES)
def test_every_source_compiles_with_nvcc(family, arch, tmp_path):
    # What NVRTC gets from the loader: the source with its headers inlined.
    done = _nvcc(read_source(family), tmp_path, f"-arch={arch}", "-c", "-o", "/dev/null")
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr.lower(), done.stderr


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
def test_the_stream_arithmetic_is_never_fused(tmp_path):
    # philox.cuh spells every product __dmul_rn, so even with -fmad=true the
    # compiler may not contract: no fma in the PTX of the stream kernels.
    ptx = tmp_path / "random.ptx"
    done = _nvcc(read_source("random"), tmp_path, "-arch=sm_80", "-fmad=true", "--ptx", "-o", ptx)
    assert done.returncode == 0, done.stderr
    text = ptx.read_text()
    assert "mul.rn.f64" in text
    assert not re.search(r"\bfma\.", text)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not HAVE_HATCHLING:
        pytest.skip("hatchling is not installed (pip install hatchling)")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (found,) = out.glob("linalg_backend-*.whl")
    return found


def test_the_wheel_ships_every_source(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for name in sources():
        assert f"linalg/_cuda_sources/{name}" in names
    assert not any(name.startswith("cuda/") for name in names)


def test_an_installed_wheel_finds_every_source(wheel, tmp_path):
    # A fresh virtual environment, NumPy and friends borrowed from this one
    # through a path file (which does not run this one's editable-install hook).
    env = tmp_path / "env"
    venv.create(env, with_pip=False)
    (site,) = (env / "lib").glob("python*/site-packages")
    borrowed = [p for p in sys.path if p.endswith("site-packages")]
    (site / "borrowed.pth").write_text("\n".join(borrowed) + "\n")
    subprocess.run(
        [*PIP, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    expected = {name: path.read_text() for name, path in sources().items()}
    code = (
        "import json, linalg\n"
        "from linalg._core.cuda_sources import read_source, source_dir, sources\n"
        "found = {name: path.read_text() for name, path in sources().items()}\n"
        "print(json.dumps([linalg.__file__, str(source_dir()), found,\n"
        f"                  {{f: read_source(f) for f in {FAMILIES!r}}}]))\n"
    )
    python = env / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    done = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    module, folder, found, expanded = json.loads(done.stdout)
    assert Path(module).is_relative_to(site)
    assert Path(folder) == site / "linalg" / "_cuda_sources"
    assert found == expected
    assert expanded == {family: read_source(family) for family in FAMILIES}
