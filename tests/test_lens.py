"""The default lens (issue 11): validation split, level 0 compared like every level, IMP chains per
rewind point (the imp-rewind-0 reference, the per-k rewind curve), seed lists, a preset rewound to 0."""

from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner

from bench import paths, stages
from bench.cli import cli
from bench.config import DataConfig
from bench.data import load_dataset
from bench.experiments.perturb import run_perturbations
from bench.experiments.rewind_curve import run_rewind_curve
from bench.experiments.setup import RunOptions
from bench.plugins import default_plugins
from bench.presets import get_preset

SMOKE = get_preset("smoke")


def _options(tmp_path, data_dir):
    return RunOptions(cache=tmp_path, data_dir=data_dir)


def test_validation_split_is_generated_apart_from_train_and_test(data_dir):
    cfg = SMOKE.experiment.data
    data = load_dataset(cfg, data_dir, torch.device("cpu"))
    assert data.x_val is not None and data.x_val.shape == (cfg.validation_examples, 1, 40)
    assert sorted(data.y_val.unique().tolist()) == list(range(10))
    seen = {tuple(row.tolist()) for row in torch.cat([data.x_train, data.x_test]).flatten(1)}
    assert not any(tuple(row.tolist()) in seen for row in data.x_val.flatten(1))  # no shared example
    # the training and test examples do not depend on whether a validation split is asked for
    without = load_dataset(replace(cfg, validation_examples=0), data_dir, torch.device("cpu"))
    assert without.x_val is None
    assert torch.equal(without.x_train, data.x_train) and torch.equal(without.x_test, data.x_test)


def test_records_carry_validation_and_test_accuracy(tmp_path, data_dir):
    out = run_perturbations(SMOKE, [("identity", {})], _options(tmp_path, data_dir), seeds=1, level=1)[0]
    record = out.records[0]
    val = record["validation_accuracy"]
    assert set(val) == {"dense", "ticket", "perturbed"}
    assert all(0 <= v <= 100 for v in val.values())
    assert record["accuracy"]["ticket"] == record["accuracy"]["perturbed"]  # identity: test accuracy, unchanged
    assert val["ticket"] == val["perturbed"]
    done = paths.ticket_dir(paths.replicate_dir(tmp_path, record["config_hash"], 0), 1, 10, 10) / "done.json"
    assert "val_accuracy" in done.read_text()


def test_level_zero_ticket_is_wk_retrained_so_identity_drops_exactly_zero(tmp_path, data_dir):
    out = run_perturbations(SMOKE, [("identity", {}), ("shuffle-layer", {})], _options(tmp_path, data_dir),
                            seeds=[0, 1], level=0)
    identity, shuffled = out
    for record in identity.records:
        assert record["level"] == 0 and record["density"] == 1.0
        assert record["drop"] == 0.0
        # the level-0 ticket restarts at W_k with a fresh optimizer: not the dense run itself
        assert record["accuracy"]["ticket"] == record["accuracy"]["perturbed"]
    root = paths.replicate_dir(tmp_path, identity.records[0]["config_hash"], 0)
    assert (root / "level-0" / "done.json").exists() and (root / "trunk" / "done.json").exists()
    assert any(r["drop"] != 0.0 for r in shuffled.records)  # a real perturbation still moves it


def test_imp_rewind_0_runs_its_own_chain(tmp_path, data_dir):
    options = _options(tmp_path, data_dir)
    out = run_perturbations(SMOKE, [("imp-rewind-0", {}), ("lottery-ticket", {})], options, seeds=1, level=2)
    reference, lottery = out[0].records[0], out[1].records[0]
    setup_env = stages.Env(tmp_path, torch.device("cpu"), load_dataset(SMOKE.experiment.data, data_dir,
                                                                      torch.device("cpu")))
    rep = stages.Replicate(SMOKE.experiment, 0, setup_env)
    own, chained = rep.masks(2, rewind=0), rep.masks(2)
    # level 1 prunes the same dense trunk in both chains; from level 2 each chain prunes its own ticket
    assert all(torch.equal(rep.masks(1, rewind=0)[n], rep.masks(1)[n]) for n in own)
    assert any(not torch.equal(own[n], chained[n]) for n in own)
    assert reference["accuracy"]["perturbed"] == rep.record(2, rewind=0)["accuracy"]
    assert reference["drop"] == reference["accuracy"]["ticket"] - rep.record(2, rewind=0)["accuracy"]
    assert rep.record(2, rewind=0)["rewind_step"] == 0
    # the lottery-ticket control is W_0 under *this* chain's mask: a different network at level 2
    assert lottery["perturbation"]["name"] == "lottery-ticket"
    again = run_perturbations(SMOKE, [("imp-rewind-0", {})], options, seeds=1, level=2)[0]
    assert again.records[0]["drop"] == reference["drop"]
    assert not any(e.kind == "trained" for e in again.events)  # the chain is cached like any other


