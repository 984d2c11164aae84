"""Print the ratios ours / peer from the newest asv result file, as Markdown.

Usage: ``python ratios.py [RESULT.json]`` from ``asv_bench/`` after
``asv run --python=same --set-commit-hash $(git rev-parse HEAD)``. For every
``time_*`` and ``peakmem_*`` benchmark with an ``impl`` parameter, each
implementation's value is divided by the peer's (the first ``impl`` not
starting with ``linalg``), within the same run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def newest_result() -> Path:
    files = [p for p in Path(".asv/results").glob("*/*.json") if p.name != "machine.json"]
    return max(files, key=lambda p: p.stat().st_mtime)


def rows(results: dict) -> list[str]:
    lines = ["| benchmark | impl | value | ratio (ours / peer) |", "| --- | --- | --- | --- |"]
    for name, (values, params, *_) in sorted(results.items()):
        impls = [p.strip("'") for p in params[0]] if params else []
        peers = [i for i in impls if not i.startswith("linalg")]
        kind = name.rsplit(".", 1)[-1].split("_", 1)[0]
        for impl, value in zip(impls, values, strict=True):
            ratio = ""
            if kind in {"time", "peakmem"} and peers and value is not None:
                peer_value = values[impls.index(peers[0])]
                ratio = f"{value / peer_value:.2f} (vs {peers[0]})" if peer_value else ""
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            lines.append(f"| {name} | {impl} | {shown} | {ratio} |")
    return lines


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else newest_result()
    data = json.loads(path.read_text())
    print(f"results: {path} (commit {data['commit_hash'][:8]})\n")
    print("\n".join(rows(data["results"])))


if __name__ == "__main__":
    main()
