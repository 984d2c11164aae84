"""``python -m linalg``: the version, the engines, and every family at work.

Each family provides ``linalg/<family>/_tour.py`` with a ``tour()`` that runs
its routines on a built-in default problem and yields :class:`TourRow`s.
"""

from __future__ import annotations

import importlib
import platform
import sys

import numpy as np
import scipy

import linalg
from linalg._core.tour import TourRow

FAMILIES = ("solvers", "curvature", "kron", "sketch", "svd", "ot")


def _print_engines() -> None:
    print("engines:")
    for status in linalg.engines().values():
        mark = "yes" if status.usable else "no "
        version = f" {status.version}" if status.version else ""
        print(f"  [{mark}] {status.name}{version}: {status.reason}")


def _print_rows(family: str, rows: list[TourRow]) -> None:
    print(f"\n{family}:")
    width = max(len(row.routine) for row in rows)
    for row in rows:
        print(
            f"  {row.routine:<{width}}  {row.result:<44} error {row.error:9.2e}  "
            f"{row.seconds * 1e3:8.1f} ms  [{row.engine}]"
        )
        if row.note:
            print(f"  {'':<{width}}  {row.note}")


def main() -> int:
    print(f"linalg {linalg.__version__}")
    print(
        f"Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}, "
        f"{platform.machine()}"
    )
    _print_engines()
    print("\nerror: relative error against an exact dense or direct solution")
    for family in FAMILIES:
        module = importlib.import_module(f"linalg.{family}._tour")
        _print_rows(family, list(module.tour()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
