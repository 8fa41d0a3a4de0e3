"""Per-replicate gradient norms of the default preset's dense training (issue 22): the scale `train.clip_norm`
is set against. Trains one fused group of validation-only seeds as the harness trains a dense trunk (W_0 from
the seed, the seed's data order, the preset's schedule) and records each replicate's gradient L2 norm at every
step, before any clipping. Writes nothing to a cache; evaluates nothing.

  .venv/bin/python scripts/grad_norms.py --seeds 2200,2201,2202 [--preset mnist1d-resnet] [--data-dir DIR]

Prints, per phase of training (warm-up, the rest of the early phase up to k, the high-rate phase after k, the
decayed phases), the median, 90th and 99th percentile and maximum of the per-step norms over the seeds."""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import bench  # noqa: F401  (pins the kernels' env vars before torch loads)
import torch

from bench import fused, numerics
from bench.data import BatchStream, load_dataset
from bench.errors import BenchError
from bench.execute import Env
from bench.presets import get_preset
from bench.stages import Replicate
from bench.training import Trainer


def norms_per_step(preset: str, seeds: list[int], data_dir: Path) -> tuple[Replicate, list[list[float]]]:
    numerics.pin_threads()
    exp = get_preset(preset).experiment
    data = load_dataset(exp.data, data_dir, torch.device("cpu"))
    env = Env(cache=data_dir, device=torch.device("cpu"), data=data, group_size=len(seeds))
    reps = [Replicate(exp, seed, env) for seed in seeds]
    r = len(reps)
    model = fused.build(exp.model, data.in_channels, data.num_classes, r)
    model.load_state_dict(fused.fuse([rep.initial_model().state_dict() for rep in reps]))
    trainer = Trainer(model, exp.train, reps[0].schedule, loss=fused.loss, replicas=r)
    stream = fused.FusedStream([BatchStream(data, exp.train.batch_size, rep.seed) for rep in reps])
    out: list[list[float]] = []
    # Trainer.step's own clipping hook turned into a recorder: a non-zero bound makes step() call it, and it
    # records without clipping, so this is the unclipped training, step for step
    trainer.clip_norm = math.inf
    trainer.clip_gradients = lambda: out.append(trainer.gradient_norms().tolist())
    for step in range(reps[0].T):
        trainer.step(step, *stream.batch(step))
    return reps[0], out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="mnist1d-resnet")
    ap.add_argument("--seeds", required=True, help="one fused group, e.g. 2200,2201,2202")
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/grad-norms-data"))
    args = ap.parse_args()
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
        rep, norms = norms_per_step(args.preset, seeds, args.data_dir)
    except (BenchError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bounds = sorted({0, rep.schedule.warmup, rep.k, *rep.schedule.milestones, rep.T})
    summary = {}
    for lo, hi in zip(bounds, bounds[1:]):
        values = sorted(v for step in norms[lo:hi] for v in step)
        q = statistics.quantiles(values, n=100, method="inclusive")
        summary[f"{lo}-{hi}"] = {"median": statistics.median(values), "p90": q[89], "p99": q[98], "max": values[-1]}
        lrs = f"{rep.schedule.lr_at(lo):.3g}-{rep.schedule.lr_at(hi - 1):.3g}"
        print(f"steps {lo:>4}-{hi:<4} (lr {lrs}): median {statistics.median(values):7.3f}  "
              f"p90 {q[89]:7.3f}  p99 {q[98]:7.3f}  max {values[-1]:7.3f}")
    print(json.dumps({"NORMS": summary, "seeds": seeds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
