"""The default preset's fused training step, timed in fresh processes of two code trees in turn (issue 22):
each process runs as a real experiment does (one thread, kernels pinned, glibc's malloc at its defaults
unless the tree's Trainer changes them), trains a group of 3 for --warm steps, then times --steps more.
Interleaved rounds (base, current, base, current, ...), medians, so both meet the same load.

  .venv/bin/python scripts/step_processes.py --base DIR [--rounds 5] [--steps 200] [--warm 30]

DIR holds another version's bench/ and plugins/ (e.g. `git archive 4f1d4cc bench plugins | tar -x -C DIR`);
the current tree is this checkout's. Each tree trains its own preset as it stands (since c380ea5 the preset
clips each replicate's gradient: part of today's step); --clip X sets the current tree's train.clip_norm
instead (0: off), to time the clip's own cost. Prints ms per replicate-step per round and the ratio of medians."""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import dataclasses, inspect, sys, time
import bench  # pins the kernels' env vars before torch loads
import torch
from bench import fused, models
from bench.data import BatchStream, Dataset
from bench.presets import get_preset
from bench.training import Schedule, Trainer
warm, steps, replicas = int(sys.argv[1]), int(sys.argv[2]), 3
torch.set_num_threads(1)
exp = get_preset("mnist1d-resnet").experiment
if sys.argv[3] != "preset":  # --clip: a tree that knows train.clip_norm, with it set
    exp = dataclasses.replace(exp, train=dataclasses.replace(exp.train, clip_norm=float(sys.argv[3])))
# a tree whose Trainer knows replicas clips each replicate by its own norm (older trees have no clip)
kw = {"replicas": replicas} if "replicas" in inspect.signature(Trainer).parameters else {}
g = torch.Generator().manual_seed(0)
x, y = torch.randn(4000, 1, 40, generator=g), torch.randint(0, 10, (4000,), generator=g)
data = Dataset(x, y, x[:100], y[:100], 10)
model = fused.build(exp.model, 1, 10, replicas)
models.initialize(model, torch.Generator().manual_seed(0))
trainer = Trainer(model, exp.train, Schedule(exp.train.lr, 0.1, ()), None, loss=fused.loss, **kw)
stream = fused.FusedStream([BatchStream(data, exp.train.batch_size, s) for s in range(replicas)])
for i in range(warm):
    trainer.step(i, *stream.batch(i))
t0 = time.perf_counter()
for i in range(warm, warm + steps):
    trainer.step(i, *stream.batch(i))
print((time.perf_counter() - t0) / steps / replicas * 1000)
"""


def one(tree: Path, warm: int, steps: int, clip: str = "preset") -> float:
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-P", "-c", CHILD, str(warm), str(steps), clip], cwd=tree, env=env,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warm", type=int, default=30)
    ap.add_argument("--clip", default="preset", help="the current tree's train.clip_norm (default: its preset's)")
    args = ap.parse_args()
    here = Path(__file__).resolve().parents[1]
    times: dict[str, list[float]] = {"base": [], "current": []}
    for r in range(args.rounds):
        for name, tree in (("base", args.base.resolve()), ("current", here)):
            times[name].append(one(tree, args.warm, args.steps, args.clip if name == "current" else "preset"))
        print(f"round {r + 1}: base {times['base'][-1]:.2f} ms, current {times['current'][-1]:.2f} ms "
              "per replicate-step", flush=True)
    base, cur = statistics.median(times["base"]), statistics.median(times["current"])
    print(f"medians: base {base:.2f} ms ({min(times['base']):.2f}-{max(times['base']):.2f}), current {cur:.2f} ms "
          f"({min(times['current']):.2f}-{max(times['current']):.2f}) per replicate-step: {base / cur:.2f}x")


if __name__ == "__main__":
    main()
