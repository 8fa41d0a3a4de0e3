"""Fast start (issue 25, item 6): the commands that only list or read load neither torch nor scipy where they
need neither, Ctrl-C at any moment is one line, and the shell completes preset and perturbation names."""

from __future__ import annotations

import json
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


def _loaded(*args: str) -> dict[str, bool]:
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
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


@pytest.mark.parametrize("command", ["perturbations", "plugins"])
def test_the_plugin_listings_load_no_scipy(command):
    # torch does load: the registered plugins import it themselves when they are loaded to be listed
    assert _loaded(command)["scipy"] is False


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
