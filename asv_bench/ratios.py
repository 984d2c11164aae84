"""Print the ratios ours / peer from the newest asv result file, as Markdown.

Usage: ``python ratios.py [RESULT.json]`` from ``asv_bench/`` after
``asv run --python=same --set-commit-hash $(git rev-parse HEAD)``. For every
``time_*`` and ``peakmem_*`` benchmark whose first parameter is ``impl``, each
implementation's value is divided by the peer's (the first ``impl`` not
starting with ``linalg``) at the same values of the other parameters, within the
same run; a ``linalg*`` value is divided by every peer's.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path


def newest_result() -> Path:
    files = [p for p in Path(".asv/results").glob("*/*.json") if p.name != "machine.json"]
    return max(files, key=lambda p: p.stat().st_mtime)


def rows(results: dict) -> list[str]:
    lines = ["| benchmark | impl | value | ratio (ours / peer) |", "| --- | --- | --- | --- |"]
    for name, (values, params, *_) in sorted(results.items()):
        if not params:
            continue
        combos = [tuple(p.strip("'") for p in c) for c in itertools.product(*params)]
        value_of = dict(zip(combos, values, strict=True))
        peers = [i for i in dict.fromkeys(c[0] for c in combos) if not i.startswith("linalg")]
        kind = name.rsplit(".", 1)[-1].split("_", 1)[0]
        for (impl, *rest), value in value_of.items():
            ratios = []
            if kind in {"time", "peakmem"} and value is not None:
                for peer in peers if impl.startswith("linalg") else peers[:1]:
                    peer_value = value_of[(peer, *rest)]
                    if peer_value:
                        ratios.append(f"{value / peer_value:.2f} (vs {peer})")
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            label = f"{impl} ({', '.join(rest)})" if rest else impl
            lines.append(f"| {name} | {label} | {shown} | {'; '.join(ratios)} |")
    return lines


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else newest_result()
    data = json.loads(path.read_text())
    print(f"results: {path} (commit {data['commit_hash'][:8]})\n")
    print("\n".join(rows(data["results"])))


if __name__ == "__main__":
    main()
