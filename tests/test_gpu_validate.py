"""scripts/gpu_validate.sh runs end to end on a CPU with synthetic data and writes its JSON report."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_validate.sh"


def test_gpu_validate_on_cpu_writes_report(tmp_path):
    out = tmp_path / "report.json"
    # the flags the issue asks for, plus a small batch and 2 replicas so it takes seconds on a shared CPU
    args = ["--device", "cpu", "--synthetic", "--iterations", "5", "--out", str(out),
            "--replicas", "1,2", "--batch-size", "8", "--examples", "64", "--warmup", "0",
            "--full-steps", "3it", "--cache-dir", str(tmp_path / "cache")]
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["preset"] == "cifar10-resnet20" and report["data"] == {"source": "synthetic", "train_examples": 64}
    assert report["precision"] == {"setting": "fp32", "autocast": "none (fp32)"}
    assert report["config"]["prune"] == {"ties": "threshold", "level1_prunes": "level-0"}
    assert report["gpu_tests"]["ran"] is False and "cuda" in report["gpu_tests"]["reason"]
    assert [t["replicas"] for t in report["timing"]] == [1, 2]
    assert all(t["s_per_iteration"] > 0 and t["iterations"] == 5 for t in report["timing"])
    ext = report["extrapolation"]
    assert ext["iterations_per_run"] == 62560 and ext["runs_per_seed"] == 10 and ext["fused_replicas"] == 2
    assert ext["one_run_minutes"] > 0 and ext["fused_all_levels_hours"] > 0
    assert report["settings"]["comparable"] is False  # a small batch: a check of the script, not figures
    assert report["published"]["dense"] == {"mean": 91.71, "std": 0.23, "n": 246}
    full = report["full"]
    assert full["iterations"] == 3 and 0 <= full["test_accuracy"] <= 100 and full["within_published_band"] is False


def test_gpu_validate_refuses_missing_cifar_with_a_hint(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--iterations", "1", "--out", str(tmp_path / "r"),
                           "--cache-dir", str(tmp_path)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 1
    assert "CIFAR-10 not found" in proc.stderr and "pass --synthetic" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_gpu_validate_instability_needs_real_cifar(tmp_path):
    """--instability runs bench instability on the paper preset; on random images it says why it did not."""
    out = tmp_path / "report.json"
    args = ["--device", "cpu", "--synthetic", "--iterations", "1", "--out", str(out), "--replicas", "1",
            "--batch-size", "8", "--examples", "64", "--warmup", "0", "--instability", "0,1",
            "--cache-dir", str(tmp_path / "cache")]
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["instability"]["ran"] is False and "--synthetic" in report["instability"]["reason"]
