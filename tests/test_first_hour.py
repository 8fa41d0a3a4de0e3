"""The first hour of a plugin author (issue 25, item 7): the documented first run is ranked, a run says when it
trained seeds it does not report, the template installs with its tests, the leaderboard's empty and filtered
cases say what to do, and the README says how to install without CUDA."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from click.testing import CliRunner

from bench.cli import cli
from bench.cli.run import say_group_seeds
from bench.execute import StageEvent
from bench.report.model import DEFAULT_MIN_SEEDS

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "templates" / "bench-plugin-template"


def _seeds_of_first_runs(text: str) -> list[int]:
    runs = [line for line in text.splitlines() if line.startswith("bench run") and "--preset smoke" in line]
    assert runs
    return [int(re.search(r"--seeds (\d+)", line).group(1)) if "--seeds" in line else 1 for line in runs]


def test_the_documented_first_runs_have_enough_seeds_to_be_ranked():
    for doc in (ROOT / "CONTRIBUTING.md", TEMPLATE / "README.md"):
        assert min(_seeds_of_first_runs(doc.read_text())) >= DEFAULT_MIN_SEEDS, doc


def test_the_template_installs_with_its_tests():
    readme = (TEMPLATE / "README.md").read_text()
    assert "pip install -e '.[test]'" in readme and "bench-plugin-template[test]'" in readme
    extras = tomllib.loads((TEMPLATE / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("pytest") for req in extras["test"])


class _Outcome:  # the part of an Outcome say_group_seeds reads
    def __init__(self, seeds: list[int], trained: list[int]):
        self.records = [{"seed": s} for s in seeds]
        self.events = [StageEvent("cached", "dense trunk", s) for s in seeds] + \
                      [StageEvent("trained", "reinit at level 2", s) for s in trained]


def test_a_run_says_in_one_line_when_it_trained_seeds_it_does_not_report(capsys):
    say_group_seeds([[_Outcome([0], [0, 1, 2])]])
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "Also trained seeds 1, 2" in err and "1 seed asked for, 3 trained" in err and "--seeds 0,1,2" in err
    say_group_seeds([[_Outcome([0, 1], [0, 1])]])
    assert capsys.readouterr().err == ""


def test_a_real_run_that_follows_an_earlier_seed_group_says_so(tmp_path, data_dir):
    common = ["--preset", "smoke", "--cache-dir", str(tmp_path), "--data-dir", str(data_dir), "--workers", "1"]
    first = CliRunner().invoke(cli, ["run", "-p", "identity", "--seeds", "2", *common])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(cli, ["run", "-p", "reinit", "--seeds", "1", *common])
    assert second.exit_code == 0, second.output
    lines = [line for line in second.stderr.splitlines() if line.startswith("Also trained")]
    assert len(lines) == 1 and "seed 1," in lines[0] and "2 trained" in lines[0], second.stderr


def test_an_empty_cache_points_at_the_committed_results(tmp_path):
    done = CliRunner().invoke(cli, ["leaderboard", "--cache-dir", str(tmp_path)])
    assert done.exit_code == 0
    assert "--results leaderboard/results" in done.stderr


def test_a_sparsity_with_no_results_lists_the_sparsities_there_are():
    done = CliRunner().invoke(cli, ["leaderboard", "--results", str(ROOT / "leaderboard" / "results"),
                                    "--sparsity", "99"])
    assert done.exit_code == 0
    assert "No results at 99% of weights remaining" in done.stderr and "stored results are at: 6.4%" in done.stderr
    assert "minimum seeds" not in done.stderr


def test_the_readme_says_how_to_install_without_cuda():
    readme = (ROOT / "README.md").read_text()
    pinned = re.search(r"^torch==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M).group(1)
    assert f"torch=={pinned}" in readme and "download.pytorch.org/whl/cpu" in readme
