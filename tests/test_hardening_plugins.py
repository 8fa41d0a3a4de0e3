"""Issue 26, items 4, 5 and 7 (outside the sweep): plugins that leave a trace, no injection, bounds."""

from __future__ import annotations

import csv
import io

import json
import os
import random
import shutil
import types
import warnings
from importlib import metadata
from pathlib import Path

import numpy
import pytest
import torch
from click.testing import CliRunner

import bench.plugins
from bench import hookimpl
from bench.cli import cli
from bench.errors import BenchError, PluginError
from bench.perturbation import Param, perturb, resolve_params
from bench.plugins import load_plugins
from bench.testing import tiny_context
from test_plugins import BUILTIN, Dummy, FakeDist, FakeEntryPoint, ep, install

ROOT = Path(__file__).resolve().parents[1]
ESC = "\x1b]0;pwned\x07\x1b[31m"  # retitles the window, turns the text red
MARKUP = "[/red][bold]loud[/bold] [link=x]"


class Pert:
    """A perturbation whose apply is the given function."""

    params = ()

    def __init__(self, name, apply, description="A test perturbation.", params=()):
        self.name, self.description, self._apply, self.params = name, description, apply, params

    def apply(self, ctx):
        return self._apply(ctx)


def module_of(*items) -> types.ModuleType:
    module = types.ModuleType("hostile")

    @hookimpl
    def register_perturbations(register):
        for item in items:
            register(item)

    module.register_perturbations = register_perturbations
    return module


def entry(name, loader, dist=None) -> FakeEntryPoint:
    return FakeEntryPoint(name, FakeDist(dist or f"{name}-dist"), loader)


