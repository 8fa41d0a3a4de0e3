"""Several IMP levels in one `bench run` (--level all, repeated --level), the figure of accuracy against
sparsity, and the IMP-rewound-to-0 reference on every board: on real smoke results at two levels."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.cli.options import parse_levels
from bench.errors import BenchError
from bench.experiments.records import Outcome
from bench.plugins import PluginInfo
from bench.presets import get_preset
from bench.report.figures import accuracy_vs_sparsity
from bench.report.markdown import render_markdown
from bench.report.model import from_folders
from bench.results import load_results
from bench.stats import summarize

PLUGIN = PluginInfo("builtin-controls", "earlyphase-bench", "0.1.0", "plugins.controls")
SMOKE_PCT = {0: 100.0, 1: 50.0, 2: 25.0}


# ------------------------------------------------------------------------------------------ --level parsing


def test_parse_levels():
    assert parse_levels(("all",), 2) == [0, 1, 2]
    assert parse_levels(("2", "1", "1"), 2) == [1, 2]  # ascending, each once
    assert parse_levels(("ALL", "1"), 2) == [0, 1, 2]
    assert parse_levels((), 2) == []  # the preset's level
    assert parse_levels(("9",), 2) == [9]  # one level: prepare() names every reachable sparsity
    for bad in ("x", "-1", "1.5", "", "²"):
        with pytest.raises(BenchError, match=r"^--level takes a level number 0\.\.2 or 'all', got '"):
            parse_levels((bad,), 2)
    with pytest.raises(BenchError, match="got '9'"):  # several: refused before the first one trains
        parse_levels(("1", "9"), 2)


def _outcomes(name: str, level: int) -> Outcome:
    o = Outcome("smoke", get_preset("smoke").experiment, level, SMOKE_PCT[level], name, PLUGIN, {})
    o.records = [{"seed": s, "drop": d, "effective_std": 0.1, "config_hash": "h",
                  "accuracy": {"dense": 70.0, "ticket": 60.0, "perturbed": 60.0 - d}}
                 for s, d in enumerate([1.0 + level, 2.0 + level])]
    return o


@pytest.fixture
def fake_run(monkeypatch):
    """run_perturbations replaced: the calls it gets, in order."""
    import bench.experiments.perturb as perturb

    calls = []

    def fake(preset, requests, options, *, level=None, sparsity=None, **kw):
        calls.append((level, sparsity))
        return [_outcomes(name, 2 if level is None else level) for name, _ in requests]

    monkeypatch.setattr(perturb, "run_perturbations", fake)
    return calls


def test_level_all_runs_every_level_in_ascending_order(tmp_path, fake_run):
    long = "keep-magnitude-init-sign"
    args = ["run", "--preset", "smoke", "-p", "identity", "-p", long, "--seeds", "2", "--device", "cpu",
            "--cache-dir", str(tmp_path)]
    shown = CliRunner(env={"COLUMNS": "80"}).invoke(cli, [*args, "--level", "all"])
    assert shown.exit_code == 0, shown.output
    assert fake_run == [(0, None), (1, None), (2, None)]
    for level, pct in SMOKE_PCT.items():  # one table per level, titled with it
        assert shown.stdout.count(f"smoke, level {level}: {pct:.1f}% of weights remaining, 2 seeds") == 1
    assert max(map(len, shown.stdout.splitlines())) <= 80 and long in shown.stdout  # the name is not cut
    row = next(line for line in shown.stdout.splitlines() if long in line and "3.50" in line)  # level 2
    assert "60.00" in row and "56.50" in row and "[-2.85, 9.85]" in row
    assert "--vs-sparsity" in shown.stderr  # what to draw next

    fake_run.clear()
    as_json = CliRunner().invoke(cli, [*args, "--level", "2", "--level", "1", "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert fake_run == [(1, None), (2, None)]
    data = json.loads(as_json.stdout)
    assert list(data) == ["levels"]
    assert [[r["level"] for r in entry["runs"]] for entry in data["levels"]] == [[1, 1], [2, 2]]
    assert [r["perturbation"] for r in data["levels"][0]["runs"]] == ["identity", long]
    one = CliRunner().invoke(cli, [*args[:4], *args[6:], "--level", "all", "--level", "1", "--json"])
    assert [entry["level"] for entry in json.loads(one.stdout)["levels"]] == [0, 1, 2]  # one perturbation each


def test_one_level_prints_what_it_always_did(tmp_path, fake_run):
    args = ["run", "--preset", "smoke", "--seeds", "2", "--device", "cpu", "--cache-dir", str(tmp_path)]
    shown = CliRunner(env={"COLUMNS": "120"}).invoke(cli, [*args, "--level", "1"])
    assert shown.exit_code == 0, shown.output
    assert fake_run == [(1, None)]
    assert "identity on smoke: level 1, 50.0% of weights remaining" in shown.stdout  # the per-seed table
    assert "--output drops.png" in shown.stderr
    data = json.loads(CliRunner().invoke(cli, [*args, "--json"]).stdout)
    assert data["level"] == 2 and "levels" not in data and fake_run[-1] == (None, None)  # the preset's level
    CliRunner().invoke(cli, [*args, "--sparsity", "50", "--json"])
    assert fake_run[-1] == (None, 50.0)


@pytest.mark.parametrize("args, message", [
    (["--level", "two"], "Error: --level takes a level number 0..2 or 'all', got 'two'."),
    (["--level", "1", "--level", "5"], "Error: --level takes a level number 0..2 or 'all', got '5'."),
    (["--level", "all", "--sparsity", "50"], "Error: Give either --level or --sparsity, not both."),
])
def test_bad_levels_are_one_line_and_train_nothing(tmp_path, fake_run, args, message):
    out = CliRunner().invoke(cli, ["run", "--preset", "smoke", "--cache-dir", str(tmp_path), *args])
    assert out.exit_code == 1 and out.output.strip() == message
    assert fake_run == []


# ------------------------------------------------------------------------------------------ real results


@pytest.fixture(scope="module")
def two_levels(tmp_path_factory, data_dir):
    """identity and imp-rewind-0 on smoke, 2 seeds, levels 1 and 2 (a few seconds of CPU)."""
    cache = tmp_path_factory.mktemp("levels-cache")
    ran = CliRunner().invoke(cli, ["run", "-p", "identity", "-p", "imp-rewind-0", "--preset", "smoke", "--seeds", "2",
                                   "--level", "1", "--level", "2", "--device", "cpu", "--cache-dir", str(cache),
                                   "--data-dir", str(data_dir), "--json"])
    assert ran.exit_code == 0, ran.output
    return cache / "results", json.loads(ran.stdout)


def test_real_run_over_two_levels(two_levels):
    results, data = two_levels
    assert [[(r["level"], r["perturbation"], r["n"]) for r in entry["runs"]] for entry in data["levels"]] == [
        [(1, "identity", 2), (1, "imp-rewind-0", 2)], [(2, "identity", 2), (2, "imp-rewind-0", 2)]]
    assert data["levels"][1]["runs"][0]["stages"]["cached"] > 0  # level 2 reused level 1's stages
    for entry in data["levels"]:
        identity, reference = entry["runs"]
        assert identity["summary"]["drop"]["mean"] == 0.0
        for i, r in zip(identity["results"], reference["results"]):  # one ticket per seed, whatever the perturbation
            assert r["accuracy"]["ticket"] == i["accuracy"]["ticket"]
    loaded = load_results([results])
    assert loaded.problems == [] and len(loaded.results) == 8


def _records(results, name: str, level: int) -> list[dict]:
    recs = [r.data for r in load_results([results]).results
            if r.data["perturbation"]["name"] == name and r.data["level"] == level]
    return sorted(recs, key=lambda r: r["seed"])


def test_accuracy_vs_sparsity_series(two_levels):
    results, _ = two_levels
    curve = accuracy_vs_sparsity(from_folders([results]))
    assert (curve.preset, curve.rewind_step) == ("smoke", 10)
    assert curve.levels == ((1, 50.0), (2, 25.0))  # densest first, as the x axis runs
    assert [(line.kind, line.label) for line in curve.lines] == [
        ("ticket", "ticket, rewound to k = 10"), ("reference", "imp-rewind-0"), ("control", "identity")]
    ticket, reference, identity = curve.lines
    for i, level in enumerate((1, 2)):
        own = _records(results, "identity", level)
        ref = _records(results, "imp-rewind-0", level)
        assert ticket.points[i].level == level and ticket.points[i].percent_remaining == SMOKE_PCT[level]
        assert ticket.points[i].accuracy == summarize([r["accuracy"]["ticket"] for r in own])
        assert reference.points[i].accuracy == summarize([r["accuracy"]["perturbed"] for r in ref])
        assert identity.points[i].accuracy == ticket.points[i].accuracy  # identity retrains the ticket exactly
    assert curve.dense == summarize([r["accuracy"]["dense"] for r in _records(results, "identity", 1)])
    assert curve.dense.n == 2


def test_plot_vs_sparsity_writes_png_and_svg(two_levels, tmp_path):
    results, _ = two_levels
    runner = CliRunner()
    for name, magic in (("a.png", b"\x89PNG"), ("a.svg", b"<?xml")):
        out = runner.invoke(cli, ["plot", "--results", str(results), "--vs-sparsity", "--output", str(tmp_path / name)])
        assert out.exit_code == 0, out.output
        assert (tmp_path / name).read_bytes().startswith(magic) and "Warning" not in out.stderr
    svg = (tmp_path / "a.svg").read_text()
    for text in ("IMP rewound to 0 (k = 0, paper", "ticket, rewound to k = 10", "dense network",
                 "percent of weights remaining", "50.0", "25.0"):
        assert text in svg, text
    again = runner.invoke(cli, ["plot", "--results", str(results), "--vs-sparsity", "--output", str(tmp_path / "b.svg")])
    assert again.exit_code == 0 and (tmp_path / "b.svg").read_bytes() == (tmp_path / "a.svg").read_bytes()
    clash = runner.invoke(cli, ["plot", "--results", str(results), "--vs-sparsity", "--sparsity", "25", "--output",
                                str(tmp_path / "c.png")])
    assert clash.exit_code == 1 and "--vs-sparsity draws every sparsity: leave out --sparsity." in clash.stderr
    drops = runner.invoke(cli, ["plot", "--results", str(results), "--output", str(tmp_path / "d.png")])
    assert drops.exit_code == 0, drops.output  # the forest plot of the default level


def test_every_board_shows_the_reference_or_how_to_add_it(two_levels, tmp_path):
    results, _ = two_levels
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    for path in list(copy.rglob("level-1/imp-rewind-0-*")):  # no reference at 50%
        shutil.rmtree(path)
    text = render_markdown(from_folders([copy]))
    level1, level2 = text.split("## smoke: 50.0%")[1].split("## smoke: 25.0%")
    assert "No IMP-rewound-to-0 reference at this sparsity: run bench run -p imp-rewind-0 --preset smoke " \
           "--seeds 2 --level 1." in level1
    ref = from_folders([copy]).boards[1].reference
    assert ref is not None and ref.name == "imp-rewind-0" and ref.n == 2
    assert "Reference, IMP rewound to 0 (imp-rewind-0): mean drop " in level2 and "reference (k = 0)" in level2
