"""Run asv benchmark classes without asv, side by side, and print their ratios.

Usage, from the repository root::

    python asv_bench/drive.py gpu                       # every class of benchmarks/gpu.py
    python asv_bench/drive.py gpu.SinkhornIteration sketch.CountSketch --repeat 7

For machines where asv is not installed (the GPU machines lent to sessions
have CuPy, torch and numba-cuda but no asv, and no network). Each class is
instantiated per parameter combination as asv would: ``setup_cache`` once per
class, ``setup(*params)`` (a ``NotImplementedError`` skips the combination,
as asv does), one warm-up call of each ``time_*`` method, then ``--repeat``
timed calls whose median is reported; ``track_*`` methods are called once.
``peakmem_*`` methods are not run (they need a fresh process per call). The
table is the one ``ratios.py`` prints from an asv result file: every
``linalg*`` implementation divided by each peer at the same other parameters,
measured in this one run.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "benchmarks")]

from ratios import rows  # noqa: E402


def _param_lists(cls: type) -> list[list[Any]]:
    params = getattr(cls, "params", [])
    if params and not isinstance(params[0], list | tuple):
        return [list(params)]
    return [list(p) for p in params]


def _classes(target: str) -> list[tuple[str, type]]:
    module_name, _, class_name = target.partition(".")
    module = importlib.import_module(module_name)
    found = [
        (f"{module_name}.{name}", cls)
        for name, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__
        and not name.startswith("_")
        and (not class_name or name == class_name)
        and any(m.startswith(("time_", "track_")) for m in dir(cls))
    ]
    if not found:
        raise SystemExit(f"no benchmark class matches {target!r}")
    return found


def _measure(method: Any, args: tuple, repeat: int) -> float:
    method(*args)  # warm-up: compilation, caches, the device's first launch
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        method(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_class(name: str, cls: type, repeat: int) -> dict[str, list]:
    """``{benchmark name: [values, params]}`` in the layout of an asv result file."""
    param_lists = _param_lists(cls)
    methods = sorted(m for m in dir(cls) if m.startswith(("time_", "track_")))
    cache = cls().setup_cache() if hasattr(cls, "setup_cache") else None
    head = () if cache is None else (cache,)
    values: dict[str, list] = {m: [] for m in methods}
    for combo in itertools.product(*param_lists):
        bench = cls()
        try:
            if hasattr(bench, "setup"):
                bench.setup(*head, *combo)
        except NotImplementedError as exc:
            print(f"skipped {name}{combo}: {exc}", file=sys.stderr)
            for m in methods:
                values[m].append(None)
            continue
        for m in methods:
            method, args = getattr(bench, m), (*head, *combo)
            value = _measure(method, args, repeat) if m.startswith("time_") else method(*args)
            values[m].append(value)
            print(f"{name}.{m}{combo}: {value}", file=sys.stderr)
        if hasattr(bench, "teardown"):
            bench.teardown(*head, *combo)
    shown = [[repr(p) for p in params] for params in param_lists]
    return {f"{name}.{m}": [values[m], shown] for m in methods}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="+", help="MODULE or MODULE.CLASS of asv_bench/benchmarks")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per benchmark")
    options = parser.parse_args()
    results: dict[str, list] = {}
    for target in options.targets:
        for name, cls in _classes(target):
            results |= run_class(name, cls, options.repeat)
    print("\n".join(rows(results)))


if __name__ == "__main__":
    main()
