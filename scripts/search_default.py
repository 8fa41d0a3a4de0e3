"""Search for the default preset: does a candidate show the paper's effect on 3 seeds?

For one candidate configuration (a variant of mnist1d-resnet) and each seed,
train the dense trunk and the IMP levels, then at the levels asked for retrain
from W_0 under the mask (rewind-to-init) and from a fresh initialisation
(reinit). Prints one JSON line per (level, seed) and a summary per level against
the bar of issue 2: ticket within 1.5 points of dense, rewind-to-init below the
ticket on average, reinit at least 4 points below the ticket.

    python scripts/search_default.py --widths 8,16,32 --rewind 20it --fraction 0.6 --levels 4 --check 3,4
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import replace
from pathlib import Path

import torch

from bench.config import config_hash
from bench.data import load_dataset
from bench.plugins import default_plugins
from bench.presets import get_preset
from bench.stages import Env, Replicate, execute


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", default="8,16,32")
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--rewind", default="20it")
    ap.add_argument("--fraction", type=float, default=0.6)
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--check", default="3,4", help="levels at which to run the controls")
    ap.add_argument("--steps", default="15ep")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cache", default="/tmp/search")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = get_preset("mnist1d-resnet").experiment
    exp = replace(
        base,
        model=replace(base.model, widths=tuple(int(w) for w in args.widths.split(",")), blocks_per_stage=args.blocks),
        prune=replace(base.prune, fraction=args.fraction, levels=args.levels),
        rewind=args.rewind,
        train=replace(base.train, steps=args.steps),
    )
    cache = Path(args.cache)
    env = Env(cache=cache, device=torch.device("cpu"), data=load_dataset(exp.data, cache / "data", torch.device("cpu")))
    perts = default_plugins().perturbations()
    levels = [int(x) for x in args.check.split(",")]
    rows = []
    reps = [Replicate(exp, seed, env) for seed in range(args.seeds)]
    for level in range(max(levels) + 1):  # the seeds of each stage train together (bench.fused)
        execute([rep.level_job(level) for rep in reps], env)
    for level in levels:
        for name in ("rewind-to-init", "reinit"):
            execute([rep.branch_job(perts[name], {}, level, 0) for rep in reps], env)
    for rep in reps:
        seed = rep.seed
        dense = rep.trunk()["accuracy"]
        for level in levels:
            ticket = rep.level(level)
            row = {"config": config_hash(exp), "widths": args.widths, "rewind": args.rewind,
                   "fraction": args.fraction, "steps": args.steps, "level": level,
                   "density": ticket["sparsity"]["density"], "seed": seed, "dense": dense,
                   "ticket": ticket["accuracy"]}
            for name in ("rewind-to-init", "reinit"):
                row[name] = rep.branch(perts[name], {}, level, 0)["accuracy"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = []
    for level in levels:
        sel = [r for r in rows if r["level"] == level]
        mean = {k: statistics.mean(r[k] for r in sel) for k in ("dense", "ticket", "rewind-to-init", "reinit")}
        verdict = {
            "ticket_within_1.5_of_dense": mean["dense"] - mean["ticket"] <= 1.5,
            "rewind0_below_ticket": mean["rewind-to-init"] < mean["ticket"],
            "reinit_4_below_ticket": mean["ticket"] - mean["reinit"] >= 4,
        }
        summary.append({"level": level, "density": sel[0]["density"], **mean, **verdict, "all": all(verdict.values())})
        print("SUMMARY", json.dumps(summary[-1]), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
