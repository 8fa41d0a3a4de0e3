"""A pre-training entry whose pre-trained network did not learn is flagged per seed and refused a rank, with
the reason, in every renderer (bench.report.learned)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.report.learned import DENSE_SHORTFALL, seed_problem, task_threshold
from bench.report.model import from_folders
from test_leaderboard import record, write


def pretrain_record(seed: int, *, task=60.0, chance=25.0, dense=90.0, pretrained_dense=89.0, val=None, **kw):
    rec = record("pretrain:rotation", seed=seed, drop=2.0, ticket=85.0, dist="other", kind="pretraining", **kw)
    rec["accuracy"]["dense"], rec["accuracy"]["pretrained_dense"] = dense, pretrained_dense
    rec["pretraining"] = {"name": "rotation", "steps": 30, "params": {}, "task_accuracy": task,
                          "task_chance": chance, "task_examples": 640}
    if val is not None:
        rec["validation_accuracy"] = val
    return rec


def _write_entries(root, broken_seed: dict):
    """A learned entry (blur) and a rotation entry whose seed 1 did not learn, three seeds each."""
    for s in range(3):
        write(root, pretrain_record(s, params={"lr": 0.1}))
        write(root, pretrain_record(s, params={"lr": 0.8}, **(broken_seed if s == 1 else {})))


def test_threshold_is_chance_plus_three_standard_errors():
    assert task_threshold(25.0, 640) == pytest.approx(25 + 3 * 100 * (0.25 * 0.75 / 640) ** 0.5)
    assert seed_problem(pretrain_record(0)) is None
    assert seed_problem(record("identity")) is None  # a perturbation record is never judged
    at_chance = seed_problem(pretrain_record(0, task=26.0))
    assert at_chance.startswith("pre-training-task accuracy 26.0% is at chance (25.0%, threshold 30.1%)")


def test_dense_shortfall_reads_validation_where_the_record_has_it():
    collapsed = seed_problem(pretrain_record(0, pretrained_dense=9.3))
    assert "dense after pre-training 9.3% is 80.7 points below dense (test" in collapsed
    just_inside = pretrain_record(0, pretrained_dense=90.0 - DENSE_SHORTFALL)
    assert seed_problem(just_inside) is None
    # test says collapsed, validation says fine: validation decides (choices are made on validation)
    val = {"dense": 91.0, "ticket": 85.0, "perturbed": 83.0, "pretrained_dense": 90.0}
    assert seed_problem(pretrain_record(0, pretrained_dense=9.3, val=val)) is None
    val["pretrained_dense"] = 50.0
    assert "(validation;" in seed_problem(pretrain_record(0, val=val))


def test_an_entry_that_did_not_learn_is_refused_a_rank_with_the_reason(tmp_path):
    _write_entries(tmp_path, {"task": 25.5, "pretrained_dense": 9.3})
    lb = from_folders([tmp_path])
    assert [(b.pretraining, [r.params for r in b.rows]) for b in lb.boards] == [(True, [{"lr": 0.1}])]
    (row,) = lb.ineligible
    assert row.params == {"lr": 0.8} and row.rank is None and list(row.not_learned) == [1]
    assert row.reason.startswith("pre-trained network did not learn: seed 1: pre-training-task accuracy 25.5% is "
                                 "at chance") and "and dense after pre-training 9.3% is 80.7 points below" in row.reason

    runner = CliRunner()
    for fmt in ("table", "markdown", "html"):
        out = runner.invoke(cli, ["leaderboard", "--results", str(tmp_path), "--format", fmt], env={"COLUMNS": "400"})
        assert out.exit_code == 0, out.output
        assert "did not learn" in out.stdout and "seed 1" in out.stdout, fmt
    data = json.loads(runner.invoke(cli, ["leaderboard", "--results", str(tmp_path), "--format", "json"]).stdout)
    (refused,) = data["ineligible"]
    assert refused["rank"] is None and refused["reason"] == row.reason
    assert [s["seed"] for s in refused["not_learned"]] == [1]
    rows = list(csv.DictReader(io.StringIO(
        runner.invoke(cli, ["leaderboard", "--results", str(tmp_path), "--format", "csv"]).stdout)))
    flagged = {(json.loads(r["params"])["lr"], int(r["seed"])): (r["not_learned"], r["row_rank"]) for r in rows}
    assert flagged[(0.8, 1)][0].startswith("pre-training-task accuracy 25.5%") and flagged[(0.8, 1)][1] == ""
    assert flagged[(0.8, 0)] == ("", "") and flagged[(0.1, 0)] == ("", "1")  # the seed that learned: no flag


def test_a_record_without_task_accuracy_is_judged_by_the_dense_network_alone(tmp_path):
    rec = pretrain_record(0, pretrained_dense=9.0)
    for key in ("task_accuracy", "task_chance", "task_examples"):
        del rec["pretraining"][key]
    assert seed_problem(rec).startswith("dense after pre-training 9.0%")
    del rec["accuracy"]["pretrained_dense"]
    assert seed_problem(rec) is None
