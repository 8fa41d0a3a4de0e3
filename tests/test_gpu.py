"""CUDA path: bf16 autocast, data on the GPU, fused replicates. Skipped without a CUDA device."""

import json

import pytest
import torch
from click.testing import CliRunner

from bench import paths
from bench.cache import load_tensors
from bench.cli import cli

pytestmark = pytest.mark.gpu


def test_smoke_run_on_cuda(tmp_path, data_dir):
    out = CliRunner().invoke(cli, ["run", "--preset", "smoke", "--seeds", "2", "--device", "cuda", "--json",
                                   "--perturbation", "shuffle-layer", "--cache-dir", str(tmp_path),
                                   "--data-dir", str(data_dir)])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert all(r["environment"]["device"].startswith("cuda") for r in data["results"])
    assert all(r["timings"]["replicas_trained_together"] == 2 for r in data["results"])
    # it learned (smoke reaches well above chance on CPU), and a cached rerun reads the same numbers back
    assert all(r["accuracy"]["ticket"] > 20 and r["accuracy"]["perturbed"] > 20 for r in data["results"])
    again = CliRunner().invoke(cli, ["run", "--preset", "smoke", "--seeds", "2", "--device", "cuda", "--json",
                                     "--perturbation", "shuffle-layer", "--cache-dir", str(tmp_path),
                                     "--data-dir", str(data_dir)])
    assert json.loads(again.stdout)["stages"]["trained"] == 0
    assert [r["accuracy"] for r in json.loads(again.stdout)["results"]] == [r["accuracy"] for r in data["results"]]
    # pruned weights stay exactly zero on the GPU too
    for seed in (0, 1):
        level = paths.experiment_dir(tmp_path, data["config_hash"]) / f"seed-{seed}" / "level-2"
        masks, final = load_tensors(level / "mask.pt"), load_tensors(level / "final.pt")
        for name, mask in masks.items():
            assert torch.all(final[name][mask == 0] == 0), name


def test_paper_preset_trains_in_fp32_on_cuda_bf16_on_request():
    import contextlib
    from dataclasses import replace

    import torch

    from bench import models
    from bench.presets import get_preset
    from bench.seeding import generator
    from bench.training import Schedule, Trainer

    exp = get_preset("cifar10-resnet20").experiment
    for precision, fp32 in (("fp32", True), ("bf16", False)):
        model = models.build_model(exp.model, 3, 10)
        models.initialize(model, generator(0, "init"), exp.model)
        model = model.cuda().to(memory_format=torch.channels_last)
        trainer = Trainer(model, replace(exp.train, precision=precision), Schedule(0.1, 0.1, ()))
        assert isinstance(trainer.autocast, contextlib.nullcontext) == fp32
        assert torch.backends.cudnn.allow_tf32 == (not fp32)  # fp32 convolutions, not TF32
        x = torch.randn(16, 3, 32, 32, device="cuda").to(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (16,), device="cuda")
        loss = trainer.step(0, x, y)
        assert torch.isfinite(loss) and (loss.dtype == torch.float32)
