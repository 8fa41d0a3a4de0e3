"""Search for the default preset on validation data (issue 11).

For one candidate configuration (given as overrides of the base below) and each search seed, train
the dense trunk, the preset's IMP chain (rewound to k) and the paper's reference chain (IMP rewound to
iteration 0, its own masks) to ``--levels``, and ``reinit`` at the last level. Every number printed is
VALIDATION accuracy (MNIST-1D examples generated with their own seed): test accuracy is never read, so
the choice cannot leak into the reported results, which come from other seeds (the preset's defaults).

Prints one JSON line per (level, seed) and one SUMMARY line per level with the bars of issue 11:
ticket within 1.5 of dense; reference (imp-rewind-0) at least 1.5 below the ticket with its 95% interval
above 0; reinit at least 2 below the reference with its interval above 0. ``--out`` appends the lines.

    python scripts/search_default.py --set train.lr=0.2 --set rewind=32it --seeds 1000-1005
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from bench.cli.options import Seeds
from bench.config import Experiment, config_hash, full
from bench.experiments.setup import RunOptions, prepare
from bench.plugins import default_plugins
from bench.presets import get_preset
from bench.stages import execute, Replicate, train_chain
from bench.stats import summarize


def apply_overrides(exp: Experiment, overrides: dict[str, str]) -> Experiment:
    """``{"train.lr": "0.2", "rewind": "32it", "model.widths": "[8,16]"}`` applied to ``exp`` (JSON values)."""
    for key, text in overrides.items():
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        value = tuple(value) if isinstance(value, list) else value
        if key == "rewind":
            exp = replace(exp, rewind=str(value))
        else:
            section, name = key.split(".")
            exp = exp.with_overrides(**{section: {name: value}})
    return exp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", action="append", default=[], help="section.field=value, e.g. train.lr=0.2")
    ap.add_argument("--levels", type=int, default=3, help="IMP levels to train (bars reported at each)")
    ap.add_argument("--seeds", default="1000-1005", help="search seeds: never the preset's default seeds")
    ap.add_argument("--cache", default="/tmp/search")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    preset = get_preset("mnist1d-resnet")
    overrides = dict(item.split("=", 1) for item in args.set)
    exp = apply_overrides(preset.experiment, overrides)
    exp = replace(exp, prune=replace(exp.prune, levels=args.levels))
    seeds = Seeds().convert(args.seeds, None, None)
    if set(seeds) & set(range(preset.seeds)):
        raise SystemExit(f"search seeds {seeds} overlap the preset's default seeds 0..{preset.seeds - 1}")
    setup = prepare(preset, RunOptions(cache=Path(args.cache)), seeds=seeds, level=args.levels, experiment=exp)
    env = setup.env
    assert env.data.x_val is not None, "the search needs a validation split (data.validation_examples)"
    reps = [Replicate(exp, seed, env) for seed in setup.seeds]
    t0 = time.perf_counter()
    train_chain(reps, args.levels, env)
    train_chain(reps, args.levels, env, rewind=0)
    reinit = default_plugins().perturbation("reinit")
    execute([rep.branch_job(reinit, {}, args.levels, 0) for rep in reps], env)
    seconds = time.perf_counter() - t0
    rows = []
    for rep in reps:
        dense = rep.trunk_record()["val_accuracy"]
        for level in range(1, args.levels + 1):
            row = {"config_hash": config_hash(exp), "overrides": overrides, "level": level,
                   "percent_remaining": round(100 * rep.record(level)["sparsity"]["density"], 2),
                   "seed": rep.seed, "dense": dense, "ticket": rep.record(level)["val_accuracy"],
                   "imp-rewind-0": rep.record(level, rewind=0)["val_accuracy"]}
            if level == args.levels:
                row["reinit"] = rep.branch(reinit, {}, level, 0)["val_accuracy"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    lines = [json.dumps(r) for r in rows]
    for level in range(1, args.levels + 1):
        sel = [r for r in rows if r["level"] == level]
        gap = summarize([r["dense"] - r["ticket"] for r in sel])
        ref = summarize([r["ticket"] - r["imp-rewind-0"] for r in sel])
        summary = {"SUMMARY": True, "config_hash": config_hash(exp), "overrides": overrides, "level": level,
                   "percent_remaining": sel[0]["percent_remaining"], "n": len(sel), "seconds": round(seconds, 1),
                   "dense": summarize([r["dense"] for r in sel]).mean,
                   "ticket": summarize([r["ticket"] for r in sel]).mean,
                   "dense_minus_ticket": gap.mean, "ticket_minus_ref": ref.mean,
                   "ticket_minus_ref_ci": [ref.low, ref.high],
                   "bar_ticket": gap.mean <= 1.5, "bar_ref": ref.mean >= 1.5 and ref.low > 0}
        if "reinit" in sel[0]:
            rein = summarize([r["imp-rewind-0"] - r["reinit"] for r in sel])
            summary |= {"ref_minus_reinit": rein.mean, "ref_minus_reinit_ci": [rein.low, rein.high],
                        "bar_reinit": rein.mean >= 2 and rein.low > 0}
        print(json.dumps(summary), flush=True)
        lines.append(json.dumps(summary))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as fh:
            fh.write(json.dumps({"CONFIG": full(exp)}) + "\n")
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
