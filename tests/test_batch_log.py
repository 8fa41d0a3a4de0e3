"""Batch logs fit for SLURM (bench/batchlog.py): a header line per experiment, heartbeats inside a stage, a line
while waiting on another process's stage lock; none of it moves a number, and terminals and --quiet are as
before."""

from __future__ import annotations

import re
import shlex
import socket
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from filelock import FileLock, Timeout

from bench import paths
from bench.batchlog import BatchLog, clock, heartbeat_seconds, seeds_text, slurm_job
from bench.cache import load_tensors
from bench.config import config_hash
from bench.errors import BenchError
from bench.execute import execute, stage_locks
from bench.experiments.setup import RunOptions, prepare
from bench.presets import get_preset
from bench.provenance import code_version, hardware_class
from bench.stages import Replicate

from test_run_output import outcome

STAMP = r"\[\d\d:\d\d:\d\d\] "
HEARTBEAT = re.compile(STAMP + r"running (?P<label>.+): (?P<done>\d+)/(?P<total>\d+) iterations \((?P<pct>\d+)%\), "
                       r"elapsed (?P<elapsed>\d+:\d\d:\d\d), (about (?P<left>\d+:\d\d:\d\d) left|time left unknown)"
                       r"(, last test accuracy (?P<accuracy>\d+\.\d\d)% \((?P<where>.+)\))?$")


def header_fields(line: str) -> tuple[str, dict[str, str]]:
    """The header's ``bench VERSION (COMMIT) COMMAND:`` and its key=value fields, read as a shell would."""
    head, _, rest = re.sub("^" + STAMP, "", line).partition(": ")
    return head, dict(word.split("=", 1) for word in shlex.split(rest))


def invoke(tmp_path, monkeypatch, fake, *args: str, env: dict[str, str] | None = None):
    from bench.cli import cli
    import bench.experiments.perturb as perturb

    monkeypatch.setattr(perturb, "run_perturbations", fake)
    for key in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "BENCH_HEARTBEAT_S"):
        monkeypatch.delenv(key, raising=False)
    command = [*args, "run", "--preset", "smoke", "--device", "cpu", "--cache-dir", str(tmp_path / "cache")]
    return CliRunner().invoke(cli, command, env={"CI": "1", **(env or {})})


def test_the_header_line_names_code_experiment_machine_and_job(tmp_path, monkeypatch, data_dir):
    def fake(preset, chosen, options, **kw):  # the real setup (header included), no training
        prepare(preset, replace(options, data_dir=data_dir), seeds=[3, 4, 5], level=1)
        return [outcome("identity", [0.0, 0.0, 0.0])]

    result = invoke(tmp_path, monkeypatch, fake, env={"SLURM_ARRAY_JOB_ID": "1234", "SLURM_JOB_ID": "1240",
                                                      "SLURM_ARRAY_TASK_ID": "5"})
    assert result.exit_code == 0, result.output
    line = result.stderr.splitlines()[0]
    head, fields = header_fields(line)
    code = code_version()
    version = f"bench {code['bench_version']}"
    if "git_commit" in code:
        version += f" ({code['git_commit'][:7]}{'-dirty' if code['git_dirty'] else ''})"
    assert head == f"{version} run"
    smoke = get_preset("smoke")
    assert fields["preset"] == "smoke" and fields["config"] == config_hash(smoke.experiment)
    assert fields["device"] == "cpu" and fields["class"] == hardware_class("cpu")
    assert fields["seeds"] == "3-5" and fields["level"] == "1" and fields["group"] == str(smoke.group_size)
    assert fields["cache"] == str(tmp_path / "cache") and fields["host"] == socket.gethostname()
    assert fields["slurm"] == "1234_5" and int(fields["workers"]) >= 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", fields["started"])


