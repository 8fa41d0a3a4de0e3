"""The Python API (issue 25, item 3): the notebook page runs, loading results loads no torch, and a run keeps
the recorded numerics and gives the caller's process back as it was."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "notebook.md"


def _needs_pandas() -> None:
    pytest.importorskip("pandas", reason="the notebook extra is not installed (pip install '.[notebook]')")


def _run(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    # a fresh interpreter, as a notebook kernel is; a private cache
    environ = {**os.environ, "BENCH_CACHE_DIR": str(tmp_path / "cache"), **env}
    for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "BENCH_NUM_THREADS"):
        environ.pop(name, None)  # as a user's shell has them: unset
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=environ,
                          timeout=600)


def test_every_block_of_the_notebook_page_runs(tmp_path):
    _needs_pandas()
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert len(blocks) >= 5
    done = _run("\n".join(blocks), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "torch loaded: False" in done.stdout
    assert "threads after the run: 2" in done.stdout
    assert "shuffle-layer - reinit" in done.stdout


def test_loading_and_analysing_results_imports_no_torch(tmp_path):
    _needs_pandas()
    code = ("import sys; from bench.api import compare, leaderboard, load_results\n"
            "df = load_results('leaderboard/results'); lb = leaderboard('leaderboard/results')\n"
            "pair = compare('shuffle-layer', 'reinit', 'leaderboard/results', level=3)\n"
            "assert len(df) and len(lb) and pair['n'] == 24\n"
            "print(json.dumps({'torch': 'torch' in sys.modules}))").replace("import sys", "import json, sys")
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"torch": False}


def test_the_frame_has_the_csv_columns_and_types():
    _needs_pandas()
    from bench.api import load_results
    from bench.report.model import from_folders
    from bench.report.render import render_csv

    frame = load_results(ROOT / "leaderboard" / "results")
    csv = render_csv(from_folders([ROOT / "leaderboard" / "results"]))
    assert list(frame.columns) == csv.splitlines()[0].split(",")
    assert len(frame) == len(csv.splitlines()) - 1
    assert frame["drop_points"].dtype.kind == "f" and frame["seed"].dtype.kind == "i"
    assert frame["config_hash"].map(type).eq(str).all()


def test_a_run_keeps_the_recorded_numerics_and_restores_the_callers_process(tmp_path):
    # the same run through the command line and through the API: the same records, bit for bit
    cli = subprocess.run([sys.executable, "-m", "bench", "run", "-p", "reinit", "--preset", "smoke", "--seeds", "1",
                          "--cache-dir", str(tmp_path / "cli"), "--workers", "1", "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)["results"][0]
    code = ("import json, os\n"
            "from bench import api\n"
            "import torch\n"
            "torch.set_num_threads(2)\n"
            f"records = api.run('reinit', preset='smoke', seeds=1, cache_dir={str(tmp_path / 'api')!r})\n"
            "pins = [k for k in ('ATEN_CPU_CAPABILITY', 'ONEDNN_MAX_CPU_ISA', 'MKL_CBWR', 'BENCH_NUM_THREADS') "
            "if k in os.environ]\n"
            "print(json.dumps({'threads': torch.get_num_threads(), 'pins': pins, 'record': records[0]}))")
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.splitlines()[-1])
    assert got["threads"] == 2 and got["pins"] == []  # put back: the thread count, and no env var of bench's
    record = got["record"]
    assert "torch was imported before bench" not in done.stderr  # bench was imported first here
    assert record["accuracy"] == expected["accuracy"] and record["fingerprints"] == expected["fingerprints"]
    assert record["environment"]["threads"] == 1
    for key in ("aten_cpu_capability", "onednn_max_cpu_isa", "mkl_cbwr"):
        assert record["environment"].get(key) == expected["environment"].get(key)


def test_without_pandas_the_error_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['pandas'] = None\n"
            "from bench.api import load_results\n"
            "try:\n    load_results('leaderboard/results')\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)")
    done = _run(code, tmp_path)
    assert done.stdout.strip() == "BenchError bench.api needs pandas: pip install 'earlyphase-bench[notebook]'."


@pytest.mark.parametrize("params", [{"scale": 0.5}])
def test_run_takes_typed_parameters(tmp_path, params, data_dir):
    from bench.api import run

    records = run("gaussian-noise", preset="smoke", seeds=1, params=params, cache_dir=tmp_path, data_dir=data_dir)
    assert records[0]["perturbation"]["params"] == {"scale": 0.5}


def test_an_invalid_file_is_left_out_with_a_warning(tmp_path):
    _needs_pandas()
    from bench.api import load_results

    (tmp_path / "seed-0.json").write_text("{not json")
    with pytest.warns(UserWarning, match="skipped"):
        frame = load_results(tmp_path)
    assert len(frame) == 0 and "drop_points" in frame.columns  # the CSV's columns even when empty
