"""Where a collapsed dense network fell behind: validation accuracy of each surveyed seed's dense trunk at W_k
(the end of the early phase) and at T, read from a dense-only survey's cache (issue 22). Trains nothing.

  .venv/bin/python scripts/collapse_trace.py docs/search/survey-dense.toml --rows docs/search/survey-dense.jsonl \
      --cache /tmp/survey-dense

Per candidate: the collapsed seeds' accuracy at k and their rank there among all its seeds (1 = worst), beside
the median at k; then how many seeds at k lie below the worst collapsed seed's accuracy at k."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from bench import paths
from bench.cache import load_tensors
from bench.errors import BenchError
from bench.experiments.setup import RunOptions, prepare
from bench.presets import get_preset
from bench.search_rule import collapsed, load_rule
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
        at_k = []
        for r in mine:
            rep = Replicate(exp, r["seed"], env)
            done = rep.stage_dir(0)
            if not (done / paths.WK).exists():
                raise BenchError(f"no trunk of seed {r['seed']} ({cand.name}) in {cache}: run the survey there first")
            model = rep.new_model()
            model.load_state_dict(load_tensors(done / paths.WK, env.device))
            at_k.append(evaluate(model, env.data.x_val, env.data.y_val))
        final = [r["dense"] for r in mine]
        fell = collapsed(final, rule.stability["collapse_points"], rule.stability["collapse_robust_sds"])
        order = sorted(range(len(mine)), key=lambda i: at_k[i])
        out[cand.name] = {"median_at_k": statistics.median(at_k), "min_at_k": min(at_k),
                          "collapsed": {mine[i]["seed"]: {"at_k": at_k[i], "rank_at_k": order.index(i) + 1,
                                                          "final": final[i]} for i in fell}}
        print(f"{cand.name}: at k median {statistics.median(at_k):.2f}, worst {min(at_k):.2f}; collapsed: "
              + (", ".join(f"seed {mine[i]['seed']} {at_k[i]:.2f} at k (rank {order.index(i) + 1} of {len(mine)}), "
                           f"{final[i]:.2f} at T" for i in fell) or "none"))
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
