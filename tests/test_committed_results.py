"""CI proves the committed results: a change to the numerics that is not followed by regenerated results fails.

* leaderboard/smoke*/ hold `smoke` preset results committed for this purpose, one folder per kernel class
  (the same pinned kernels round differently on another CPU model): those of this machine's class are
  re-run from scratch with `bench verify`, and every one must come back exactly (fingerprints and accuracies).
* The default preset's committed results are too long to re-run all of them here, so their W_0 and W_k are
  recomputed (a k-iteration replay of each recorded trunk group) and compared with the fingerprints they
  record. W_0 is drawn by the CPU generator under the pinned ATen kernels, the same on every x86-64 machine,
  so it is checked everywhere; W_k only on a machine of the results' class.
* On a machine of the results' class, one committed default-preset result, chosen afresh from the commit
  being tested (the sample's seed is derived from git HEAD), is re-run from scratch with `bench verify` and
  must come back exactly: every commit re-proves another file, so no file can count on never being drawn.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bench import stages
from bench.cli import cli
from bench.config import from_dict
from bench.data import load_dataset
from bench.provenance import PROTOCOL_VERSION, fingerprint, hardware_class, record_class
from bench.results import load_results

ROOT = Path(__file__).resolve().parent.parent
SMOKE_SAMPLES = sorted((ROOT / "leaderboard").glob("smoke*"))
RESULTS = ROOT / "leaderboard" / "results"
HERE = hardware_class("cpu")
REGENERATE = "the numerics changed: regenerate the committed results (see leaderboard/README.md)"


def _class_of(folder: Path) -> set[str]:
    return {record_class(r.data) for r in load_results([folder], strict=True).results}


def test_committed_smoke_results_reproduce_exactly(data_dir):
    mine = [folder for folder in SMOKE_SAMPLES if _class_of(folder) == {HERE}]
    if not mine:
        pytest.skip(f"no committed smoke sample of this machine's kernel class ({HERE}); the samples are of "
                    f"{sorted(set().union(*map(_class_of, SMOKE_SAMPLES)))} (docs/reproducibility.md)")
    for folder in mine:
        out = CliRunner().invoke(cli, ["verify", "--results", str(folder), "--data-dir", str(data_dir), "--json"])
        report = json.loads(out.stdout)
        bad = [f for f in report["files"] if f["status"] != "exact"]
        assert out.exit_code == 0 and not bad and report["verified"] >= 4, f"{REGENERATE}: {bad}"


def _default_records() -> list[dict]:
    return [r.data for r in load_results([RESULTS], strict=True).results]


def test_committed_results_are_of_this_protocol():
    records = _default_records()
    assert records and all(r.get("protocol_version") == PROTOCOL_VERSION for r in records), REGENERATE


def test_default_preset_w0_and_wk_fingerprints_recompute(tmp_path, data_dir):
    """W_0 of every committed replicate, and W_k where this machine is of the results' kernel class, replayed
    for k iterations in the recorded trunk group."""
    records = [r for r in _default_records() if r.get("kind") != "instability"]  # those replay their own stages
    check_wk = {record_class(r) for r in records} == {HERE}
    recorded: dict[tuple, dict] = {}
    for r in records:
        key = (json.dumps(r["config"], sort_keys=True), tuple(r["trained_with_seeds"]["trunk"]))
        recorded.setdefault(key, {})[r["seed"]] = r["fingerprints"]
    cpu = torch.device("cpu")
    for i, ((config, group), fingerprints) in enumerate(sorted(recorded.items())):
        exp = from_dict(json.loads(config))
        env = stages.Env(cache=tmp_path / str(i), device=cpu, data=load_dataset(exp.data, data_dir, cpu))
        reps = [stages.Replicate(exp, seed, env) for seed in group]
        jobs = []
        for rep in reps:
            job = rep.trunk_job()
            job.end = rep.k if check_wk else 1  # the first k iterations (W_k), or only what W_0 needs
            job.finish = lambda accuracy, seconds, seeds, val_accuracy=None: {}
            jobs.append(job)
        stages.execute(jobs, env)
        for rep in reps:
            if rep.seed in fingerprints:
                w0 = fingerprint(torch.load(rep.stage_dir(0) / "w0.pt", weights_only=True))
                assert w0 == fingerprints[rep.seed]["w0"], f"W_0 of seed {rep.seed}: {REGENERATE}"
                if check_wk:
                    wk = fingerprint(torch.load(rep.stage_dir(0) / "wk.pt", weights_only=True))
                    assert wk == fingerprints[rep.seed]["wk"], f"W_k of seed {rep.seed}: {REGENERATE}"


def commit_seed() -> int | None:
    """The sample seed of this commit: the first 8 hex digits of git HEAD (None outside a git checkout)."""
    from bench.provenance import code_version

    commit = code_version().get("git_commit")
    return int(commit[:8], 16) if commit else None


@pytest.mark.slow
def test_a_committed_default_result_chosen_by_the_commit_reproduces_exactly(data_dir):
    classes = {record_class(r) for r in _default_records()}
    if classes != {HERE}:
        pytest.skip(f"the committed default-preset results are of {sorted(classes)} and this machine is {HERE}: "
                    f"a re-run is bit-exact only within one kernel class (docs/reproducibility.md)")
    seed = commit_seed()
    if seed is None:
        pytest.skip("not a git checkout: no commit to choose the sample from")
    out = CliRunner().invoke(cli, ["verify", "--results", str(RESULTS), "--sample", "1", "--seed", str(seed),
                                   "--data-dir", str(data_dir), "--json"])
    report = json.loads(out.stdout)
    assert out.exit_code == 0 and report["verified"] == 1 and report["files"][0]["status"] == "exact", \
        f"{REGENERATE}: {report['files']}"


def test_the_readme_table_and_bars_are_what_builtin_table_prints_from_the_committed_results():
    """The README's measured drops and bars are hand-placed output of `scripts/builtin_table.py`: every line
    it prints from leaderboard/results appears in the README verbatim, so a regeneration cannot leave them stale."""
    root = Path(__file__).resolve().parent.parent
    printed = subprocess.run([sys.executable, "scripts/builtin_table.py", "leaderboard/results", "--level", "3"],
                             cwd=root, capture_output=True, text=True, check=True).stdout
    readme = (root / "README.md").read_text()
    missing = [line for line in printed.splitlines() if line.strip() and line not in readme]
    assert not missing, f"README.md lacks {len(missing)} line(s) builtin_table.py prints, e.g. {missing[0]!r}"


if not SMOKE_SAMPLES:  # pragma: no cover - the folder is committed
    pytestmark = pytest.mark.skip(reason="leaderboard/smoke-* is missing")
