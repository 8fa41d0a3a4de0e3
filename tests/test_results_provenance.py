"""Every committed result was produced by committed code of this history (issue 22): ``git_dirty`` false and a
``git_commit`` that is an ancestor of HEAD. A result made from an uncommitted tree cannot be reproduced from
its record, and one made on a commit outside this history names code nobody can check out."""

from __future__ import annotations

import json
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = [ROOT / "leaderboard" / "results", *sorted((ROOT / "leaderboard").glob("smoke*"))]
FIX = "regenerate it from a clean committed tree (scripts/regenerate_results.sh, scripts/smoke_sample.sh)"


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30)


def _records() -> list[tuple[Path, dict]]:
    found = []
    for folder in COMMITTED:
        for file in sorted(folder.rglob("*.json")):
            data = json.loads(file.read_text())
            code = data.get("environment", {}) if isinstance(data, dict) else {}
            if "git_commit" in code and "git_dirty" in code:
                found.append((file, code))
    return found


@lru_cache(maxsize=None)
def _is_ancestor(commit: str) -> bool:
    return _git("merge-base", "--is-ancestor", commit, "HEAD").returncode == 0


@pytest.fixture(scope="module")
def history():
    if not (ROOT / ".git").exists() or _git("rev-parse", "HEAD").returncode != 0:
        pytest.skip("not a git checkout: the commits results name cannot be checked here")
    if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("a shallow clone lacks the history results name; clone with full history to check it")


def test_every_committed_result_names_its_code():
    files = [f for folder in COMMITTED for f in folder.rglob("*.json")]
    records = _records()
    assert files and len(records) == len(files), \
        f"{len(files) - len(records)} committed result files record no environment.git_commit/git_dirty; {FIX}"


def test_committed_results_come_from_clean_committed_trees(history):
    dirty = [str(f.relative_to(ROOT)) for f, r in _records() if r.get("git_dirty") is not False]
    assert not dirty, f"{len(dirty)} results were made from an uncommitted tree (first: {dirty[:3]}); {FIX}"
    foreign = sorted({r["git_commit"] for _, r in _records() if not _is_ancestor(r["git_commit"])})
    assert not foreign, f"results name commits that are not ancestors of HEAD: {foreign[:5]}; {FIX}"
