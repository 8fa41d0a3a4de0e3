"""The README's table of the built-in perturbations' drops, and the issue-11 bars, from committed result files.

    python scripts/builtin_table.py leaderboard/results --level 3

Test accuracy only (every reported number is test accuracy; choices were made on validation data).
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path

from bench.stats import summarize

ORDER = ["identity", "data-order", "imp-rewind-0", "rewind-to-init", "lottery-ticket", "reinit", "reinit-keep-sign",
         "init-magnitude-keep-sign", "keep-magnitude-init-sign", "random-sign", "shuffle-layer",
         "shuffle-layer-keep-sign", "shuffle-filter"]


def label(record: dict) -> str:
    p = record["perturbation"]
    return p["name"] + (f" ({', '.join(f'{k}={v}' for k, v in p['params'].items())})" if p["params"] else "")


def ci(values: list[float]) -> str:
    s = summarize(values)
    return f"{s.mean:.2f} [{s.low:.2f}, {s.high:.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path)
    ap.add_argument("--level", type=int, required=True)
    ap.add_argument("--preset", default="mnist1d-resnet")
    args = ap.parse_args()
    runs: dict[str, dict[int, dict]] = defaultdict(dict)
    for path in sorted(args.results.rglob("seed-*.json")):
        record = json.loads(path.read_text())
        if record["preset"] == args.preset and record["level"] == args.level and record.get("kind") != "pretraining":
            runs[label(record)][record["seed"]] = record
    names = [n for n in ORDER if n in runs] + sorted(n for n in runs if n not in ORDER)
    first = next(iter(runs[names[0]].values()))
    seeds = sorted(runs[names[0]])
    dense = [runs[names[0]][s]["accuracy"]["dense"] for s in seeds]
    ticket = [runs[names[0]][s]["accuracy"]["ticket"] for s in seeds]
    print(f"`{args.preset}`, level {args.level} ({100 * first['density']:.1f}% of weights remaining), "
          f"n = {len(seeds)} seeds ({', '.join(map(str, seeds))}), test accuracy. Dense {summarize(dense).mean:.2f}%, "
          f"ticket {summarize(ticket).mean:.2f}%.\n")
    print("| perturbation | drop (points) | 95% CI | per seed | perturbed acc. % | effective std |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in names:
        recs = [runs[name][s] for s in sorted(runs[name])]
        drop = summarize([r["drop"] for r in recs])
        per = " / ".join(f"{r['drop']:.2f}" for r in recs)
        std = sum(r["effective_std"] for r in recs) / len(recs)
        print(f"| {name} | {drop.mean:.2f} | [{drop.low:.2f}, {drop.high:.2f}] | {per} | "
              f"{summarize([r['accuracy']['perturbed'] for r in recs]).mean:.2f} | {std:.3f} |")
    # the bars of issue 11, paired by seed
    print()
    print(f"- dense - ticket: {ci([d - t for d, t in zip(dense, ticket)])} (bar: at most 1.5)")
    if "imp-rewind-0" in runs:
        ref = [runs["imp-rewind-0"][s]["accuracy"]["perturbed"] for s in seeds]
        print(f"- ticket - imp-rewind-0: {ci([t - r for t, r in zip(ticket, ref)])} (bar: at least 1.5, interval above 0)")
        if "reinit" in runs:
            reinit = [runs["reinit"][s]["accuracy"]["perturbed"] for s in seeds]
            print(f"- imp-rewind-0 - reinit: {ci([r - x for r, x in zip(ref, reinit)])} (bar: at least 2, interval above 0)")
        if "rewind-to-init" in runs:
            rti = [runs["rewind-to-init"][s]["accuracy"]["perturbed"] for s in seeds]
            print(f"- ticket - rewind-to-init: {ci([t - r for t, r in zip(ticket, rti)])}")
    if "identity" in runs:
        print(f"- identity drops: {sorted({r['drop'] for r in runs['identity'].values()})} (bar: exactly 0)")


if __name__ == "__main__":
    main()
