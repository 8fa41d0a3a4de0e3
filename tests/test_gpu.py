"""CUDA path: bf16 autocast, data on the GPU, fused replicates. Skipped without a CUDA device."""

import json

import pytest
from click.testing import CliRunner

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
    assert all(0 <= r["accuracy"]["perturbed"] <= 100 for r in data["results"])