def test_header_values_stay_one_word_and_seeds_read_back(monkeypatch):
    for key in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(key, raising=False)
    assert slurm_job() is None
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    assert slurm_job() == "77"  # a job outside an array
    log: list[str] = []
    BatchLog(log.append, "run", None).announce({"class": "cpu:AVX2:threads=1:AMD EPYC 7763", "cache": "/a b/c"})
    _, fields = header_fields(log[0])
    assert fields["class"] == "cpu:AVX2:threads=1:AMD EPYC 7763" and fields["cache"] == "/a b/c"
    assert fields["slurm"] == "77"
    assert seeds_text([0, 1, 2]) == "0-2" and seeds_text([3, 7, 9]) == "3,7,9" and seeds_text([4]) == "4"
    assert seeds_text([2, 1]) == "2,1" and clock(3725.4) == "1:02:05"


def test_heartbeats_in_a_batch_log_parse(tmp_path, monkeypatch):
    def fake(preset, chosen, options, **kw):
        stage = options.progress.start("dense trunk seeds 0,1", 4)
        for done in range(1, 5):
            stage.advance(done)
        stage.done([50.0, 52.0], 0.5)
        later = options.progress.start("IMP level 1 seeds 0,1", 3)
        later.advance(1)
        later.advance(3)
        later.done([48.0, 49.0], 0.5)
        return [outcome("identity", [0.0, 0.0])]

    result = invoke(tmp_path, monkeypatch, fake, env={"BENCH_HEARTBEAT_S": "0"})
    assert result.exit_code == 0, result.output
    beats = [HEARTBEAT.match(line) for line in result.stderr.splitlines() if "] running " in line]
    assert all(beats) and [(b["label"], int(b["done"]), int(b["total"])) for b in beats] == [
        ("dense trunk seeds 0,1", 1, 4), ("dense trunk seeds 0,1", 2, 4), ("dense trunk seeds 0,1", 3, 4),
        ("IMP level 1 seeds 0,1", 1, 3)]  # never at the end: the finish line says it
    assert beats[0]["accuracy"] is None and beats[0]["left"] is not None and beats[2]["pct"] == "75"
    assert beats[3]["accuracy"] == "51.00" and beats[3]["where"] == "mean of 2: dense trunk seeds 0,1"
    # the default interval (60 s) lets none through in a short stage; a bad value is one line
    quiet = invoke(tmp_path, monkeypatch, fake)
    assert quiet.exit_code == 0 and "] running " not in quiet.stderr and "finished IMP level 1" in quiet.stderr
    bad = invoke(tmp_path, monkeypatch, fake, env={"BENCH_HEARTBEAT_S": "soon"})
    assert bad.exit_code == 1 and "BENCH_HEARTBEAT_S='soon' is not a number of seconds" in bad.output


def test_quiet_has_no_header_heartbeat_or_stage_lines(tmp_path, monkeypatch, data_dir):
    def fake(preset, chosen, options, **kw):
        prepare(preset, replace(options, data_dir=data_dir), seeds=1)
        stage = options.progress.start("dense trunk seed 0", 2)
        stage.advance(1)
        stage.advance(2)
        return [outcome("identity", [0.0])]

    result = invoke(tmp_path, monkeypatch, fake, "--quiet", env={"BENCH_HEARTBEAT_S": "0"})
    assert result.exit_code == 0, result.output
    assert not re.search(STAMP, result.stderr) and "dense trunk" not in result.stderr  # no log line at all


def test_a_resumed_stage_estimates_from_where_it_resumed(monkeypatch):
    log: list[str] = []
    stage = BatchLog(log.append, "run", 0).start("IMP level 1 seed 0 (resumed)", 100)
    stage.advance(60)  # resumed from a checkpoint at 59: no rate yet
    stage.advance(61)
    assert "60/100 iterations (60%)" in log[1] and log[1].endswith("time left unknown")
    assert "61/100" in log[2] and " left" in log[2] and "unknown" not in log[2]
    for text, every in (("", 60.0), ("0", 0.0), ("2.5", 2.5), ("off", None)):
        monkeypatch.setenv("BENCH_HEARTBEAT_S", text)
        assert heartbeat_seconds() == every
    monkeypatch.setenv("BENCH_HEARTBEAT_S", "-1")
    with pytest.raises(BenchError, match="0 or more"):
        heartbeat_seconds()


