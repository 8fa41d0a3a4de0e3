"""GPU figures for docs/performance.md in one go (run on a CUDA machine; nothing here needs CIFAR-10).

    python scripts/gpu_timing.py [--iterations 400] [--replicas 1,8] [--precision fp32|bf16|auto] [--compile]

Trains the cifar10-resnet20 model with the harness's own step (the preset's precision, fp32, unless
--precision says otherwise; channels_last; data and augmentation on the GPU) on random CIFAR-shaped data,
and extrapolates the measured iterations per second to the recipe's 62,560 iterations. Prints one JSON
line per configuration. scripts/gpu_validate.sh does this too, as part of its report (same timing code).
"""

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_validate import FULL_RUN, synthetic, time_replicas  # noqa: E402

from bench.presets import get_preset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--replicas", default="1,8")
    ap.add_argument("--precision", default=None)
    ap.add_argument("--compile", action="store_true")
    args = ap.parse_args()
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    exp = get_preset("cifar10-resnet20").experiment
    if args.precision:
        exp = replace(exp, train=replace(exp.train, precision=args.precision))
    data = synthetic(exp, 50_000, 1000).to(device)
    for r in (int(v) for v in args.replicas.split(",")):
        t = time_replicas(exp, data, device, r, args.iterations, warmup=50, compile=args.compile)
        print(json.dumps({"device": torch.cuda.get_device_name(), "replicas": r, "compile": args.compile,
                          "precision": exp.train.precision, "warmup_s": round(t["warmup_s"], 2),
                          "s_per_iteration": t["s_per_iteration"],
                          "full_run_minutes": round(t["s_per_iteration"] * FULL_RUN / 60, 2),
                          "peak_gpu_memory_gb": t["peak_gpu_memory_gb"]}))


if __name__ == "__main__":
    main()