def test_preset_rewound_to_zero_runs(tmp_path, data_dir):
    exp = replace(SMOKE.experiment, rewind="0it")
    out = run_perturbations(SMOKE, [("identity", {})], _options(tmp_path, data_dir), seeds=1, level=1,
                            experiment=exp)[0]
    assert out.records[0]["drop"] == 0.0 and out.records[0]["rewind_step"] == 0
    fp = out.records[0]["fingerprints"]
    assert fp["w0"] == fp["wk"]  # W_k is W_0


def test_rewind_curve_per_k_chains_and_one_mask(tmp_path, data_dir):
    options = _options(tmp_path, data_dir)
    per_k = run_rewind_curve(SMOKE, "0,10,20", options, seeds=1, level=2)
    one = run_rewind_curve(SMOKE, "0,10,20", options, seeds=1, level=2, chain="one-mask")
    assert per_k.chain == "per-k" and one.chain == "one-mask"
    assert per_k.accuracy[10] == one.accuracy[10]  # the preset's k: its own chain in both
    env = stages.Env(tmp_path, torch.device("cpu"), load_dataset(SMOKE.experiment.data, data_dir, torch.device("cpu")))
    rep = stages.Replicate(SMOKE.experiment, 0, env)
    assert per_k.accuracy[20] == [rep.record(2, rewind=20)["accuracy"]]
    assert per_k.accuracy[0] == [rep.record(2, rewind=0)["accuracy"]]  # the same chain as imp-rewind-0
    assert per_k.as_dict()["chain"] == "per-k"


def test_seed_lists_on_the_command_line(tmp_path, data_dir):
    runner = CliRunner()
    common = ["run", "-p", "identity", "--preset", "smoke", "--level", "1", "--cache-dir", str(tmp_path),
              "--data-dir", str(data_dir), "--json"]
    import json

    listed = json.loads(runner.invoke(cli, common + ["--seeds", "3,5"]).stdout)
    assert [r["seed"] for r in listed["results"]] == [3, 5]
    ranged = json.loads(runner.invoke(cli, common + ["--seeds", "4-5"]).stdout)
    assert [r["seed"] for r in ranged["results"]] == [4, 5]
    # seed 5 was trained in the group (3, 5) first; asked again with 4 its numbers do not move
    five = [r for r in ranged["results"] if r["seed"] == 5][0]
    assert five["accuracy"] == [r for r in listed["results"] if r["seed"] == 5][0]["accuracy"]


def test_validation_examples_change_the_config_hash_only_when_set():
    from bench.config import config_hash

    base = SMOKE.experiment
    assert config_hash(base) != config_hash(replace(base, data=replace(base.data, validation_examples=0)))
    assert DataConfig().validation_examples == 0


def test_seed_groups_in_parallel_workers_give_the_same_numbers(tmp_path, data_dir):
    requests = [("identity", {}), ("shuffle-layer", {})]
    one = run_perturbations(SMOKE, requests, replace(_options(tmp_path / "one", data_dir), group_size=2),
                            seeds=3, level=1)
    two = run_perturbations(SMOKE, requests, replace(_options(tmp_path / "two", data_dir), group_size=2, workers=2),
                            seeds=3, level=1)
    for a, b in zip(one, two):
        assert [r["accuracy"] for r in a.records] == [r["accuracy"] for r in b.records]
        assert [r["fingerprints"] for r in a.records] == [r["fingerprints"] for r in b.records]
        assert [r["trained_with_seeds"] for r in b.records][0]["trunk"] == [0, 1]
    # the workers' stage events reach the parent: each stage counted as trained once, none as cached
    trained = [e for e in two[0].events if e.kind == "trained"]
    assert len(trained) == len({(e.stage, e.seed) for e in trained}) == 3 * 4  # trunk, level 1, two branches
    assert not any(e.kind == "cached" for e in two[0].events)


def test_a_failing_worker_is_one_error_naming_its_seeds(tmp_path, data_dir, monkeypatch):
    from bench.errors import BenchError
    from bench.experiments import perturb

    real = perturb._train

    def fail_for_seed_2(reps, *args):
        if any(rep.seed == 2 for rep in reps):
            raise BenchError("planted failure")
        return real(reps, *args)

    monkeypatch.setattr(perturb, "_train", fail_for_seed_2)
    with pytest.raises(BenchError, match="seeds 2: planted failure"):
        run_perturbations(SMOKE, [("identity", {})], replace(_options(tmp_path, data_dir), group_size=2, workers=2),
                          seeds=3, level=1)
