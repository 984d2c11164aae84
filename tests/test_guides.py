"""Every user-guide page's Python examples run, in order, as written."""

import importlib.util
import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guide"
PAGES = sorted(GUIDE.glob("*.md"))
OPTIONAL = ("torch", "jax", "cupy", "dask", "distributed")


def _blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_guide_examples_run(page, capsys):
    code = _blocks(page)
    for library in OPTIONAL:
        uses = any(re.search(rf"^\s*(import|from) {library}\b", b, re.M) for b in code)
        if uses and importlib.util.find_spec(library) is None:
            pytest.skip(f"{page.name} uses {library}, which is not installed")
    namespace: dict = {"__name__": f"guide_{page.stem}"}
    for number, block in enumerate(code, 1):
        exec(compile(block, f"{page.name} (block {number})", "exec"), namespace)
