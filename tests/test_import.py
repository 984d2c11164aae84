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


def test_families_are_imported_on_first_use():
    code = (
        "import sys, linalg; "
        "before = [f for f in ('curvature', 'kron', 'ot', 'sketch', 'solvers', 'svd') "
        "if 'linalg.' + f in sys.modules]; "
        "ot = linalg.ot; "
        "from linalg import svd; "
        "print(before, ot.__name__, svd.__name__, 'scipy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "linalg.ot", "linalg.svd", "True"]


def test_unknown_attributes_raise_attribute_error():
    import linalg

    assert {"curvature", "ot", "svd"} <= set(dir(linalg))
    try:
        linalg.no_such_family  # noqa: B018
    except AttributeError as exc:
        assert "no_such_family" in str(exc)
    else:
        raise AssertionError("linalg.no_such_family did not raise")
