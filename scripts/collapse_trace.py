"""Where a collapsed dense network fell behind: validation accuracy of each surveyed seed's dense trunk at W_k
(the end of the early phase) and at T, read from a dense-only survey's cache (issue 22). Trains nothing.

  .venv/bin/python scripts/collapse_trace.py docs/search/survey-dense.toml --rows docs/search/survey-dense.jsonl \
      --cache /tmp/survey-dense

Per candidate: the collapsed seeds' accuracy at k and their rank there among all its seeds (1 = worst), beside
the median and the worst at k."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from bench import paths
from bench.errors import BenchError
from bench.experiments.setup import RunOptions, prepare
from bench.presets import get_preset
from bench.search_rule import collapsed_seeds, load_rule
from bench.stages import Replicate
from bench.training import evaluate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_default import experiment_of  # noqa: E402  (the same candidate experiments as the survey)


def trace(rule_path: Path, rows_path: Path, cache: Path) -> dict[str, dict]:
    rule = load_rule(rule_path)
    rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()]
    out = {}
    for cand in rule.candidates:
        mine = sorted((r for r in rows if r["candidate"] == cand.name), key=lambda r: r["seed"])
        exp = experiment_of(rule, cand.overrides)
        options = RunOptions(cache=cache, group_size=rule.group_size, evaluate_test=False)
        env = prepare(get_preset(rule.preset), options, seeds=[r["seed"] for r in mine], level=0, experiment=exp,
                      writes_results=False).env
        at_k = {}
        for r in mine:
            rep = Replicate(exp, r["seed"], env)
            if not (rep.stage_dir(0) / paths.WK).exists():
                raise BenchError(f"no trunk of seed {r['seed']} ({cand.name}) in {cache}: run the survey there first")
            model = rep.new_model()
            model.load_state_dict(rep.trunk_state(rep.k))
            at_k[r["seed"]] = evaluate(model, env.data.x_val, env.data.y_val)
        rank = {seed: i + 1 for i, seed in enumerate(sorted(at_k, key=at_k.get))}  # 1 = worst at k
        final = {r["seed"]: r["dense"] for r in mine}
        fell = collapsed_seeds(mine, rule.stability)
        out[cand.name] = {"median_at_k": statistics.median(at_k.values()), "min_at_k": min(at_k.values()),
                          "collapsed": {s: {"at_k": at_k[s], "rank_at_k": rank[s], "final": final[s]} for s in fell}}
        print(f"{cand.name}: at k median {statistics.median(at_k.values()):.2f}, worst {min(at_k.values()):.2f}; "
              "collapsed: " + (", ".join(f"seed {s} {at_k[s]:.2f} at k (rank {rank[s]} of {len(mine)}), "
                                         f"{final[s]:.2f} at T" for s in fell) or "none"))
    print(json.dumps({"TRACE": out}))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rule", type=Path)
    ap.add_argument("--rows", type=Path, required=True)
    ap.add_argument("--cache", type=Path, required=True)
    args = ap.parse_args()
    try:
        trace(args.rule, args.rows, args.cache)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
