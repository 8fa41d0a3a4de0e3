"""The committed leaderboard must be exactly what its committed results generate: no table is edited by hand."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.report.committed import committed, write_committed
from bench.report.model import COMMITTED_MIN_SEEDS

FOLDER = Path(__file__).resolve().parent.parent / "leaderboard"
RESULTS = FOLDER / "results"
REGENERATE = "run `python -m bench.report` from the repository root and commit the result"


def _has_results() -> bool:
    return RESULTS.is_dir() and any(RESULTS.rglob("*.json"))


needs_results = pytest.mark.skipif(not _has_results(), reason="leaderboard/results holds no result files yet")


@needs_results
def test_committed_tables_regenerate_byte_for_byte(tmp_path):
    # regenerate from a copy, so the check cannot depend on, or write into, the working tree
    copy = tmp_path / "leaderboard"
    shutil.copytree(RESULTS, copy / "results")
    shutil.copy(FOLDER / "README.md", copy / "README.md")
    written = {path.name: path.read_bytes() for path in write_committed(copy)}
    assert set(written) == {"leaderboard.md", "leaderboard.html", "README.md"}
    for name, data in written.items():
        committed_file = FOLDER / name
        assert committed_file.exists(), f"leaderboard/{name} is missing: {REGENERATE}"
        assert committed_file.read_bytes() == data, f"leaderboard/{name} differs from its results: {REGENERATE}"


@needs_results
def test_documented_commands_give_the_same_tables(tmp_path, monkeypatch):
    # leaderboard/README.md promises these commands write the committed tables
    monkeypatch.chdir(FOLDER.parent)
    for name, fmt in (("leaderboard.md", "markdown"), ("leaderboard.html", "html")):
        out = tmp_path / name
        result = CliRunner().invoke(cli, ["leaderboard", "--results", "leaderboard/results", "--min-seeds",
                                          str(COMMITTED_MIN_SEEDS), "--strict", "--format", fmt, "--output", str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_bytes() == (FOLDER / name).read_bytes(), f"leaderboard/{name}: {REGENERATE}"


def test_generated_files_match_an_empty_results_folder_too(tmp_path):
    """Before any results are committed the generated files must still be the empty tables (and the check
    itself must work without results)."""
    if _has_results():
        pytest.skip("leaderboard/results has files; the byte-for-byte test covers them")
    copy = tmp_path / "leaderboard"
    copy.mkdir()
    shutil.copy(FOLDER / "README.md", copy / "README.md")
    for name, text in committed(copy).items():
        assert (FOLDER / name).read_text(encoding="utf-8") == text, f"leaderboard/{name}: {REGENERATE}"


def test_project_readme_shows_the_committed_table():
    from bench.report.committed import readme_block

    top = (FOLDER.parent / "README.md").read_text(encoding="utf-8")
    assert readme_block(top) == readme_block((FOLDER / "README.md").read_text(encoding="utf-8")), REGENERATE
