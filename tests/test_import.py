"""`import linalg` stays light: no optional library, no CUDA context."""

import subprocess
import sys

OPTIONAL = ("cupy", "numba", "torch", "jax", "dask", "numba_cuda", "cuda")


def test_import_loads_no_optional_library():
    code = (
        "import sys, linalg, linalg.solvers; "
        f"print(' '.join(m for m in {OPTIONAL!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names():
    import linalg

    for name in linalg.__all__:
        assert hasattr(linalg, name), name
    assert linalg.__version__
