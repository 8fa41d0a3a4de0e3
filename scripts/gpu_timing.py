"""GPU figures for docs/performance.md in one go (run on a CUDA machine; nothing here needs CIFAR-10).

    python scripts/gpu_timing.py [--iterations 400] [--replicas 1,8] [--compile]

Trains the cifar10-resnet20 model with the harness's own step (bf16 autocast, channels_last, data and
augmentation on the GPU) on random CIFAR-shaped data, and extrapolates the measured iterations per second
to the recipe's 62,560 iterations. Prints one JSON line per configuration.
"""

import argparse
import json
import time

import torch

from bench import fused, models
from bench.data import BatchStream, Dataset
from bench.presets import get_preset
from bench.training import Schedule, Trainer

FULL_RUN = 62_560


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--replicas", default="1,8")
    ap.add_argument("--compile", action="store_true")
    args = ap.parse_args()
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    exp = get_preset("cifar10-resnet20").experiment
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50_000, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (50_000,), generator=g)
    data = Dataset(x, y, x[:1000], y[:1000], 10, augment=True).to(device)
    for r in (int(v) for v in args.replicas.split(",")):
        model = fused.build(exp.model, 3, 10, r).to(device).to(memory_format=torch.channels_last)
        states = []
        for seed in range(r):
            single = models.build_model(exp.model, 3, 10)
            models.initialize(single, torch.Generator().manual_seed(seed))
            states.append(single.state_dict())
        model.load_state_dict(fused.fuse(states))
        trainer = Trainer(model, exp.train, Schedule(0.1, 0.1, ()), compile=args.compile)
        stream = fused.FusedStream([BatchStream(data, 128, s) for s in range(r)])
        t0 = time.perf_counter()
        for step in range(50):  # warm-up: cuDNN autotuning, compilation
            trainer.step(step, *stream.batch(step))
        torch.cuda.synchronize()
        warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        for step in range(50, 50 + args.iterations):
            trainer.step(step, *stream.batch(step))
        torch.cuda.synchronize()
        per_it = (time.perf_counter() - t0) / args.iterations
        print(json.dumps({"device": torch.cuda.get_device_name(), "replicas": r, "compile": args.compile,
                          "warmup_s": round(warm, 2), "s_per_iteration": per_it,
                          "full_run_minutes": round(per_it * FULL_RUN / 60, 2),
                          "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)}))


if __name__ == "__main__":
    main()
