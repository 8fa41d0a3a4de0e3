"""A run killed mid-training resumes from its checkpoint and ends with the same numbers."""

import json
import os
import signal
import subprocess
import sys
import time

from click.testing import CliRunner

from bench.cli import cli


def _args(cache, data_dir):
    return ["run", "--preset", "smoke", "--perturbation", "identity", "--seeds", "1", "--cache-dir", str(cache),
            "--data-dir", str(data_dir), "--checkpoint-every", "3", "--json"]


def _numbers(payload):
    return [(r["seed"], r["accuracy"], r["drop"]) for r in json.loads(payload)["results"]]


def test_killed_run_resumes_to_identical_numbers(tmp_path, data_dir):
    reference = CliRunner().invoke(cli, _args(tmp_path / "straight", data_dir))
    assert reference.exit_code == 0, reference.output

    cache = tmp_path / "killed"
    env = {**os.environ, "CI": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "bench", *_args(cache, data_dir)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    checkpoint = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((cache / "experiments").rglob("checkpoint.pt")) if (cache / "experiments").exists() else []
        if found:
            checkpoint = found[0]
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint is not None, "the run finished before any checkpoint was written"
    assert proc.returncode == -signal.SIGKILL

    resumed = CliRunner().invoke(cli, _args(cache, data_dir))
    assert resumed.exit_code == 0, resumed.output
    assert _numbers(resumed.stdout) == _numbers(reference.stdout)
