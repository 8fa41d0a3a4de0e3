"""Where one training step of the default preset's fused group goes (issue 22): torch.profiler over
warm steps, one thread, kernels pinned as every experiment runs them, grouped by op and by phase.

  .venv/bin/python scripts/step_breakdown.py [--replicas 3] [--steps 50] [--masks]

Phases: forward (model + loss), backward, optimizer (SGD step), masks (the pruned runs' mask multiply).
Prints self CPU time per op type in ms per step and per replicate-step, then the phase totals."""
from __future__ import annotations

import argparse
import collections
import time

import bench  # noqa: F401  (pins the kernels' env vars before torch loads)
import torch
from torch.profiler import ProfilerActivity, profile, record_function

from bench import fused, models, numerics
from bench.data import BatchStream, Dataset
from bench.presets import get_preset
from bench.training import Schedule, Trainer


def setup(replicas: int, masks: bool):
    exp = get_preset("mnist1d-resnet").experiment
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 1, 40, generator=g)
    y = torch.randint(0, 10, (4000,), generator=g)
    data = Dataset(x, y, x[:100], y[:100], 10)
    model = fused.build(exp.model, 1, 10, replicas)
    models.initialize(model, torch.Generator().manual_seed(0))
    mask = None
    if masks:  # 60% pruned at random, as an IMP level-1 retraining has
        params = dict(model.named_parameters())
        mask = {n: (torch.rand(params[n].shape, generator=g) > 0.6).float() for n in models.prunable_names(model)}
    trainer = Trainer(model, exp.train, Schedule(exp.train.lr, 0.1, ()), mask, loss=fused.loss)
    stream = fused.FusedStream([BatchStream(data, exp.train.batch_size, s) for s in range(replicas)])
    return trainer, stream


def phased_step(t: Trainer, step: int, x: torch.Tensor, y: torch.Tensor) -> None:
    """Trainer.step with each phase labelled (the same ops in the same order)."""
    for group in t.optimizer.param_groups:
        group["lr"] = t.schedule.lr_at(step)
    with record_function("phase:forward"):
        loss = t.loss(t.forward(x), y)
    t.optimizer.zero_grad(set_to_none=True)
    with record_function("phase:backward"):
        loss.backward()
    with record_function("phase:optimizer"):
        t.optimizer.step()
    with record_function("phase:masks"):
        t.apply_masks()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--masks", action="store_true", help="a pruned retraining (mask multiply after each step)")
    args = ap.parse_args()
    numerics.pin_threads()
    trainer, stream = setup(args.replicas, args.masks)
    batches = [stream.batch(i) for i in range(args.steps + 10)]
    for i in range(10):
        phased_step(trainer, i, *batches[i])
    t0 = time.perf_counter()
    for i in range(args.steps):
        trainer.step(i, *batches[i])
    plain = (time.perf_counter() - t0) / args.steps * 1000
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(args.steps):
            phased_step(trainer, i, *batches[i])
    n, r = args.steps, args.replicas
    print(f"threads {torch.get_num_threads()}, replicas {r}, masks {args.masks}: unprofiled step "
          f"{plain:.2f} ms = {plain / r:.2f} ms per replicate-step")
    rows = collections.Counter()
    phases = {}
    for e in prof.key_averages():
        if e.key.startswith("phase:"):
            phases[e.key[6:]] = e.cpu_time_total / 1000 / n
        else:
            rows[e.key] += e.self_cpu_time_total / 1000 / n
    total = sum(rows.values())
    print(f"profiled: self CPU {total:.2f} ms per step")
    print(f"{'op':45s} {'ms/step':>8s} {'ms/rep':>7s} {'share':>6s}")
    for k, v in rows.most_common(25):
        print(f"{k:45s} {v:8.3f} {v / r:7.3f} {100 * v / total:5.1f}%")
    print("phases (inclusive, ms per step):", {k: round(v, 2) for k, v in phases.items()})
    print("outside the phases (lr set, zero_grad):", round(total - sum(phases.values()), 2))


if __name__ == "__main__":
    main()
