"""The README's table of the built-in perturbations' drops, and the bars of issues 11, 21 and 22, from result files.

    python scripts/builtin_table.py leaderboard/results --level 3

Test accuracy only (every reported number is test accuracy; choices were made on validation data).
"""

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from bench.report.paired import paired
from bench.results import is_instability, load_results
from bench.search_rule import collapsed, load_rule
from bench.stats import summarize

NOISE_FLOOR = "data-order"  # the noise-floor control: the ticket retrained with another data order
# the rule that chose the preset (tests/test_search.py checks it): its collapse criterion defines the "no collapsed
# seed" bar
RULE = Path(__file__).resolve().parent.parent / "docs" / "search" / "rule-v6.toml"

ORDER = ["identity", NOISE_FLOOR, "imp-rewind-0", "rewind-to-init", "lottery-ticket", "reinit", "reinit-keep-sign",
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
    for result in load_results([args.results], strict=True).results:  # validated; instability records apart
        record = result.data
        if is_instability(record) or record.get("kind") == "pretraining":
            continue
        if record["preset"] == args.preset and record["level"] == args.level:
            runs[label(record)][record["seed"]] = record
    names = [n for n in ORDER if n in runs] + sorted(n for n in runs if n not in ORDER)
    first = next(iter(runs[names[0]].values()))
    seeds = sorted(runs[names[0]])
    dense = [runs[names[0]][s]["accuracy"]["dense"] for s in seeds]
    ticket = [runs[names[0]][s]["accuracy"]["ticket"] for s in seeds]
    print(f"`{args.preset}`, level {args.level} ({100 * first['density']:.1f}% of weights remaining), "
          f"n = {len(seeds)} seeds ({', '.join(map(str, seeds))}), test accuracy. Dense {summarize(dense).mean:.2f}%, "
          f"ticket {summarize(ticket).mean:.2f}%.\n")
    print("| perturbation | n | drop (points) | 95% CI | median | min / max | perturbed acc. % | effective std |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        recs = [runs[name][s] for s in sorted(runs[name])]
        drops = [r["drop"] for r in recs]
        drop = summarize(drops)
        stds = [r["effective_std"] for r in recs if r.get("effective_std") is not None]
        std = f"{sum(stds) / len(stds):.3f}" if stds else "-"
        print(f"| {name} | {len(recs)} | {drop.mean:.2f} | [{drop.low:.2f}, {drop.high:.2f}] | "
              f"{statistics.median(drops):.2f} | {min(drops):.2f} / {max(drops):.2f} | "
              f"{summarize([r['accuracy']['perturbed'] for r in recs]).mean:.2f} | {std} |")
    print()
    bars(runs, seeds, dense, ticket)


def _acc(runs: dict, name: str, seeds: list[int]) -> dict[int, float]:
    return {s: runs[name][s]["accuracy"]["perturbed"] for s in seeds if s in runs[name]}


def bars(runs: dict, seeds: list[int], dense: list[float], ticket: list[float]) -> None:
    """The bars of issues 11, 21 and 22 on test accuracy, paired by seed, with the decision test's p."""
    rows = []

    def row(bar: str, a: dict[int, float], b: dict[int, float], misses) -> None:
        """``misses(c)`` lists how the paired comparison ``c`` falls short of the bar (none: met); None: no bar."""
        c = paired(a, b)
        p = c.p_exact if c.p_exact is not None else c.p_wilcoxon
        short = None if misses is None else misses(c)
        rows.append((bar, f"{c.mean:.2f} [{c.low:.2f}, {c.high:.2f}], median {c.median:.2f}, n = {c.n}, "
                          f"t p = {c.p_t:.2g}, {c.test.split(' (')[0]} p = {p:.2g}",
                     "-" if short is None else "**no**: " + "; ".join(short) if short else "yes"))

    def at_least(bar: float):  # "mean at least bar, interval above 0"
        return lambda c: ([f"mean missed by {bar - c.mean:.2f}"] if c.mean < bar else []) + (
            [f"interval's low end {c.low:.2f}, not above 0"] if c.low <= 0 else [])

    def noise_floor(c) -> list[str]:  # "mean within +-1.0, interval inside +-1.5"
        return ([f"mean {c.mean:.2f} outside +-1.0"] if abs(c.mean) > 1.0 else []) + (
            [f"interval [{c.low:.2f}, {c.high:.2f}] not inside +-1.5"] if c.low < -1.5 or c.high > 1.5 else [])

    d, t = dict(zip(seeds, dense)), dict(zip(seeds, ticket))
    row("dense - ticket at most 1.5", d, t, lambda c: [f"mean over by {c.mean - 1.5:.2f}"] if c.mean > 1.5 else [])
    if "imp-rewind-0" in runs:
        ref = _acc(runs, "imp-rewind-0", seeds)
        row("ticket - `imp-rewind-0` at least 1.5, interval above 0", t, ref, at_least(1.5))
        if "reinit" in runs:
            row("`imp-rewind-0` - `reinit` at least 2, interval above 0", ref, _acc(runs, "reinit", seeds),
                at_least(2.0))
        if "rewind-to-init" in runs:
            row("(beside it) ticket - `rewind-to-init`", t, _acc(runs, "rewind-to-init", seeds), None)
    if NOISE_FLOOR in runs:
        row(f"`{NOISE_FLOOR}` (noise floor): mean within +-1.0, interval inside +-1.5", t,
            _acc(runs, NOISE_FLOOR, seeds), noise_floor)
    points, sds = (load_rule(RULE).stability[k] for k in ("collapse_points", "collapse_robust_sds"))
    fallen = [f"{key} of seed {seeds[i]}" for key, values in (("dense", dense), ("ticket", ticket))
              for i in collapsed(values, points, sds)]
    rows.append((f"no collapsed seed (dense or ticket more than {points:g} points and {sds:g} robust SDs below "
                 "the median)",
                 ", ".join(fallen) or "none", "yes" if not fallen else "**no**"))
    if "identity" in runs:
        ident = sorted({r["drop"] for r in runs["identity"].values()})
        rows.append(("`identity` exactly 0", f"drops {ident}", "yes" if ident == [0.0] else "**no**"))
    print("| bar | measured on test (paired by seed) | met |")
    print("| --- | --- | --- |")
    for bar, measured, met in rows:
        print(f"| {bar} | {measured} | {met} |")


if __name__ == "__main__":
    main()
