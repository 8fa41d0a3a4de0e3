"""The outside-plugin path end to end, with the template installed as its own distribution.

Skipped unless ``pip install ./templates/bench-plugin-template`` was run (CI does).
"""

from __future__ import annotations

import json
from importlib import metadata

import pytest
from click.testing import CliRunner

from bench.cli import cli

DIST = "bench-plugin-template"
NAME = "sign-flip-fraction"

try:
    metadata.distribution(DIST)
except metadata.PackageNotFoundError:
    pytestmark = pytest.mark.skip(reason=f"{DIST} is not installed (pip install ./templates/{DIST})")


def test_the_installed_template_is_listed_with_its_distribution():
    result = CliRunner().invoke(cli, ["perturbations", "--json"])
    assert result.exit_code == 0, result.output
    row = next(r for r in json.loads(result.stdout) if r["name"] == NAME)
    assert row["distribution"] == DIST and row["version"] == metadata.version(DIST)
    assert row["params"] == [{"name": "fraction", "type": "float", "default": 0.1,
                              "help": "probability that a weight's sign flips, in [0, 1]"}]


def test_bench_load_plugins_can_exclude_it(monkeypatch):
    monkeypatch.setenv("BENCH_LOAD_PLUGINS", "earlyphase-bench")  # the built-ins only
    result = CliRunner().invoke(cli, ["perturbations", "--json"])
    names = {r["name"] for r in json.loads(result.stdout)}
    assert NAME not in names and "identity" in names


@pytest.mark.slow
def test_it_runs_on_the_smoke_preset_and_its_result_is_stored(tmp_path, data_dir):
    args = ["run", "--preset", "smoke", "--perturbation", NAME, "--param", "fraction=0.3",
            "--cache-dir", str(tmp_path), "--data-dir", str(data_dir), "--device", "cpu", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["perturbation"] == NAME and report["params"] == {"fraction": 0.3}
    (record,) = report["results"]
    assert record["perturbation"]["distribution"] == DIST
    assert record["effective_std"] > 0
    stored = [json.loads(p.read_text()) for p in (tmp_path / "results").rglob("*.json")]
    assert [s["perturbation"]["name"] for s in stored] == [NAME]


def test_the_templates_own_tests_pass():
    """The template's tests are what a plugin author starts from: they must pass against this bench."""
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent.parent / "templates" / DIST / "tests"
    done = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider", str(tests)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout
