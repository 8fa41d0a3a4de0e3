"""Numerics probe: sha256 fingerprints of a short fused training run of the default model.

Usage: python scripts/numerics_probe.py [--threads N] [--steps S] [--time-steps T] [--no-mkldnn]
        [--deterministic] [--set-env-after-import K=V ...]
Env knobs (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, MKL_CBWR, ...) are read from the environment, as the
caller sets them before the interpreter starts. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=0)
ap.add_argument("--steps", type=int, default=50)
ap.add_argument("--replicas", default="3,1")
ap.add_argument("--time-steps", type=int, default=0)
ap.add_argument("--no-mkldnn", action="store_true")
ap.add_argument("--deterministic", action="store_true")
ap.add_argument("--pin", action="store_true", help="call bench.numerics.pin() first")
ap.add_argument("--set-env-after-import", nargs="*", default=[])
ap.add_argument("--data-dir", default="/tmp/probe-data")
ap.add_argument("--preset", default="mnist1d-resnet")
args = ap.parse_args()

if args.pin:
    from bench import numerics
    numerics.pin()

import torch  # noqa: E402

for kv in args.set_env_after_import:
    k, v = kv.split("=", 1)
    os.environ[k] = v

from pathlib import Path  # noqa: E402

from bench import fused, models  # noqa: E402
from bench.data import BatchStream, load_dataset  # noqa: E402
from bench.presets import get_preset  # noqa: E402
from bench.seeding import generator  # noqa: E402
from bench.training import Schedule, Trainer  # noqa: E402

if args.threads:
    torch.set_num_threads(args.threads)
if args.no_mkldnn:
    torch.backends.mkldnn.enabled = False
if args.deterministic:
    torch.use_deterministic_algorithms(True)

exp = get_preset(args.preset).experiment
data = load_dataset(exp.data, Path(args.data_dir), torch.device("cpu"))


def digest(state) -> str:
    h = hashlib.sha256()
    for name, t in state.items():
        h.update(name.encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def make(replicas: int, seeds=(0, 1, 2)):
    states = []
    for s in seeds[:replicas]:
        m = models.build_model(exp.model, data.in_channels, data.num_classes)
        models.initialize(m, generator(s, "init"))
        states.append(m.state_dict())
    model = fused.build(exp.model, data.in_channels, data.num_classes, replicas)
    model.load_state_dict(fused.fuse(states))
    stream = fused.FusedStream([BatchStream(data, exp.train.batch_size, s) for s in seeds[:replicas]])
    trainer = Trainer(model, exp.train, Schedule(exp.train.lr, exp.train.gamma, ()))
    return model, stream, trainer


out = {"threads": torch.get_num_threads(), "cap": torch.backends.cpu.get_cpu_capability(),
       "mkldnn": torch.backends.mkldnn.enabled}
for r in [int(x) for x in args.replicas.split(",") if x]:
    model, stream, trainer = make(r)
    # one forward output: sensitive to forward kernels only
    x0, y0 = stream.batch(0)
    with torch.no_grad():
        out[f"fwd{r}"] = digest({"o": model(x0)})
    model, stream, trainer = make(r)
    for step in range(args.steps):
        x, y = stream.batch(step)
        trainer.step(step, x, y)
        if step == 0:
            out[f"step1_{r}"] = digest(model.state_dict())
    out[f"final{r}"] = digest(model.state_dict())

if args.time_steps:
    model, stream, trainer = make(3)
    batches = [stream.batch(s) for s in range(args.time_steps)]
    for s in range(5):
        trainer.step(s, *batches[s])
    t = time.perf_counter()
    for s, (x, y) in enumerate(batches):
        trainer.step(s, x, y)
    out["time_s"] = round(time.perf_counter() - t, 3)
print(json.dumps(out))