def invoke(*args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CliRunner().invoke(cli, list(args))


# -- item 4: apply is a pure function of ctx -----------------------------------------------------------
def _numpy_global(ctx):
    return {n: t + float(numpy.random.rand()) for n, t in ctx.rewind.items()}


def _python_global(ctx):
    return {n: t + random.random() for n, t in ctx.rewind.items()}


def _torch_restored(ctx):
    state = torch.get_rng_state()
    out = {n: t + torch.randn(t.shape) for n, t in ctx.rewind.items()}
    torch.set_rng_state(state)  # hides the draw from a before/after comparison
    return out


@pytest.mark.parametrize("apply", [_numpy_global, _python_global, _torch_restored])
def test_an_apply_that_is_not_a_pure_function_of_ctx_is_refused_by_name(apply):
    with pytest.raises(PluginError, match="'impure'.*not a pure function of ctx"):
        perturb(Pert("impure", apply), tiny_context())


def test_apply_twice_keeps_the_first_result_and_every_global_generator():
    noisy = Pert("noisy", lambda ctx: {n: t + torch.randn(t.shape, generator=ctx.generator)
                                       for n, t in ctx.rewind.items()})
    contexts = tiny_context(), tiny_context()
    states = (torch.get_rng_state(), random.getstate(), numpy.random.get_state()[1].copy())
    first, second = perturb(noisy, contexts[0]), perturb(noisy, contexts[1])
    assert all(torch.equal(first.weights[n], second.weights[n]) for n in first.weights)
    assert torch.equal(states[0], torch.get_rng_state()) and states[1] == random.getstate()
    assert (states[2] == numpy.random.get_state()[1]).all()


# -- item 4: thread count and default dtype --------------------------------------------------------------
def _threads(ctx):
    torch.set_num_threads(torch.get_num_threads() + 2)
    return {}


def _dtype(ctx):
    torch.set_default_dtype(torch.float64)
    return {}


@pytest.mark.parametrize("apply, what", [(_threads, "thread count"), (_dtype, "default dtype")])
@pytest.mark.parametrize("timeout", [None, 30.0])
def test_an_apply_that_changes_threads_or_dtype_is_refused_and_the_state_restored(apply, what, timeout):
    before = (torch.get_num_threads(), torch.get_default_dtype())
    with pytest.raises(PluginError, match=f"'meddler' changed torch's {what}"):
        perturb(Pert("meddler", apply), tiny_context(), timeout=timeout)
    assert (torch.get_num_threads(), torch.get_default_dtype()) == before


def test_a_plugin_that_changes_threads_at_import_is_refused_and_the_state_restored(monkeypatch):
    before = torch.get_num_threads()

    def load():
        torch.set_num_threads(before + 3)
        return module_of(Dummy("thready"))

    install(monkeypatch, ep("builtin", BUILTIN, "identity"), entry("meddler", load))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins = load_plugins()
    assert torch.get_num_threads() == before
    assert set(plugins.perturbations()) == {"identity"}
    assert [f["name"] for f in plugins.failed] == ["meddler"]
    message = " ".join(str(w.message) for w in caught)
    assert "'meddler'" in message and "thread count" in message


def test_what_a_plugin_prints_at_import_stays_off_json_output(monkeypatch):
    def load():
        print("hello from a plugin")
        return module_of(Dummy("chatty"))

    install(monkeypatch, entry("chatty", load))
    for command in (["perturbations", "--json"], ["plugins", "--json"]):
        bench.plugins.default_plugins.cache_clear()  # imported afresh by each command
        result = invoke(*command)
        assert result.exit_code == 0
        json.loads(result.stdout)
        assert "hello from a plugin" in result.stderr


def test_a_nan_or_infinite_default_is_refused_at_registration_naming_plugin_and_parameter(monkeypatch):
    bad = Pert("bad-default", lambda ctx: {}, params=(Param("scale", float, float("nan")),))
    worse = Pert("inf-default", lambda ctx: {}, params=(Param("size", float, float("inf")),))
    install(monkeypatch, entry("nanny", lambda: module_of(bad, worse, Dummy("fine"))))
    result = invoke("perturbations", "--json")
    assert result.exit_code == 0
    assert [row["name"] for row in json.loads(result.stdout)] == ["fine"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plugins = load_plugins()
        with pytest.raises(PluginError, match="'nanny'.*'scale'"):
            plugins.perturbation("bad-default")


def test_verify_loads_only_the_builtins_and_the_results_distribution(monkeypatch, tmp_path):
    import bench.experiments.perturb as perturb_module
    from bench.experiments.setup import RunOptions
    from bench.experiments.verify import verify
    from bench.results import Result

    loaded = []

    def other_loader():
        loaded.append("other")
        return module_of(Dummy("from-other"))

    install(monkeypatch, ep("builtin", BUILTIN, "identity"), ep("mine", "dist-a", "from-a"),
            entry("other", other_loader, "dist-b"))
    seen = {}

    def fake_run(preset, requests, options, **kwargs):
        seen["plugins"] = kwargs.get("plugins")
        raise RuntimeError("stop here")

    monkeypatch.setattr(perturb_module, "run_perturbations", fake_run)
    record = json.loads(next(next((ROOT / "leaderboard").glob("smoke-*")).rglob("*.json")).read_text())
    record["perturbation"].update(name="from-a", distribution="dist-a", params={})
    with pytest.raises(RuntimeError, match="stop here"):
        verify([Result(record, tmp_path / "r.json", "r.json")], RunOptions(cache=tmp_path))
    assert seen["plugins"] is not None
    assert {p.dist for p in seen["plugins"].loaded} == {BUILTIN, "dist-a"}
    assert not loaded  # dist-b was never imported


# -- item 5: no injection --------------------------------------------------------------------------------
def test_bench_plugins_shows_an_import_error_with_markup_and_escapes_as_text(monkeypatch):
    def load():
        raise ImportError(f"{ESC}{MARKUP}")

    install(monkeypatch, ep("good", "good-dist", "fine"), entry("evil", load))
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    shown = "".join(line.strip("│ ").split("│")[-1].strip() for line in result.stdout.splitlines())
    assert "[bold]loud[/bold]" in shown  # the markup is printed as text, not applied


def test_descriptions_names_and_params_reach_the_terminal_without_controls_or_markup(monkeypatch):
    item = Pert("sneaky", lambda ctx: {}, description=f"{ESC}[blink]hi[/blink]",
                params=(Param(f"x{ESC}", str, f"{ESC}[red]v"),))
    install(monkeypatch, FakeEntryPoint(f"ep{ESC}[b]", FakeDist(f"d{ESC}", f"1{ESC}"), lambda: module_of(item)))
    for command in ("perturbations", "plugins"):
        result = invoke(command)
        assert result.exit_code == 0, result.output
        assert not any(c in result.output for c in "\x1b\x07"), command
    assert "[blink]" in invoke("perturbations").stdout


def test_errors_and_warnings_quoting_a_plugin_carry_no_escape_sequences(monkeypatch):
    module = types.ModuleType("failing")

    @hookimpl
    def register_perturbations(register):
        raise RuntimeError(f"{ESC}boom")

    module.register_perturbations = register_perturbations
    install(monkeypatch, ep("builtin", BUILTIN, "identity"), entry("failing", lambda: module))
    result = invoke("run", "-p", "nothing-like-it", "--preset", "smoke")
    assert result.exit_code == 1 and "boom" in result.stderr
    assert "\x1b" not in result.output and "\x07" not in result.output


def test_csv_cells_that_start_a_formula_are_neutralised(tmp_path):
    from bench.report.model import from_folders
    from bench.report.render import render_csv

    source = next(next((ROOT / "leaderboard").glob("smoke-*")).rglob("*.json"))
    for pseed, name in enumerate(("=HYPERLINK(x).json", "@SUM(A1).json", "+cmd.json", "-2+3.json")):
        record = json.loads(source.read_text())
        record["perturbation"]["seed"] = pseed  # four entries, not four copies of one (duplicates are refused)
        (tmp_path / name).write_text(json.dumps(record))
    rows = list(csv.DictReader(io.StringIO(render_csv(from_folders([tmp_path], any_config=True)))))
    files = sorted(row["file"] for row in rows)
    assert files == ["'+cmd.json", "'-2+3.json", "'=HYPERLINK(x).json", "'@SUM(A1).json"]
    assert not any(cell.startswith("'") for row in rows for key, cell in row.items() if key != "file"
                   and cell.lstrip("'").lstrip("-").replace(".", "").replace("e", "").isdigit())


# -- item 7: bounds --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seeds", ["100000", "0-100000", ",".join(map(str, range(1500)))])
def test_too_many_seeds_are_refused_in_one_line(seeds):
    result = invoke("run", "--preset", "smoke", "--seeds", seeds)
    assert result.exit_code == 2 and "1000" in result.output


def test_seed_list_is_bounded_for_api_callers():
    from bench.experiments.setup import MAX_SEEDS, seed_list

    with pytest.raises(BenchError, match=str(MAX_SEEDS)):
        seed_list(MAX_SEEDS + 1)


@pytest.mark.parametrize("text", ["999999999it", "100000ep", "9" * 5000 + "it"])
def test_step_counts_are_bounded(text):
    from bench.config import parse_step

    with pytest.raises(BenchError):
        parse_step(text, 100)
    assert parse_step("160ep", 391) == 62_560  # the paper preset's schedule stays allowed


def test_apply_timeout_has_a_default_and_can_be_turned_off():
    from bench.cli.options import Seconds
    from bench.experiments.setup import RunOptions

    assert RunOptions(cache=Path(".")).apply_timeout == 600
    assert "600" in invoke("run", "--help").output
    assert Seconds(off=True).convert("none", None, None) is None
    assert Seconds(off=True).convert("0", None, None) is None


def test_an_oversized_done_json_is_moved_aside_not_trusted(tmp_path):
    from bench.cache import read_record

    done = tmp_path / "done.json"
    done.write_text(" " * (2 << 20) + '{"accuracy": 50.0}')
    record, problem = read_record(done)
    assert problem is not None and "bytes" in problem


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_symlink_to_dev_zero_gives_a_clear_error(tmp_path):
    from bench.cache import load_json, read_record

    (tmp_path / "done.json").symlink_to("/dev/zero")
    assert read_record(tmp_path / "done.json")[1] is not None
    with pytest.raises(BenchError, match="bytes"):
        load_json(tmp_path / "done.json")


@pytest.mark.parametrize("args", [["leaderboard", "--sparsity", "nan"], ["leaderboard", "--sparsity", "inf"],
                                  ["plot", "--sparsity", "nan", "--output", "x.png"],
                                  ["verify", "--tolerance", "nan"], ["verify", "--tolerance", "inf"]])
def test_nan_and_inf_are_refused_in_numeric_options(args):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_nan_params_are_refused_whatever_their_form():
    noise = load_plugins().perturbation("gaussian-noise").perturbation
    for raw in ("nan", "inf", float("nan"), float("-inf")):
        with pytest.raises(BenchError, match="'scale'.*finite"):
            resolve_params(noise, {"scale": raw})


def test_minus_zero_is_zero_in_params():
    import math

    noise = load_plugins().perturbation("gaussian-noise").perturbation
    for raw in ("-0.0", -0.0, "-0"):
        value = resolve_params(noise, {"scale": raw})["scale"]
        assert value == 0 and math.copysign(1, value) == 1


# -- item 4 and 7 on a real (smoke) run: the trace, and no-op perturbations --------------------------------
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, data_dir):
    from bench.experiments.perturb import run_perturbations
    from bench.experiments.setup import RunOptions
    from bench.presets import get_preset

    extra = entry("extra", lambda: module_of(Dummy("extra-noop")), "extra-dist")
    real = list(metadata.entry_points(group="bench"))
    cache = tmp_path_factory.mktemp("smoke-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench.plugins, "metadata",
                   types.SimpleNamespace(entry_points=lambda group: [*real, extra] if group == "bench" else []))
        plugins = load_plugins()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outcomes = run_perturbations(get_preset("smoke"), [("identity", {}), ("gaussian-noise", {"scale": "-0.0"}),
                                                               ("extra-noop", {})],
                                         RunOptions(cache=cache, data_dir=data_dir, device="cpu"), seeds=1,
                                         plugins=plugins)
    return cache, {o.name: o for o in outcomes}, [str(w.message) for w in caught]


def test_every_new_record_lists_the_loaded_plugin_distributions(smoke_run):
    from bench.results import schema, validate

    _, outcomes, _ = smoke_run
    record = outcomes["identity"].records[0]
    assert {"distribution": "extra-dist", "version": "1.0"} in record["plugins"]
    assert any(p["distribution"] == BUILTIN for p in record["plugins"])
    assert validate(record) == [] and "plugins" in schema(2)["properties"]


def test_a_no_op_perturbation_is_flagged_warned_and_not_ranked(smoke_run):
    from bench.report.model import from_folders

    cache, outcomes, messages = smoke_run
    assert "no_op" not in outcomes["identity"].records[0]  # a control is meant to change nothing
    for name in ("gaussian-noise", "extra-noop"):
        assert outcomes[name].records[0]["no_op"] is True
        assert any(f"'{name}'" in m and "no-op" in m for m in messages)
    assert outcomes["gaussian-noise"].params == {"scale": 0.0}
    lb = from_folders([cache / "results"], min_seeds=1)
    ranked = {row.name for board in lb.boards for row in board.rows}
    assert "identity" in ranked and not {"gaussian-noise", "extra-noop"} & ranked
    reasons = {row.name: row.reason for row in lb.ineligible}
    assert "no-op" in reasons["gaussian-noise"] and "no-op" in reasons["extra-noop"]


@pytest.mark.parametrize("timeout", [None, 30.0])
def test_what_apply_prints_goes_to_stderr(capsys, timeout):
    def chatty(ctx):
        print("hello from apply")
        return {}

    perturb(Pert("chatty", chatty), tiny_context(), timeout=timeout)
    captured = capsys.readouterr()
    assert "hello from apply" not in captured.out and "hello from apply" in captured.err


def test_run_output_shows_parameter_values_as_text():
    from rich.console import Console

    from bench.cli.output import _label

    label = _label(types.SimpleNamespace(name="sneaky", params={"text": f"{ESC}[red]v[/red]"}))
    console = Console(width=200, record=True, color_system=None)
    console.print(label)
    shown = console.export_text()
    assert "[red]v[/red]" in shown and "\x1b" not in shown and "\x07" not in shown
