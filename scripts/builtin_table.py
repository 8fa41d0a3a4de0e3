"""Markdown table of the built-in perturbations' drops from `bench run --json` outputs.

    python scripts/builtin_table.py OUT_DIR   (the folder scripts/measure_default.sh wrote)
"""

import json
import sys
from pathlib import Path

ORDER = ["identity", "rewind-to-init", "lottery-ticket", "reinit", "reinit-keep-sign", "init-magnitude-keep-sign",
         "keep-magnitude-init-sign", "random-sign", "shuffle-layer", "shuffle-layer-keep-sign", "shuffle-filter"]


def main(folder: Path) -> None:
    runs = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
    noise = [n for n in runs if n.startswith("gaussian-noise")]
    names = ORDER + sorted(noise, key=lambda n: float(n.rsplit("-", 1)[1]))
    first = runs["identity"]
    print(f"`{first['preset']}`, level {first['level']} ({first['percent_remaining']:.1f}% of weights remaining), "
          f"n = {first['n']} seeds (0-2), CPU. Dense {first['summary']['dense']['mean']:.2f}%, "
          f"ticket {first['summary']['ticket']['mean']:.2f}%.\n")
    print("| perturbation | drop (points) | 95% CI | per seed | perturbed acc. % | effective std |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in names:
        if name not in runs:
            continue
        run = runs[name]
        drop = run["summary"]["drop"]
        label = name if not run["params"] else f"{run['perturbation']} ({', '.join(f'{k}={v}' for k, v in run['params'].items())})"
        std = sum(r["effective_std"] for r in run["results"]) / len(run["results"])
        seeds = " / ".join(f"{v:.2f}" for v in drop["values"])
        print(f"| {label} | {drop['mean']:.2f} | [{drop['low']:.2f}, {drop['high']:.2f}] | {seeds} | "
              f"{run['summary']['perturbed']['mean']:.2f} | {std:.3f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
