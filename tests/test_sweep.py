"""`bench sweep`: sweep-file validation, dry-run counts, the local executor, resume, the hardware and
shared-cache checks, and the slurm executor against a real SLURM (skipped when none answers)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.errors import BenchError

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "sweeps" / "smoke.toml"


def bench(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def sweep_json(*args) -> dict:
    result = bench("sweep", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def per_seed(data: dict) -> list[tuple]:
    """What must agree exactly between two runs of one sweep: every seed's accuracies and drop."""
    return sorted((r["perturbation"], json.dumps(r["params"], sort_keys=True), r["level"], r["seed"],
                   r["accuracy"]["dense"], r["accuracy"]["ticket"], r["accuracy"]["perturbed"], r["drop"])
                  for r in data["results"])


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """sweeps/smoke.toml run once with the local executor (2 workers); tests copy its cache before changing it."""
    cache = tmp_path_factory.mktemp("sweep-local")
    data = sweep_json(SMOKE, "--jobs", 2, "--cache-dir", cache)
    return cache, data


# ------------------------------------------------------------------------------------------ the sweep file


@pytest.mark.parametrize("text, message", [
    ('presets = ["smoke"]\n[perturbations]\nshufle-layer = {}\n',
     "perturbations.shufle-layer: Unknown perturbation 'shufle-layer'. Did you mean 'shuffle-layer'? Known:"),
    ('presets = ["smok"]\n[perturbations]\nidentity = {}\n', "presets: Unknown preset 'smok'. Did you mean 'smoke'?"),
    ('presets = ["smoke"]\n', "perturbations: missing"),
    ('presets = ["smoke"]\nseed = 2\n[perturbations]\nidentity = {}\n', "seed: Unknown key 'seed'. Did you mean 'seeds'?"),
    ('presets = ["smoke"]\nseeds = 0\n[perturbations]\nidentity = {}\n', "seeds: expected a count >= 1"),
    ('presets = ["smoke"]\nseeds = [0, 0]\n[perturbations]\nidentity = {}\n', "seeds: has duplicates"),
    ('presets = ["smoke"]\nlevels = [5]\n[perturbations]\nidentity = {}\n',
     "levels: smoke: Level 5 is out of range; reachable: 100.0% (level 0)"),
    ('presets = ["smoke"]\nsparsities = [33]\n[perturbations]\nidentity = {}\n',
     "sparsities: smoke: No IMP level leaves 33.0% of weights"),
    ('presets = ["smoke"]\nlevels = [1]\nsparsities = [50]\n[perturbations]\nidentity = {}\n',
     "levels: give either levels or sparsities, not both"),
    ('presets = ["smoke"]\n[perturbations]\ngaussian-noise = { scael = [1, 2] }\n',
     "perturbations.gaussian-noise: Perturbation 'gaussian-noise' has no parameter 'scael'"),
    ('presets = ["smoke"]\n[perturbations]\nidentity = {}\n[overrides]\ntrian = { steps = "60it" }\n',
     "overrides.trian: Unknown section 'trian'. Did you mean 'train'?"),
    ('presets = ["smoke"]\n[perturbations]\nidentity = {}\n[run]\nthreads = 0\n', "run.threads: expected a whole number"),
    ('presets = ["smoke"]\n[perturbations]\nidentity = {}\n[slurm]\npartiton = "gpu"\n',
     "slurm.partiton: Unknown key 'partiton'. Did you mean 'partition'?"),
    ('presets = ["smoke"]\n[perturbations]\nidentity = {}\n[[pretraining]]\nname = "blur"\n',
     "pretraining: pre-training entries are not supported by bench sweep yet"),
    ('presets = ["smoke"\n', "is not valid TOML"),
])
def test_bad_sweep_files_fail_in_one_line_naming_the_key(tmp_path, text, message):
    result = bench("sweep", write(tmp_path, text), "--dry-run", "--cache-dir", tmp_path)
    assert result.exit_code == 1
    assert message in result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1


def test_missing_sweep_file(tmp_path):
    result = bench("sweep", tmp_path / "nope.toml", "--dry-run")
    assert result.exit_code == 1 and "does not exist" in result.output


# ------------------------------------------------------------------------------------------ dry run


