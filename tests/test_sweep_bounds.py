"""`bench sweep` bounds (issue 26, item 7): no NaN/inf overrides or estimates, a bounded read of the sweep file,
and local pool workers that exit when their driver is killed."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.errors import BenchError
from bench.sweep import load_sweep

ROOT = Path(__file__).resolve().parents[1]
HEAD = 'presets = ["smoke"]\nseeds = 1\nlevels = [2]\n[perturbations]\nidentity = {}\n'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("table, key", [
    ("[overrides.train]\nlr = nan\n", "overrides.train.lr"),
    ("[overrides.train]\nmomentum = -inf\n", "overrides.train.momentum"),
    ("[overrides.prune]\nfraction = inf\n", "overrides.prune.fraction"),
    ("[overrides.train]\nweight_decay = [0.1, nan]\n", "overrides.train.weight_decay"),
])
def test_non_finite_overrides_are_refused_naming_the_key(tmp_path, table, key):
    with pytest.raises(BenchError, match=f"{key}: .*finite") as info:
        load_sweep(_write(tmp_path, HEAD + table))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", ["nan", "inf", "1e308", "-1.0", "0"])
def test_estimates_are_finite_positive_and_bounded(tmp_path, value):
    with pytest.raises(BenchError, match="estimate"):
        load_sweep(_write(tmp_path, HEAD + f"[estimate]\nseconds_per_iteration = {value}\n"))


def test_estimates_never_print_nan_or_invalid_json(tmp_path):
    from bench.sweep import counts, fmt_hours

    assert fmt_hours(math.nan) == fmt_hours(math.inf) == "unknown"
    path = _write(tmp_path, HEAD)
    runner = CliRunner()
    text = runner.invoke(cli, ["sweep", str(path), "--dry-run", "--cache-dir", str(tmp_path / "c")])
    data = runner.invoke(cli, ["sweep", str(path), "--dry-run", "--json", "--cache-dir", str(tmp_path / "c")])
    assert text.exit_code == 0 and data.exit_code == 0, text.output + data.output
    json.loads(data.stdout, parse_constant=lambda c: pytest.fail(f"{c} in --json"))
    from dataclasses import replace

    from bench.sweep import plan

    units = plan(load_sweep(path), tmp_path / "c")
    worst = counts([replace(u, estimate_s=math.inf) for u in units])
    assert worst["estimated_hours"] is None
    json.dumps(worst, allow_nan=False)


def test_a_sweep_file_that_is_not_a_regular_file_or_too_large_is_refused(tmp_path):
    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")
    big = _write(tmp_path, HEAD + "# padding\n" * 200_000)
    # in a child with a memory limit: reading /dev/zero whole must never be what stops it
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
            "from bench.cli import cli\n"
            "sys.exit(cli(['sweep', sys.argv[1], '--dry-run']))\n")
    for path, words in ((link, "not a regular file"), (big, "bytes")):
        proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert proc.returncode == 1 and "MemoryError" not in proc.stderr, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith(f"Error: Sweep file {path}") and words in proc.stderr


def _state(pid: int) -> str | None:
    """The process's state letter (Z: exited, not yet reaped), or None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads process states from /proc")
def test_pool_workers_exit_when_the_driver_is_killed(tmp_path):
    cache = tmp_path / "cache"
    sweep = _write(tmp_path, HEAD.replace("[perturbations]", "[run]\ndevice = \"cpu\"\n[perturbations]"))
    proc = subprocess.Popen([sys.executable, "-m", "bench", "sweep", str(sweep), "--cache-dir", str(cache)],
                            env=dict(os.environ, CI="1", PYTHONPATH=str(ROOT)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    worker = None
    try:
        deadline = time.monotonic() + 120
        while worker is None:  # the worker writes its pid into its status file when it starts a unit
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "no worker started"
            for status in cache.glob("sweeps/*/status/*.json"):
                try:
                    worker = json.loads(status.read_text())["pid"]
                except (OSError, ValueError, KeyError):
                    pass
            time.sleep(0.05)
        assert worker != proc.pid and _state(worker) not in (None, "Z")
        os.kill(proc.pid, signal.SIGKILL)  # the driver only, as a lost session or the OOM killer would
        proc.wait()
        deadline = time.monotonic() + 20
        while _state(worker) not in (None, "Z") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _state(worker) in (None, "Z"), "the pool worker outlived its driver"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever this test started and is still there
        except ProcessLookupError:
            pass
        proc.wait()
