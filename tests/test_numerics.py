"""bench.numerics: what is recorded, that user settings win, and that pinned runs ignore the
machine's default thread count. Nothing here depends on the CPU model: every comparison is between
runs on the same machine."""

import os
import subprocess
import sys

import pytest

from bench import numerics

# 10 fused steps (3 replicates, batch 128) of the default preset's model on seeded synthetic data
# (the smoke model is too narrow for oneDNN to split its reductions by thread); prints a sha256 of the
# final weights. pin() runs before torch is imported, as in a real run.
SCRIPT = r"""
from bench import numerics
numerics.pin()
import hashlib, json, torch
from bench import fused, models
from bench.presets import get_preset
from bench.seeding import generator
from bench.training import Schedule, Trainer
numerics.pin_threads()
exp = get_preset("mnist1d-resnet").experiment
R = 3
states = []
for s in range(R):
    m = models.build_model(exp.model, 1, 10)
    models.initialize(m, generator(s, "init"))
    states.append(m.state_dict())
model = fused.build(exp.model, 1, 10, R)
model.load_state_dict(fused.fuse(states))
trainer = Trainer(model, exp.train, Schedule(exp.train.lr, 1.0, ()), loss=fused.loss)
g = generator(0, "numerics-test-data")
for step in range(10):
    x = torch.randn(128, R, 40, generator=g)
    y = torch.randint(0, 10, (128, R), generator=g)
    trainer.step(step, x, y)
h = hashlib.sha256()
for name, t in model.state_dict().items():
    h.update(name.encode()); h.update(t.contiguous().numpy().tobytes())
print(json.dumps({"sha": h.hexdigest(), "describe": numerics.describe()}))
"""


def _run(env_extra: dict[str, str]) -> dict:
    import json

    env = {k: v for k, v in os.environ.items()
           if k not in (*numerics.PINS, numerics.THREADS_ENV, numerics.OFF_ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_describe_has_every_field():
    import torch

    d = numerics.describe()
    for key in ("torch", "cpu_capability", "cpu_model", "machine", "pinned", "env", "threads", "mkldnn",
                "deterministic"):
        assert key in d
    assert d["torch"] == torch.__version__
    assert d["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert d["cpu_model"]
    assert set(numerics.PINS) <= set(d["env"])


def test_pin_keeps_what_the_user_set(monkeypatch):
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv(numerics.OFF_ENV, raising=False)
    monkeypatch.setenv(numerics.THREADS_ENV, "3")
    import torch

    before = torch.get_num_threads()
    try:
        numerics.pin()
        assert os.environ["MKL_CBWR"] == "COMPATIBLE"
        assert os.environ["ONEDNN_MAX_CPU_ISA"] == numerics.PINS["ONEDNN_MAX_CPU_ISA"]
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_pin_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(numerics.OFF_ENV, "1")
    for key in numerics.PINS:
        monkeypatch.delenv(key, raising=False)
    numerics.pin()
    assert not any(key in os.environ for key in numerics.PINS)
    assert numerics.describe()["pinned"] is False


@pytest.mark.slow
def test_pinned_run_ignores_the_machines_default_thread_count():
    # OMP_NUM_THREADS stands in for a machine with another core count; pin() fixes the count, so the
    # weights must be bit-identical. (Unpinned, the thread count changes oneDNN's conv backward.)
    one = _run({"OMP_NUM_THREADS": "1"})
    four = _run({"OMP_NUM_THREADS": "4"})
    assert one["describe"]["threads"] == four["describe"]["threads"] == numerics.THREADS
    assert one["describe"]["cpu_capability"] == "AVX2" or one["describe"]["cpu_capability"] == four["describe"]["cpu_capability"]
    assert one["sha"] == four["sha"]
    again = _run({"OMP_NUM_THREADS": "1"})
    assert again["sha"] == one["sha"]
