"""The ``slurm`` executor of ``bench sweep``, through submitit (the optional ``slurm`` extra).

Tickets units go out as one job array; each tickets unit's branches go out as another array that SLURM
starts only after that tickets job succeeded (``--dependency=afterok``). A job that SLURM preempts or that
reaches its time limit is requeued by submitit (the task is Checkpointable) and, rerun, resumes from its
stage checkpoints. The driver polls ``squeue`` and the result files submitit writes; it does not use
``sacct``, which needs an accounting daemon that many small clusters (and CI) do not run.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.sweep.plan import Report, Unit
from bench.sweep.worker import read_status, run_unit

try:
    import submitit
except ImportError:  # pragma: no cover - the message is the point
    raise BenchError("The slurm executor needs submitit: pip install 'earlyphase-bench[slurm]'.") from None


class UnitTask(submitit.helpers.Checkpointable):
    """A unit as a SLURM job. Checkpointable: on preemption or timeout submitit requeues the same call; the
    stages it already finished are cached and the one in progress resumes from its checkpoint."""

    def __call__(self, unit: Unit) -> dict:
        return run_unit(unit)


def options(sweep_slurm: dict, flags: dict, threads: int = 1) -> dict:
    """submitit parameters from the sweep file's [slurm] table, overridden by command-line flags."""
    cfg = {**sweep_slurm, **{k: v for k, v in flags.items() if v is not None}}
    params: dict[str, Any] = {"timeout_min": int(cfg.get("time_min", 60)),
                              "cpus_per_task": int(cfg.get("cpus_per_task", threads)),  # a core per torch thread
                              "slurm_array_parallelism": int(cfg.get("array_parallelism", 64)),
                              "name": "bench-sweep"}
    if cfg.get("partition"):
        params["slurm_partition"] = str(cfg["partition"])
    if cfg.get("mem_gb"):
        params["mem_gb"] = float(cfg["mem_gb"])
    if int(cfg.get("gpus_per_node", 0) or 0) > 0:  # --gpus-per-node=0 is refused by clusters without GPU gres
        params["gpus_per_node"] = int(cfg["gpus_per_node"])
    if cfg.get("constraint"):  # pins every job to one hardware class, so tickets and branches pair exactly
        params["slurm_constraint"] = str(cfg["constraint"])
    extra = dict(cfg.get("additional", {}))
    # a branch whose tickets job failed can never start: let SLURM drop it instead of leaving it pending
    extra.setdefault("kill-on-invalid-dep", "yes")
    params["slurm_additional_parameters"] = extra
    return params


def _executor(folder: Path, params: dict):
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(**params)
    return executor


def _submit(executor, units: list[Unit]) -> list:
    try:
        return executor.map_array(UnitTask(), units)
    except Exception as exc:  # sbatch's own message says what it refused (partition, time, memory, ...)
        raise BenchError(f"SLURM refused the sweep's jobs: {_last_line(str(exc))}") from None


def _jobs_named(name: str) -> list[str]:
    try:
        text = subprocess.run(["squeue", "-h", "-r", "-n", name, "-o", "%i"], capture_output=True, text=True,
                              timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"squeue failed ({exc}): is SLURM reachable from this machine?") from None
    return text.split()


def _squeue() -> dict[str, tuple[str, str]]:
    """job id -> (state, node) for every job SLURM still knows; array tasks one per line (-r)."""
    try:
        text = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%N"], capture_output=True, text=True,
                              timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"squeue failed ({exc}): is SLURM reachable from this machine?") from None
    out = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            out[parts[0]] = (parts[1], parts[2])
    return out


def run_slurm(units: list[Unit], report: Report, folder: Path, params: dict, on_change=lambda: None,
              poll_s: float = 1.0) -> None:
    todo = [u for u in units if not u.cached]
    if not todo:
        return
    if shutil.which("sbatch") is None:
        raise BenchError("sbatch not found: run the slurm executor where SLURM's commands are (a login node), "
                         "or use --executor local.")
    logs = folder / "slurm"
    # a killed driver leaves its jobs in SLURM; submitting the same units again would train the same stages
    # twice at once, so the jobs carry the sweep's name and a second driver waits for none of them: it refuses
    params = {**params, "name": f"bench-sweep-{folder.name}"}
    still = _jobs_named(params["name"])
    if still:
        raise BenchError(f"Jobs of this sweep are still in SLURM ({', '.join(still[:10])}): wait for them to end "
                         f"or scancel them, then rerun to run what is missing.")
    executor = _executor(logs, params)
    jobs: dict[str, Any] = {}  # unit id -> submitit job
    tickets = [u for u in todo if u.kind == "tickets"]
    if tickets:
        jobs.update(zip([u.id for u in tickets], _submit(executor, tickets)))
    by_dep: dict[str, list[Unit]] = {}
    for u in todo:
        if u.kind == "branches" and u.depends is not None:
            by_dep.setdefault(u.depends, []).append(u)
    for dep, branch_units in by_dep.items():
        extra = dict(params["slurm_additional_parameters"])
        if dep in jobs:  # else the tickets are cached: nothing to wait for
            extra["dependency"] = f"afterok:{jobs[dep].job_id}"
        executor.update_parameters(slurm_additional_parameters=extra)
        jobs.update(zip([u.id for u in branch_units], _submit(executor, branch_units)))
    by_id = {u.id: u for u in todo}
    missing_since: dict[str, float] = {}
    while True:
        active = [i for i in jobs if report.state[i] in ("queued", "running")]
        if not active:
            break
        queue = _squeue()
        for uid in active:
            job, unit = jobs[uid], by_id[uid]
            if job.paths.result_pickle.exists():
                try:
                    report.info[uid] = job.result()
                    report.state[uid] = "done"
                except Exception as exc:  # submitit re-raises the worker's error with its traceback
                    status = read_status(unit)
                    report.fail(unit, status.get("error") or _last_line(str(exc)), status.get("node"),
                                str(job.paths.stderr))
                continue
            if job.job_id in queue:
                missing_since.pop(uid, None)
                state, node = queue[job.job_id]
                report.state[uid] = "running" if state in ("RUNNING", "COMPLETING") else "queued"
                if node:
                    report.info.setdefault(uid, {})["node"] = node
                continue
            # gone from the queue without a result: give the result file a moment to appear (shared file
            # systems lag), then call it failed (killed, cancelled, or dropped because its tickets failed)
            first = missing_since.setdefault(uid, time.monotonic())
            if time.monotonic() - first > max(3 * poll_s, 10):
                dep = unit.depends
                if dep and report.state.get(dep) == "failed":
                    report.fail(unit, f"not run: its tickets unit {dep} failed", None, None)
                else:
                    status = read_status(unit)
                    report.fail(unit, status.get("error") or f"SLURM job {job.job_id} ended without a result "
                                                             f"(cancelled, killed or out of memory)",
                                status.get("node"), str(job.paths.stderr))
        on_change()
        time.sleep(poll_s)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text
