"""Which dense network level 1 prunes (issue 21): the trunk, or OpenLTH's level 0 with rewinding.

OpenLTH's LotteryRunner with --rewinding_steps k pre-trains 0 -> k, then trains level 0 from that state
k -> T with a new optimizer (training/train.py: optimizer created per call, schedule stepped to k, data
order seeded per epoch), and prunes level 0's end weights for level 1. ``prune.level1_prunes = "level-0"``
does that with the level-0 ticket (W_k retrained k -> T with a fresh optimizer).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from bench import stages
from bench.cache import load_json, load_tensors
from bench.config import Experiment, PruneConfig, canonical, config_hash, validate
from bench.data import load_dataset
from bench.errors import BenchError
from bench.presets import PRESETS
from bench.pruning import level_masks, ones_like

SMOKE = PRESETS["smoke"].experiment


def _rep(exp: Experiment, cache, data_dir) -> stages.Replicate:
    env = stages.Env(cache=cache, device=torch.device("cpu"),
                     data=load_dataset(exp.data, data_dir, torch.device("cpu")))
    return stages.Replicate(exp, 0, env)


def _level0(exp: Experiment) -> Experiment:
    return replace(exp, prune=replace(exp.prune, level1_prunes="level-0"))


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def test_only_the_paper_preset_prunes_level_0_and_the_default_stays_out_of_the_hash():
    assert PRESETS["cifar10-resnet20"].experiment.prune.level1_prunes == "level-0"
    for name in ("mnist1d-resnet", "smoke", "mnist1d-lottery"):
        exp = PRESETS[name].experiment
        assert exp.prune.level1_prunes == "trunk"
        assert "level1_prunes" not in canonical(exp).get("prune", {})
    assert config_hash(_level0(SMOKE)) != config_hash(SMOKE)


def test_unknown_value_is_refused():
    with pytest.raises(BenchError, match="Unknown prune.level1_prunes 'dense'. Known: trunk, level-0"):
        validate(Experiment(prune=PruneConfig(level1_prunes="dense")))


def test_without_momentum_the_restart_at_k_is_the_continuous_run(tmp_path, data_dir):
    # plain SGD keeps no optimizer state, so restarting at k with the schedule and data order resumed must
    # give the uninterrupted run bit for bit: the restart changes nothing but the optimizer's state
    exp = _level0(replace(SMOKE, train=replace(SMOKE.train, momentum=0.0)))
    rep = _rep(exp, tmp_path, data_dir)
    rep.level(1)
    trunk = load_tensors(rep.stage_dir(0) / "final.pt")
    restarted = load_tensors(rep.ticket_dir(0) / "final.pt")
    assert _same(trunk, restarted)
    # so level 1 finds the mask the trunk would have given it
    expected = level_masks(exp, rep.prunable(trunk), ones_like(rep.prunable(trunk)), 1, 0)
    assert _same(rep.masks(1), expected)


def test_with_momentum_level_1_prunes_the_restarted_network(tmp_path, data_dir):
    exp = _level0(SMOKE)
    assert exp.train.momentum > 0
    rep = _rep(exp, tmp_path, data_dir)
    rep.level(1)
    trunk = rep.prunable(load_tensors(rep.stage_dir(0) / "final.pt"))
    restarted = rep.prunable(load_tensors(rep.ticket_dir(0) / "final.pt"))
    assert not _same(trunk, restarted)  # the momentum reset at k moves the dense network
    ones = ones_like(trunk)
    assert _same(rep.masks(1), level_masks(exp, restarted, ones, 1, 0))
    assert not _same(rep.masks(1), level_masks(exp, trunk, ones, 1, 0))
    # the level-1 record names the level-0 ticket's end weights as what its mask came from
    inputs = load_json(rep.ticket_dir(1) / "done.json")["inputs"]
    level0_final = (rep.ticket_dir(0) / "final.pt").relative_to(rep.root).as_posix()
    trunk_final = (rep.stage_dir(0) / "final.pt").relative_to(rep.root).as_posix()
    assert level0_final in inputs and trunk_final not in inputs


def test_default_prunes_the_trunk_and_trains_no_level_0(tmp_path, data_dir):
    rep = _rep(SMOKE, tmp_path, data_dir)
    rep.level(1)
    assert rep.dense_dir(rep.k) == rep.stage_dir(0)
    assert not (rep.ticket_dir(0) / "done.json").exists()  # nothing extra trained


def test_rewound_to_0_the_trunk_is_level_0(tmp_path, data_dir):
    # without rewinding OpenLTH's level 0 is one run 0 -> T with one optimizer: the trunk itself
    rep = _rep(_level0(SMOKE), tmp_path, data_dir)
    assert rep.dense_dir(0) == rep.stage_dir(0)
    assert rep.dense_dir(rep.k) == rep.ticket_dir(0)


def test_sweep_plan_counts_the_level_0_ticket_only_where_level_1_prunes_it(tmp_path):
    import json

    from click.testing import CliRunner

    from bench.cli import cli

    def counts(preset: str) -> dict:
        path = tmp_path / f"{preset}.toml"
        path.write_text(f'presets = ["{preset}"]\nseeds = 1\nlevels = [1]\n[perturbations]\nidentity = {{}}\n')
        result = CliRunner().invoke(cli, ["sweep", str(path), "--dry-run", "--json", "--cache-dir", str(tmp_path)])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["counts"]

    # cifar10-resnet20: T = 62,560, k = 500; trunk + level-0 ticket + level 1, then the branch
    paper = counts("cifar10-resnet20")
    assert (paper["trainings"], paper["replicate_iterations"]) == (4, 62560 + 3 * 62060)
    smoke = counts("smoke")  # T = 120, k = 10: trunk + level 1, then the branch
    assert (smoke["trainings"], smoke["replicate_iterations"]) == (3, 120 + 2 * 110)
