"""Batch logs (SLURM, nohup, CI): what a log file shows where a terminal would show progress bars.

:class:`BatchLog` is a :class:`bench.progress.Progress` that writes plain lines through ``emit``: a header
line per experiment set up (version, commit, preset, config hash, device, kernel class, seeds, level, cache,
host, SLURM job), one line when a stage starts and one when it finishes, a heartbeat inside a long stage at
most every ``BENCH_HEARTBEAT_S`` seconds, and a line while it waits on another process's stage lock. It
reads only what training reports through the progress handle, so it adds no work to the training loop and
moves no number. The command line writes its lines to stderr (bench/cli/output.py), a sweep unit to its
own log file (bench/sweep/worker.py).
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from bench.errors import BenchError
from bench.progress import Progress, StageProgress

HEARTBEAT_ENV = "BENCH_HEARTBEAT_S"
DEFAULT_HEARTBEAT_S = 60.0


def stamped(line: str) -> str:
    """A log line with the time of day in front, as every batch-log line has."""
    return f"[{time.strftime('%H:%M:%S')}] {line}"


def heartbeat_seconds() -> float | None:
    """Seconds between heartbeats from $BENCH_HEARTBEAT_S (default 60; 0: at every iteration; off: none)."""
    text = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not text:
        return DEFAULT_HEARTBEAT_S
    if text.lower() in ("off", "none"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise BenchError(f"{HEARTBEAT_ENV}={text!r} is not a number of seconds: give 0 or more (e.g. 60), "
                         f"or 'off' for no heartbeat.")
    return seconds


def seeds_text(seeds: Sequence[int]) -> str:
    """As --seeds takes them back: 0-5 for consecutive ascending seeds, else 3,7,9."""
    seeds = list(seeds)
    if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(str(s) for s in seeds)


def slurm_job() -> str | None:
    """The SLURM job as squeue and sacct name it: <array job>_<task> in an array (SLURM's %A_%a), else the job
    id; None outside SLURM."""
    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    if not job:
        return None
    return f"{job}_{task}" if task else job


def _value(value: Any) -> str:
    """key=value stays one shell word: a value with a space or a quote (a CPU model, a path) is quoted."""
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() or c in "\"'\\" for c in text) else text


def header(command: str, fields: Mapping[str, Any]) -> str:
    """``bench VERSION (COMMIT[-dirty]) COMMAND: key=value ...``: the fields, then host, SLURM job and start."""
    from bench.provenance import code_version  # lazily: it imports torch

    code = code_version()
    commit = code.get("git_commit")
    where = f" ({commit[:7]}{'-dirty' if code.get('git_dirty') else ''})" if commit else ""
    more: dict[str, Any] = {"host": socket.gethostname()}
    if slurm_job():
        more["slurm"] = slurm_job()
    more["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")  # the date the [HH:MM:SS] stamps that follow are on
    pairs = " ".join(f"{key}={_value(value)}" for key, value in {**fields, **more}.items())
    return f"bench {code['bench_version']}{where} {command}: {pairs}"


def clock(seconds: float) -> str:
    """h:mm:ss, as a stage can run for hours."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class _Stage:
    def __init__(self, log: BatchLog, label: str, total: int):
        self.log, self.label, self.total = log, label, total
        self.started = self.last_line = time.perf_counter()
        self.base: tuple[float, int] | None = None  # (time, done) the rate is measured from

    def advance(self, done: int) -> None:
        now = time.perf_counter()
        if self.base is None:  # a stage resumed from a checkpoint reports its first step far from 0
            self.base = (self.started, 0) if done <= 1 else (now, done)
        if done >= self.total:
            if not self.log.pending:
                self.log.pending.append(f"finished {self.label}: {self.total} iterations, "
                                        f"{now - self.started:.1f} s")
            return
        if self.log.every is not None and now - self.last_line >= self.log.every:
            self.last_line = now
            self.log.emit(self.heartbeat(done, now, *self.base))

    def heartbeat(self, done: int, now: float, since: float, from_done: int) -> str:
        left = (f"about {clock((now - since) / (done - from_done) * (self.total - done))} left"
                if done > from_done else "time left unknown")
        line = (f"running {self.label}: {done}/{self.total} iterations ({100 * done // self.total}%), "
                f"elapsed {clock(now - self.started)}, {left}")
        if self.log.last is not None:
            where, accuracies = self.log.last
            mean = sum(accuracies) / len(accuracies)
            line += (f", last test accuracy {mean:.2f}% ("
                     + (f"mean of {len(accuracies)}: " if len(accuracies) > 1 else "") + f"{where})")
        return line

    def done(self, accuracies: Sequence[float], seconds: float) -> None:
        self.log.pending.clear()
        self.log.emit(f"finished {self.label}: {self.total} iterations, {seconds:.1f} s, test accuracy "
                      # none: a validation-only search, which never evaluates the test split
                      + (", ".join(f"{a:.2f}%" for a in accuracies) or "not evaluated"))
        if accuracies:
            self.log.last = (self.label, list(accuracies))


class BatchLog(Progress):
    """Progress as log lines through ``emit`` (one line a call, no newline). ``command`` names the header's
    command (run, pretrain, ...), ``extra`` adds fields to it; ``every`` is the heartbeat interval in seconds
    (None: no heartbeat), usually :func:`heartbeat_seconds`."""

    def __init__(self, emit: Callable[[str], None], command: str, every: float | None,
                 extra: Mapping[str, Any] | None = None):
        self.emit, self.command, self.every, self.extra = emit, command, every, dict(extra or {})
        self.pending: list[str] = []  # a finish line without accuracy, printed unless done() replaces it
        self.last: tuple[str, list[float]] | None = None  # the last stage that measured accuracy, and its values

    def flush(self) -> None:
        while self.pending:
            self.emit(self.pending.pop())

    def announce(self, fields: Mapping[str, Any]) -> None:
        self.flush()
        self.emit(header(self.command, {**self.extra, **fields}))

    def start(self, label: str, total: int) -> StageProgress:
        self.flush()
        stage = _Stage(self, label, total)
        self.emit(f"start {label}: {total} iterations")
        return stage

    def waiting(self, label: str, lock: Path) -> None:
        self.flush()
        self.emit(f"waiting for another process to finish {label} (lock {lock})")

    def waited(self, label: str, seconds: float) -> None:
        self.emit(f"waited {seconds:.1f} s for another process to finish {label}")
