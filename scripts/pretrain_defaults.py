"""Measure the default preset's pre-training learning rate on validation data only (docs/early-phase.md).

For each candidate (lr, warm-up) and each pre-training task, pre-train the dense network of seeds that are not
the preset's (3000-3002 by default), then train it on the real task to T, and print one row per candidate: the
lowest pre-training-task accuracy over seeds (with its chance level) and the largest shortfall of the
dense-after-pre-training network's VALIDATION accuracy below the normal dense network's. The test split is
evaluated by the harness but never printed or read here.

    .venv/bin/python scripts/pretrain_defaults.py --cache-dir /tmp/pretrain-hp-cache --data-dir DATA
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.experiments.pretrain import run_pretraining
from bench.experiments.setup import RunOptions
from bench.presets import get_preset

TASKS = ("rotation", "random-labels", "blur", "blur-rotation")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", type=Path, required=True)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--seeds", default="3000,3001,3002")
    ap.add_argument("--lrs", default="0.05,0.1,0.2,0.4")
    ap.add_argument("--warmups", default="0it,32it")
    ap.add_argument("--tasks", default=",".join(TASKS))
    args = ap.parse_args()
    preset = get_preset("mnist1d-resnet")
    options = RunOptions(cache=args.cache_dir, device="cpu", data_dir=args.data_dir)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for warmup in args.warmups.split(","):
        for lr in args.lrs.split(","):
            for task in args.tasks.split(","):
                out = run_pretraining(preset, task, {"lr": lr, "warmup": warmup, "schedule": "constant"}, options,
                                      seeds=seeds, level=0)
                task_margin = min(r["pretraining"]["task_accuracy"] - r["pretraining"]["task_chance"]
                                  for r in out.records)
                low_task = min(out.records, key=lambda r: r["pretraining"]["task_accuracy"])["pretraining"]
                shortfall = max(r["validation_accuracy"]["dense"] - r["validation_accuracy"]["pretrained_dense"]
                                for r in out.records)
                row = {"lr": float(lr), "warmup": warmup, "task": task, "min_task_accuracy": low_task["task_accuracy"],
                       "its_chance": low_task["task_chance"], "min_task_margin": task_margin,
                       "max_val_shortfall": shortfall,
                       "val_dense": [r["validation_accuracy"]["dense"] for r in out.records],
                       "val_pretrained_dense": [r["validation_accuracy"]["pretrained_dense"] for r in out.records]}
                rows.append(row)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
