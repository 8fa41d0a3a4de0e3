"""docs/default-preset.md's search table from scripts/search_default.py's output (validation accuracy only).

    python scripts/search_table.py docs/search/validation.jsonl

The last SUMMARY line of each (configuration, level) counts (a rerun appends a new one).
"""

import json
import sys
from pathlib import Path


def fmt_ci(pair: list[float]) -> str:
    return f"[{pair[0]:.2f}, {pair[1]:.2f}]"


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main(path: Path) -> None:
    last: dict[tuple[str, int], dict] = {}
    for line in path.read_text().splitlines():
        d = json.loads(line)
        if d.get("SUMMARY"):
            last[(d["config_hash"], d["level"])] = d
    print("| lr | k | other changes | level | % left | n | dense | ticket | dense - ticket | ticket - imp-rewind-0 "
          "(95% CI) | imp-rewind-0 - reinit (95% CI) | bars met |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    base = {"data.train_examples", "train.steps", "train.milestones", "train.lr", "rewind"}
    levels = {}  # IMP levels trained per configuration (--levels is not an override)
    for chash, level in last:
        levels[chash] = max(levels.get(chash, 0), level)
    for (chash, level), d in sorted(last.items(), key=lambda kv: (kv[1]["overrides"].get("train.lr"),
                                                                 kv[1]["overrides"].get("rewind"), kv[0])):
        o = d["overrides"]
        other = ", ".join([f"{k}={v}" for k, v in o.items() if k not in base]
                          + ([f"{levels[d['config_hash']]} levels"] if levels[d["config_hash"]] != 3 else [])) or "-"
        if o.get("data.train_examples") != "4000":
            other = f"{other}, train examples {o.get('data.train_examples')}"
        reinit = (f"{d['ref_minus_reinit']:.2f} {fmt_ci(d['ref_minus_reinit_ci'])}" if "ref_minus_reinit" in d else "-")
        bars = [d["bar_ticket"], d["bar_ref"]] + ([d["bar_reinit"]] if "bar_reinit" in d else [])
        met = f"{sum(bars)} of {len(bars)}"
        print(f"| {o.get('train.lr')} | {o.get('rewind')} | {other} | {level} | {d['percent_remaining']:.1f} | {d['n']} | "
              f"{d['dense']:.2f} | {d['ticket']:.2f} | {d['dense_minus_ticket']:.2f} | "
              f"{d['ticket_minus_ref']:.2f} {fmt_ci(d['ticket_minus_ref_ci'])} | {reinit} | {met} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
