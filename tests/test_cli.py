"""End to end through click's CliRunner on the `smoke` preset, and every user-facing error."""

import json

import pytest
import torch
from click.testing import CliRunner

from bench.cli import cli


def bench(*args, **kwargs):
    result = CliRunner().invoke(cli, [str(a) for a in args], **kwargs)
    return result


@pytest.fixture
def smoke(tmp_path, data_dir):
    return ["--preset", "smoke", "--cache-dir", tmp_path, "--data-dir", data_dir]


def test_run_smoke_end_to_end_then_cached(smoke):
    first = bench("run", "--perturbation", "identity", *smoke)
    assert first.exit_code == 0, first.output
    assert "Trained 4 stages" in first.output  # trunk, level 1, level 2, branch
    assert "identity on smoke: level 2, 25.0% of weights remaining" in first.output
    again = bench("run", "--perturbation", "identity", *smoke, "--json")
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["stages"]["trained"] == 0 and data["stages"]["cached"] >= 3
    assert data["n"] == 1 and data["level"] == 2
    record = data["results"][0]
    # identity retrains exactly the ticket: the harness adds no noise of its own on CPU
    assert record["accuracy"]["perturbed"] == record["accuracy"]["ticket"]
    assert data["summary"]["drop"]["mean"] == 0.0
    assert data["summary"]["drop"]["low"] is None  # n = 1: no interval, and no NaN in the JSON
    text = bench("run", "--perturbation", "identity", *smoke)
    assert "Used the cache" in text.output


def test_seeds_are_paired_and_reported(smoke):
    out = bench("run", "--perturbation", "identity", "--seeds", 2, "--level", 1, "--json", *smoke)
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert [r["seed"] for r in data["results"]] == [0, 1]
    assert data["summary"]["dense"]["n"] == 2
    assert data["results"][0]["accuracy"]["dense"] != data["results"][1]["accuracy"]["dense"] or \
        data["results"][0]["accuracy"]["ticket"] != data["results"][1]["accuracy"]["ticket"]


def test_sparsity_selects_level(smoke):
    out = bench("run", "--sparsity", 50, "--json", *smoke)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["level"] == 1


@pytest.mark.parametrize("args, message", [
    (["--perturbation", "shufle-layer"], "Unknown perturbation 'shufle-layer'. Did you mean 'shuffle-layer'? Known:"),
    (["--preset", "mnist1d-resnt"], "Unknown preset 'mnist1d-resnt'. Did you mean 'mnist1d-resnet'? Known:"),
    (["--sparsity", 33], "No IMP level leaves 33.0% of weights; reachable: 100.0% (level 0), 50.0% (level 1)"),
    (["--level", 7], "Level 7 is out of range; reachable:"),
    (["--param", "scale"], "--param expects key=value"),
    (["--param", "nope=1"], "Perturbation 'identity' has no parameter 'nope'"),
])
def test_bad_input_is_one_line(smoke, args, message):
    out = bench("run", *smoke, *args)
    assert out.exit_code == 1
    assert message in out.output
    assert "Traceback" not in out.output
    assert len(out.output.strip().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_missing(smoke):
    out = bench("run", "--device", "cuda", *smoke)
    assert out.exit_code == 1
    assert "CUDA is not available here; use --device cpu" in out.output


def test_missing_cifar_offline_names_folder(tmp_path):
    out = bench("run", "--preset", "cifar10-resnet20", "--cache-dir", tmp_path)
    assert out.exit_code == 1
    assert f"CIFAR-10 not found in {tmp_path / 'data' / 'cifar10'}: rerun with --download" in out.output
    assert len(out.output.strip().splitlines()) == 1


def test_presets_json_counts():
    out = bench("presets", "--json")
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    cifar = rows["cifar10-resnet20"]
    assert (cifar["parameters"], cifar["prunable"]) == (272474, 270896)
    assert (cifar["iterations"], cifar["rewind_iteration"], cifar["iterations_per_epoch"]) == (62560, 500, 391)
    assert cifar["levels"] == 8 and abs(cifar["default_percent_remaining"] - 16.78) < 0.01
    assert set(rows) >= {"mnist1d-resnet", "smoke"}
    table = bench("presets", env={"COLUMNS": "200"})
    assert table.exit_code == 0
    for row in rows.values():  # every preset's row, with its description
        assert row["name"] in table.output and row["description"].split()[0] in table.output


def test_every_command_teaches_by_example_and_summaries_fit_80_columns():
    from bench.cli import cli as group

    names = []
    for name, command in group.commands.items():
        subcommands = getattr(command, "commands", None)
        names += [[name, sub] for sub in subcommands] if subcommands else [[name]]
    for words in names:
        out = bench(*words, "-h", env={"COLUMNS": "80"})
        assert out.exit_code == 0 and "Example" in out.output, words
    top = bench("--help", env={"COLUMNS": "80"})
    lines = top.output.splitlines()
    commands = lines[lines.index("Commands:") + 1:]
    summaries = [line for line in commands if line.startswith("  ") and not line.startswith("    ")]
    assert summaries and all(len(line) <= 80 and not line.endswith("...") for line in summaries)
