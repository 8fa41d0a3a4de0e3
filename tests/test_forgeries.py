"""Forged or mixed-up result files are refused by name, never ranked (issue 26, item 3).

Each case is one a hostile review made rank on the leaderboard: an edited accuracy under unchanged
fingerprints, an edited fingerprint, an invented seed, a duplicate with an earlier `created`; and the checks
around them: `--strict` and `python -m bench.report` fail on any problem, `bench verify` checks a submitted
configuration against its preset before it trains, and a recorded `bench verify` marks the rows it re-proved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cache import save_json
from bench.cli import cli
from bench.config import config_hash, from_dict, full
from bench.report.model import from_folders
from test_leaderboard import SMOKE, board_rows, record, write

ROOT = Path(__file__).resolve().parent.parent
GROUP = {"trunk": [0, 1, 2], "ticket": [0, 1, 2], "branch": [0, 1, 2]}


def _board(root: Path, names=("identity", "x")) -> dict[tuple[str, int], Path]:
    """Three seeds of two rows on one board, recorded as `bench run` records them (one seed group)."""
    files = {}
    for name in names:
        for seed, drop in enumerate((1.0, 2.0, 3.0) if name != "identity" else (0.0, 0.0, 0.0)):
            files[(name, seed)] = write(root, record(name, seed=seed, drop=drop, dist="o" if name != "identity"
                                                     else "earlyphase-bench", trained_with_seeds=GROUP))
    return files


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _set_ticket(rec: dict, value: float) -> None:
    """An edited ticket accuracy that keeps the record self-consistent (drop = ticket - perturbed)."""
    rec["accuracy"]["ticket"] = value
    rec["drop"] = value - rec["accuracy"]["perturbed"]


EDITS = {
    "ticket accuracy": lambda r: _set_ticket(r, 75.0),
    "dense accuracy": lambda r: r["accuracy"].__setitem__("dense", 71.0),
    "ticket fingerprint": lambda r: r["fingerprints"].__setitem__("ticket", "e" * 64),
    "mask fingerprint": lambda r: r["fingerprints"].__setitem__("mask", "e" * 64),
    "W_0 fingerprint": lambda r: r["fingerprints"].__setitem__("w0", "e" * 64),
    "trunk seed group": lambda r: r["trained_with_seeds"].__setitem__("trunk", [1]),
    "ticket seed group": lambda r: r["trained_with_seeds"].__setitem__("ticket", [0, 1]),
}


# ------------------------------------------------------------------------------------------ one replicate agrees


@pytest.mark.parametrize("what", list(EDITS))
def test_an_edited_replicate_field_is_refused_with_every_file_of_the_replicate(tmp_path, what):
    files = _board(tmp_path)
    _edit(files[("x", 1)], EDITS[what])
    lb = from_folders([tmp_path])
    refused = {p.path for p in lb.problems}
    assert refused == {files[("x", 1)], files[("identity", 1)]}, [str(p) for p in lb.problems]
    for problem in lb.problems:  # each names every file of the disagreement
        assert "x-" in problem.message and "identity-" in problem.message and "seed 1" in problem.message
    assert all(1 not in row.seeds for row in board_rows(lb))


def test_the_trunk_agrees_across_levels(tmp_path):
    files = _board(tmp_path)
    other = write(tmp_path, record("x", seed=2, drop=4.0, dist="o", level=1, density=0.5, trained_with_seeds=GROUP))
    _edit(other, lambda r: r["accuracy"].__setitem__("dense", 69.0))  # the same trunk, another dense accuracy
    lb = from_folders([tmp_path])
    assert {p.path for p in lb.problems} == {other, files[("x", 2)], files[("identity", 2)]}


def test_records_that_agree_are_ranked_as_before(tmp_path):
    _board(tmp_path)
    lb = from_folders([tmp_path])
    assert not lb.problems and [r.seeds for r in board_rows(lb)] == [(0, 1, 2), (0, 1, 2)]


# ------------------------------------------------------------------------------------------ invented seeds


def _invent(files, root: Path, seed: int, change=None) -> Path:
    data = json.loads(files[("x", 1)].read_text())
    data["seed"] = seed
    if change:
        change(data)
    return write(root, data)


def test_an_invented_seed_outside_its_own_seed_group_is_refused(tmp_path):
    files = _board(tmp_path)
    invented = _invent(files, tmp_path, 7)  # a copy of seed 1 that says it is seed 7
    lb = from_folders([tmp_path])
    assert [p.path for p in lb.problems] == [invented]
    assert "seed 7" in lb.problems[0].message and "trained with" in lb.problems[0].message
    assert all(7 not in row.seeds for row in board_rows(lb))


def test_an_invented_seed_sharing_another_seeds_w0_is_refused(tmp_path):
    files = _board(tmp_path)
    group = {"trunk": [7], "ticket": [7], "branch": [7]}
    invented = _invent(files, tmp_path, 7, lambda r: r.__setitem__("trained_with_seeds", group))
    lb = from_folders([tmp_path])
    refused = {p.path for p in lb.problems}
    assert invented in refused and refused <= {invented, files[("x", 1)], files[("identity", 1)]}
    assert all(7 not in row.seeds for row in board_rows(lb))


def test_strict_recomputes_w0_and_refuses_an_invented_seed_with_a_made_up_w0(tmp_path):
    files = _board(tmp_path)
    group = {"trunk": [7], "ticket": [7], "branch": [7]}

    def made_up(r):
        r["trained_with_seeds"] = group
        r["fingerprints"] = {k: "7" * 63 + str(i) for i, k in enumerate(r["fingerprints"])}

    invented = _invent(files, tmp_path, 7, made_up)
    (row,) = [r for r in board_rows(from_folders([tmp_path])) if r.name == "x"]
    assert 7 in row.seeds  # nothing cheap can tell it from a real seed
    with pytest.raises(Exception, match="seed-7.json") as info:
        from_folders([tmp_path], strict=True)
    assert "W_0" in str(info.value) and str(files[("x", 1)]) not in str(info.value)
    result = CliRunner().invoke(cli, ["leaderboard", "--results", str(tmp_path), "--strict"])
    assert result.exit_code == 1 and str(invented) in result.stderr and "Traceback" not in result.output


# ------------------------------------------------------------------------------------------ duplicates


def test_a_duplicate_with_an_earlier_created_is_refused_not_preferred(tmp_path):
    files = _board(tmp_path)
    forged = json.loads(files[("x", 1)].read_text())
    _set_ticket(forged, forged["accuracy"]["ticket"])
    forged["accuracy"]["perturbed"] -= 20.0
    forged["drop"] += 20.0
    forged["created"] = "2000-01-01T00:00:00Z"  # "the original run"
    copy_path = tmp_path / "elsewhere" / "seed-1.json"
    save_json(copy_path, forged)
    lb = from_folders([tmp_path])
    (row,) = [r for r in board_rows(lb) if r.name == "x"]
    assert row.seeds == (0, 2) and 22.0 not in row.drop.values
    assert len(lb.duplicates) == 1 and set(lb.duplicates[0].files) >= {str(files[("x", 1)].relative_to(tmp_path)),
                                                                       "elsewhere/seed-1.json"}
    result = CliRunner().invoke(cli, ["leaderboard", "--results", str(tmp_path), "--strict"])
    assert result.exit_code == 1 and "elsewhere/seed-1.json" in result.stderr


def test_an_identical_copy_is_one_file_not_a_duplicate(tmp_path):
    files = _board(tmp_path / "a")
    save_json(tmp_path / "b" / "copy.json", json.loads(files[("x", 1)].read_text()))
    lb = from_folders([tmp_path / "a", tmp_path / "b"])
    assert not lb.duplicates and not lb.problems
    assert [r.seeds for r in board_rows(lb)] == [(0, 1, 2), (0, 1, 2)]


# ------------------------------------------------------------------------------------------ strict, bench.report


def test_strict_fails_on_any_problem_one_line_each(tmp_path):
    files = _board(tmp_path)
    _edit(files[("x", 1)], EDITS["ticket fingerprint"])
    assert CliRunner().invoke(cli, ["leaderboard", "--results", str(tmp_path)]).exit_code == 0
    result = CliRunner().invoke(cli, ["leaderboard", "--results", str(tmp_path), "--strict"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("Error: 2 invalid result file(s)") and len(lines) == 3
    assert sorted(line.split(": ", 1)[0] for line in lines[1:]) == sorted(str(files[k]) for k in (("identity", 1),
                                                                                                ("x", 1)))


def _forge_hash(path: Path) -> None:
    _edit(path, lambda r: r["config"]["train"].__setitem__("lr", 0.5))  # no longer hashes to its config_hash


def _duplicate(path: Path) -> None:
    forged = json.loads(path.read_text())
    forged["accuracy"]["perturbed"] -= 1.0
    forged["drop"] += 1.0
    save_json(path.parent / "copy" / path.name, forged)


@pytest.mark.parametrize("forge", [lambda p: _edit(p, EDITS["ticket accuracy"]), _forge_hash, _duplicate],
                         ids=["disagreement", "forged hash", "duplicate"])
def test_python_m_bench_report_fails_on_a_forged_file_and_writes_nothing(tmp_path, forge):
    folder = tmp_path / "leaderboard"
    files = _board(folder / "results")
    forge(files[("x", 1)])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "bench.report", str(folder)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("Error: ") and str(files[("x", 1)]) in proc.stderr
    assert not (folder / "leaderboard.md").exists()


def test_strict_never_builds_a_forged_model_to_draw_its_w0(tmp_path):
    config = full(SMOKE)
    config["model"]["widths"] = [4, 10 ** 7]  # 10^14 weights: its W_0 is not drawn, and it is not ranked
    made_up = {k: "0" * 64 for k in ("w0", "wk", "mask", "ticket")}
    write(tmp_path, record("x", seed=0, dist="o", experiment=from_dict(config), fingerprints=made_up))
    lb = from_folders([tmp_path], strict=True)
    assert not lb.boards and "differs from preset" in lb.ineligible[0].reason


# ------------------------------------------------------------------------------------------ bench verify


@pytest.fixture
def no_training(monkeypatch):
    """bench verify must refuse before it trains: any training here is a failure, never a hang."""
    import bench.experiments.perturb as perturb
    from bench.errors import BenchError

    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise BenchError("REACHED TRAINING")

    monkeypatch.setattr(perturb, "run_perturbations", refuse)
    return calls


def _submitted(tmp_path: Path, experiment=SMOKE, **extra) -> Path:
    made_up = {k: "0" * 64 for k in ("w0", "wk", "mask", "ticket")}  # W_0 of a 10^9-channel model is not drawn here
    rec = record("identity", seed=0, experiment=experiment, trained_with_seeds={"trunk": [0], "ticket": [0],
                                                                                "branch": [0]}, fingerprints=made_up,
                 **extra)
    return write(tmp_path, rec)


@pytest.mark.parametrize("section, field, value, words", [
    ("train", "steps", "1000000000it", "1,000,000"),  # refused by the step bound before the preset check
    ("data", "train_examples", 10 ** 9, "data.train_examples"),
    ("model", "widths", [4, 8 * 10 ** 6], "model.widths"),
    ("prune", "levels", 10 ** 6, "prune.levels"),
    ("data", "dataset", "cifar10", "data.dataset"),
])
def test_verify_refuses_a_config_its_preset_does_not_allow_before_training(tmp_path, no_training, section, field,
                                                                          value, words):
    config = full(SMOKE)
    config[section][field] = value
    path = _submitted(tmp_path, experiment=from_dict(config))
    result = CliRunner().invoke(cli, ["verify", str(path)])
    assert result.exit_code == 1 and not no_training, result.output
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("Error: ") and words in line and "REACHED" not in line


def test_verify_refuses_a_huge_seed_group(tmp_path, no_training):
    rec = record("identity", seed=0, trained_with_seeds={"trunk": list(range(500)), "ticket": list(range(500)),
                                                         "branch": [0]})
    path = write(tmp_path, rec)
    result = CliRunner().invoke(cli, ["verify", str(path)])
    assert result.exit_code == 1 and not no_training and "seed group" in result.stderr


@pytest.mark.parametrize("experiment", [SMOKE, SMOKE.with_overrides(train={"lr": 0.05, "steps": "200it"})])
def test_verify_accepts_the_preset_or_a_documented_override(tmp_path, no_training, experiment):
    path = _submitted(tmp_path, experiment=experiment)
    assert config_hash(experiment) == json.loads(path.read_text())["config_hash"]
    result = CliRunner().invoke(cli, ["verify", str(path)])
    assert no_training and "REACHED TRAINING" in result.output


# ------------------------------------------------------------------------------------------ verified marks


def test_a_recorded_verify_marks_its_rows_and_an_edit_removes_the_mark(tmp_path, data_dir):
    cache = tmp_path / "cache"
    run = CliRunner().invoke(cli, ["run", "--preset", "smoke", "-p", "identity", "--seeds", "2", "--cache-dir",
                                   str(cache), "--data-dir", str(data_dir), "--json"])
    assert run.exit_code == 0, run.output
    results = cache / "results"
    first = sorted(results.rglob("seed-0.json"))[0]
    verified = CliRunner().invoke(cli, ["verify", str(first), "--record", "--data-dir", str(data_dir)])
    assert verified.exit_code == 0, verified.output
    records = list(results.rglob("verified/*.json"))
    assert len(records) == 1
    mark = json.loads(records[0].read_text())
    assert mark["status"] == "exact" and mark["file"].endswith("seed-0.json") and mark["hardware"]
    assert {"created", "code", "sha256"} <= set(mark)

    lb = from_folders([results], min_seeds=1)
    assert not lb.problems and lb.files == 2  # the verification record is not read as a result
    (row,) = board_rows(lb)
    assert row.verified == 1
    from bench.report.markdown import render_markdown

    assert "verified 1/2" in render_markdown(lb)
    assert json.loads(CliRunner().invoke(cli, ["leaderboard", "--results", str(results), "--json"]).stdout)[
        "boards"][0]["rows"][0]["verified"] == 1
    _edit(first, lambda r: r.__setitem__("created", "2030-01-01T00:00:00Z"))  # another file than the one re-proved
    assert board_rows(from_folders([results], min_seeds=1))[0].verified == 0


def _verification(root: Path, result: Path, status: str = "exact", sha: str | None = None) -> Path:
    """A verification record as `bench verify --record` writes it (docs/leaderboard.md)."""
    import hashlib

    digest = sha or hashlib.sha256(result.read_bytes()).hexdigest()
    path = root / "verified" / f"{digest[:16]}-{status}.json"
    save_json(path, {"verification_version": 1, "file": result.name, "sha256": digest, "status": status,
                     "largest_accuracy_difference": 0.0, "first_differing_stage": None, "tolerance": 0.0,
                     "hardware": "cpu:AVX2:threads=1:x86_64", "recorded_hardware": "cpu:AVX2:threads=1:x86_64",
                     "code": {"bench_version": "0.1.0"}, "created": "2026-01-01T00:00:00Z"})
    return path


def test_verification_records_are_read_apart_and_only_exact_matching_ones_mark(tmp_path):
    files = _board(tmp_path)
    _verification(tmp_path, files[("x", 0)])
    _verification(tmp_path, files[("x", 1)], status="mismatch")
    _verification(tmp_path, files[("x", 2)], sha="0" * 64)  # a file that is not there (or was edited since)
    (tmp_path / "verified" / "bad.json").write_text('{"verification_version": 1}')
    lb = from_folders([tmp_path])
    assert [p.source for p in lb.problems] == ["verified/bad.json"] and lb.files == 6
    assert {r.name: r.verified for r in board_rows(lb)} == {"x": 1, "identity": 0}
    assert CliRunner().invoke(cli, ["leaderboard", "--results", str(tmp_path), "--strict"]).exit_code == 1