def test_dry_run_counts_the_stage_graph_and_runs_nothing(tmp_path):
    data = sweep_json(SMOKE, "--dry-run", "--cache-dir", tmp_path)
    # smoke: T = 120, k = 10, 2 levels. Tickets: 2 seeds x (trunk 120 + 2 levels x 110) = 680 iterations in 6
    # trainings; each of the 2 branches units: 2 seeds x 110.
    assert data["counts"] == {"units": 3, "cached_units": 0, "units_to_run": 3, "tickets_units": 1,
                              "branches_units": 2, "trainings": 10, "replicate_iterations": 1120,
                              "estimated_hours": data["counts"]["estimated_hours"]}
    assert [u["kind"] for u in data["units"]] == ["tickets", "branches", "branches"]
    assert all(u["depends"] == data["units"][0]["id"] for u in data["units"][1:])
    assert not (tmp_path / "experiments").exists()  # nothing trained, nothing written


def test_dry_run_expands_grids_levels_and_seed_groups(tmp_path):
    path = write(tmp_path, 'presets = ["smoke"]\nseeds = [3, 5, 7]\nsparsities = [50, 25]\n'
                           '[perturbations]\nidentity = {}\ngaussian-noise = { scale = [0.5, 1, 2] }\n'
                           '[run]\ngroup_size = 2\n')
    data = sweep_json(path, "--dry-run", "--cache-dir", tmp_path)
    tickets = [u for u in data["units"] if u["kind"] == "tickets"]
    assert [t["seeds"] for t in tickets] == [[3, 5], [7]]  # seed groups of at most group_size
    # per seed group: 2 levels x (identity + 3 noise scales) branches units
    assert data["counts"]["branches_units"] == 2 * 2 * 4
    assert data["counts"]["trainings"] == 3 * 3 + 3 * 2 * 4  # 3 seeds x (trunk + 2 levels), then the branches
    scales = {u["requests"][0][1].get("scale") for u in data["units"] if u["requests"]}
    assert scales == {None, "0.5", "1", "2"}


