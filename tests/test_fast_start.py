"""Fast start (issue 25, item 6): the commands that only list or read load neither torch nor scipy where they
need neither, Ctrl-C at any moment is one line, and the shell completes preset and perturbation names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.shell_completion import BashComplete

ROOT = Path(__file__).resolve().parent.parent

# runs the command line as the console script does, then reports which heavy libraries it loaded
_PROBE = """
import json, sys
from bench.cli import main
sys.argv = ["bench", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print("LOADED " + json.dumps({m: m in sys.modules for m in ("torch", "scipy")}), file=sys.stderr)
"""


def _loaded(*args: str, env: dict[str, str] | None = None) -> dict[str, bool]:
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env=None if env is None else {**os.environ, **env})
    line = [x for x in done.stderr.splitlines() if x.startswith("LOADED ")]
    assert line, done.stderr
    return json.loads(line[-1].removeprefix("LOADED "))


def test_help_loads_neither_torch_nor_scipy():
    assert _loaded("--help") == {"torch": False, "scipy": False}


@pytest.mark.parametrize("args", [("presets",), ("presets", "--json"), ("run", "--help")])
def test_listing_presets_and_command_help_load_neither(args):
    assert _loaded(*args) == {"torch": False, "scipy": False}


def test_the_leaderboard_loads_no_torch():
    # scipy stays: every board's paired tests use it
    assert _loaded("leaderboard", "--results", "leaderboard/results")["torch"] is False


@pytest.mark.parametrize("args", [(command, *flag) for command in ("perturbations", "plugins", "pretrainings",
                                                                    "pruning-strategies") for flag in ((), ("--json",))])
def test_the_plugin_listings_load_neither(args):
    # the built-in plugins import torch in the functions that compute, not at import; an installed plugin may
    # import it itself (the template does), so only the built-ins are loaded here
    assert _loaded(*args, env={"BENCH_LOAD_PLUGINS": ""}) == {"torch": False, "scipy": False}


def test_the_plugin_listings_still_list_every_built_in():
    done = subprocess.run([sys.executable, "-m", "bench", "perturbations", "--json"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env={**os.environ, "BENCH_LOAD_PLUGINS": ""})
    names = {row["name"] for row in json.loads(done.stdout)}
    assert {"identity", "shuffle-layer", "random-sign", "gaussian-noise", "reinit"} <= names, done.stderr
    done = subprocess.run([sys.executable, "-m", "bench", "plugins", "--json"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env={**os.environ, "BENCH_LOAD_PLUGINS": ""})
    assert json.loads(done.stdout)["failed"] == [], done.stderr  # none failed for want of torch


def test_a_plugin_that_loads_torch_and_changes_the_dtype_is_still_caught():
    # the guard around a plugin's import cannot read torch's state before when torch is not loaded yet: it
    # compares the default dtype with torch's own (float32) and restores it
    code = ("import sys\nfrom bench.plugin_guard import state_problem, torch_state\nbefore = torch_state()\n"
            "assert before is None and 'torch' not in sys.modules\nimport torch\n"
            "torch.set_default_dtype(torch.float64)\nprint(state_problem(before))\n"
            "assert torch.get_default_dtype() == torch.float32\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "torch's default dtype from torch.float32 to torch.float64"


def test_every_command_is_listed_where_the_group_loads_it():
    import importlib
    import pkgutil

    import bench.cli
    from bench.cli import COMMAND_MODULES, SUMMARIES

    defined = {}
    for info in pkgutil.iter_modules(bench.cli.__path__):
        module = importlib.import_module(f"bench.cli.{info.name}")
        defined.update({command.name: info.name for command in getattr(module, "COMMANDS", ())})
    assert defined == COMMAND_MODULES
    assert set(SUMMARIES) == set(COMMAND_MODULES)


def test_import_bench_leaves_torch_unloaded_and_the_thread_count_alone():
    code = ("import torch; torch.set_num_threads(2); import bench, sys; "
            "assert torch.get_num_threads() == 2, torch.get_num_threads(); print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "ok", done.stderr
    done = subprocess.run([sys.executable, "-c", "import bench, sys; assert 'torch' not in sys.modules"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_parameter_counts_match_the_built_networks():
    from bench import models
    from bench.datasets import dataset_info
    from bench.presets import PRESETS
    from bench.sizes import parameter_counts

    for preset in PRESETS.values():
        exp = preset.experiment
        info = dataset_info(exp.data.dataset)
        model = models.build_model(exp.model, info.in_channels, info.num_classes)
        params = dict(model.named_parameters())
        expected = (sum(p.numel() for p in params.values()), sum(params[n].numel() for n in models.prunable_names(model)))
        assert parameter_counts(exp.model, info.in_channels, info.num_classes) == expected, preset.name


@pytest.mark.parametrize("delay", [0.3, 0.6, 1.0, 2.0, 3.5, 6.0])
def test_ctrl_c_at_any_moment_is_one_line(tmp_path, delay):
    # from starting up (torch loading) to training: one line on stderr, no traceback, exit status 130
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", "-p", "identity", "--preset", "smoke", "--seeds", "1",
                             "--cache-dir", str(tmp_path / "cache"), "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**__import__("os").environ, "CI": "1"})
    time.sleep(delay)
    if proc.poll() is not None:
        pytest.skip("the run finished before the signal")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    if proc.returncode == 0 and "Wrote 1 result file" in stderr:
        return  # the run was over, shutting down: the signal changes nothing, and says nothing
    assert proc.returncode == 130, stderr
    # CI=1 logs one line per finished stage before the signal; the interruption itself is one line
    assert lines and lines[-1].startswith("Interrupted."), stderr
    assert sum(line.startswith("Interrupted") for line in lines) == 1, stderr


def _completions(args: list[str], incomplete: str) -> list[str]:
    from bench.cli import cli

    return [item.value for item in BashComplete(cli, {}, "bench", "_BENCH_COMPLETE").get_completions(args, incomplete)]


def test_the_shell_completes_perturbation_and_preset_names():
    assert _completions(["run", "--perturbation"], "shu") == ["shuffle-filter", "shuffle-layer",
                                                              "shuffle-layer-keep-sign"]
    assert _completions(["run", "--preset"], "sm") == ["smoke"]
    assert _completions(["run", "-p"], "iden") == ["identity"]
    assert sorted(_completions(["leaderboard", "--preset"], "mnist")) == ["mnist1d-lottery", "mnist1d-resnet"]