def test_a_held_stage_lock_is_reported_once_then_its_wait(tmp_path):
    folder = tmp_path / "stage"
    folder.mkdir()
    other = FileLock(str(folder / paths.LOCK))  # another holder: flock locks of two open files conflict
    other.acquire()
    log: list[str] = []

    class Releasing(BatchLog):
        def waiting(self, label, lock):
            super().waiting(label, lock)
            other.release()  # the other process finishes as soon as this one waits: no sleep, a bounded wait

    with stage_locks([folder], Releasing(log.append, "run", None), {folder: "IMP level 2 seed 3"}):
        with pytest.raises(Timeout):  # held now by this one
            FileLock(str(folder / paths.LOCK)).acquire(blocking=False)
    assert log[0] == f"waiting for another process to finish IMP level 2 seed 3 (lock {folder / paths.LOCK})"
    assert re.fullmatch(r"waited \d+\.\d s for another process to finish IMP level 2 seed 3", log[1])
    quiet: list[str] = []
    with stage_locks([folder], BatchLog(quiet.append, "run", None)):  # free: nothing to say
        pass
    assert quiet == []


def test_batch_log_of_a_real_stage_moves_no_number(tmp_path, data_dir):
    """The dense trunk trained with every heartbeat and a lock wait logged ends with the same weights and
    accuracy as one trained with no progress at all."""

    def trunk(cache: Path, progress) -> tuple[dict, dict]:
        options = RunOptions(cache=cache, device="cpu", data_dir=data_dir)
        if progress is not None:
            options = replace(options, progress=progress)
        setup = prepare(get_preset("smoke"), options, seeds=[0], level=0)
        rep = Replicate(setup.experiment, 0, setup.env)
        job = rep.trunk_job()
        holder = FileLock(str(job.folder / paths.LOCK)) if progress is not None else None
        if holder is not None:
            job.folder.mkdir(parents=True, exist_ok=True)
            holder.acquire()
            progress.on_wait = holder.release
        execute([job], setup.env)
        return rep.trunk_record(), load_tensors(job.folder / paths.FINAL, torch.device("cpu"))

    class Logged(BatchLog):
        on_wait = None

        def waiting(self, label, lock):
            super().waiting(label, lock)
            self.on_wait()

    lines: list[str] = []
    logged = trunk(tmp_path / "logged", Logged(lines.append, "run", 0))
    plain = trunk(tmp_path / "plain", None)
    assert logged[0]["accuracy"] == plain[0]["accuracy"]
    assert all(torch.equal(logged[1][k], plain[1][k]) for k in plain[1])
    kinds = [line.split(" ", 1)[0] for line in lines]
    assert kinds[:4] == ["bench", "waiting", "waited", "start"] and kinds[-1] == "finished"
    assert kinds.count("running") == 119  # every iteration but the last (T = 120 on smoke)


def test_lock_waits_of_parallel_workers_reach_the_parent_log():
    from bench.experiments.parallel import run_groups
    from bench.progress import hook

    def work(group, progress, metrics):
        hook(progress, "waiting")(f"dense trunk seed {group[0]}", Path("/cache/x/.lock"))
        hook(progress, "waited")(f"dense trunk seed {group[0]}", 1.5)
        return []

    log: list[str] = []
    run_groups(work, [[0], [1]], 2, BatchLog(log.append, "run", None))
    assert sorted(log) == ["waited 1.5 s for another process to finish dense trunk seed 0",
                           "waited 1.5 s for another process to finish dense trunk seed 1",
                           "waiting for another process to finish dense trunk seed 0 (lock /cache/x/.lock)",
                           "waiting for another process to finish dense trunk seed 1 (lock /cache/x/.lock)"]