def test_dry_run_text(tmp_path):
    result = bench("sweep", SMOKE, "--dry-run", "--cache-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert "3 units (0 cached), 3 to run: 10 trainings, 1,120 replicate-iterations" in result.output


# ------------------------------------------------------------------------------------------ local executor


def test_local_sweep_pairs_exactly_and_matches_its_plan(local_run):
    cache, data = local_run
    assert data["states"] == {"cached": 0, "queued": 0, "running": 0, "done": 3, "failed": 0}
    assert sum(u["trained"] for u in data["units"]) == 10  # the dry run's count
    results = data["results"]
    assert len(results) == 4  # 2 perturbations x 2 seeds
    for r in results:
        assert r["trained_with_seeds"] == {"trunk": [0, 1], "ticket": [0, 1], "branch": [0, 1]}  # one group, one path
        if r["perturbation"] == "identity":
            assert r["drop"] == 0.0 and r["accuracy"]["perturbed"] == r["accuracy"]["ticket"]
    stages = json.loads(next((cache / "experiments").glob("p*/*/seed-0/level-2/done.json")).read_text())
    assert stages["hardware"].startswith("cpu:")  # every stage records its hardware class


def test_each_unit_log_has_a_header_and_its_stages(local_run):
    """A unit's log (what `failed: ... (log: ...)` points at) is a batch log like `bench run`'s (bench/batchlog.py)."""
    logs = sorted((local_run[0] / "sweeps").glob("*/logs/*.log"))
    assert len(logs) == 3
    for log in logs:
        lines = log.read_text().splitlines()
        header = next(line for line in lines if " sweep unit: " in line)
        assert "unit=" in header and "preset=smoke" in header and "class=" in header and "seeds=0-1" in header
        assert any("] start " in line for line in lines) and any("] finished " in line for line in lines)


def test_rerun_trains_nothing(local_run, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(local_run[0], cache)
    again = sweep_json(SMOKE, "--cache-dir", cache)
    assert again["states"]["cached"] == 3 and again["states"]["done"] == 0
    assert per_seed(again) == per_seed(local_run[1])


def test_rerun_after_partial_run_runs_only_the_missing_unit(local_run, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(local_run[0], cache)
    # as if the driver had been killed before the shuffle-layer unit ran: its stages and results are missing
    for folder in cache.glob("experiments/p*/*/seed-*/level-2/branch/shuffle-layer-*"):
        shutil.rmtree(folder)
    shutil.rmtree(next(cache.glob("results/*/level-2/shuffle-layer-*")))
    again = sweep_json(SMOKE, "--cache-dir", cache)
    states = {u["id"].split(":")[-1] if u["kind"] == "branches" else "tickets": (u["state"], u["trained"])
              for u in again["units"]}
    assert states == {"tickets": ("cached", 0), "identity": ("cached", 0), "shuffle-layer": ("done", 2)}
    assert per_seed(again) == per_seed(local_run[1])  # the same numbers: same seed group, same path


def test_killed_driver_resumes_without_retraining_finished_stages(local_run, tmp_path):
    """Kill the driver and its workers (as a lost login session would) once the tickets are done; the rerun
    trains only what had not finished and ends with the same numbers."""
    import os
    import signal
    import sys
    import time

    cache = tmp_path / "cache"
    shutil.copytree(local_run[0], cache)
    # start from trunk and level 1 done (to keep the test short): the killed run trains level 2, then is killed
    for seed_dir in cache.glob("experiments/p*/*/seed-*"):
        shutil.rmtree(seed_dir / "level-2")
    shutil.rmtree(cache / "results")
    env = dict(os.environ, CI="1")
    proc = subprocess.Popen([sys.executable, "-m", "bench", "sweep", str(SMOKE), "--cache-dir", str(cache)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(list(cache.glob("experiments/p*/*/seed-*/level-2/done.json"))) < 2:
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its worker processes, at once
        proc.wait()
    finished = len(list(cache.glob("experiments/p*/*/seed-*/level-2/branch/*/done.json")))
    again = sweep_json(SMOKE, "--cache-dir", cache, "--jobs", 2)
    assert again["units"][0]["state"] == "cached"  # trunk and both levels: nothing retrained
    assert sum(u["trained"] for u in again["units"]) == 4 - finished  # only the branches not yet finished
    assert per_seed(again) == per_seed(local_run[1])


def test_branch_on_another_hardware_class_is_refused_naming_unit_node_and_log(local_run, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(local_run[0], cache)
    ticket = next(cache.glob("experiments/p*/*/seed-1/level-2/done.json"))
    record = json.loads(ticket.read_text())
    ticket.write_text(json.dumps(record | {"hardware": "cuda:Some Other GPU"}))
    for folder in cache.glob("experiments/p*/*/seed-*/level-2/branch/identity-*"):
        shutil.rmtree(folder)
    result = bench("sweep", SMOKE, "--cache-dir", cache)
    assert result.exit_code == 1
    assert "refusing to train on cpu:" in result.output
    assert "its level 2 (seed 1) was trained on cuda:Some Other GPU" in result.output
    assert "failed: branches:smoke:" in result.output and ":identity on node " in result.output
    assert "(log: " in result.output
    assert "1 of 3 units failed; rerun the same command to retry only what failed" in result.output


def test_worker_refuses_a_cache_it_cannot_see(tmp_path):
    from dataclasses import replace

    from bench.sweep import load_sweep, plan, prepare_units, run_unit

    units, _ = prepare_units(load_sweep(SMOKE), plan(load_sweep(SMOKE), tmp_path), tmp_path)
    unit = replace(units[0], placement=replace(units[0].placement, token="another-run"))  # sees another cache copy
    with pytest.raises(BenchError, match=r"cannot see the sweep's cache at .* file system shared by the driver"):
        run_unit(unit)


# ------------------------------------------------------------------------------------------ slurm executor


def _slurm_reason() -> str | None:
    """Why the slurm test cannot run here, or None when a SLURM answers and submitit is installed."""
    if shutil.which("sinfo") is None:
        return "no SLURM here (sinfo not found); .ci/slurm-up starts a one-node SLURM"
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20).stdout.split()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"SLURM does not answer ({exc}); .ci/slurm-up starts it"
    if not any(s.rstrip("*") in ("idle", "mixed", "allocated") for s in states):
        return f"no SLURM node is up (sinfo states: {states or 'none'}); .ci/slurm-up starts it"
    try:
        import submitit  # noqa: F401
    except ImportError:
        return "submitit is not installed: pip install -e '.[slurm]'"
    return None


@pytest.fixture(scope="session")  # session scope: pytest sets it up before the module-scoped local run
def slurm_up():
    reason = _slurm_reason()
    if reason:
        pytest.skip(reason)


@pytest.mark.slurm
def test_slurm_executor_matches_local_exactly(slurm_up, local_run, tmp_path):
    cache = tmp_path / "slurm-cache"  # on this machine, so the one node sees it: the shared-cache check passes
    data = sweep_json(SMOKE, "--executor", "slurm", "--cache-dir", cache)
    assert data["states"]["done"] == 3 and data["states"]["failed"] == 0
    assert per_seed(data) == per_seed(local_run[1])
    assert [r["drop"] for r in data["results"] if r["perturbation"] == "identity"] == [0.0, 0.0]
    # rerunning through SLURM submits nothing: every unit is cached
    again = sweep_json(SMOKE, "--executor", "slurm", "--cache-dir", cache)
    assert again["states"]["cached"] == 3
