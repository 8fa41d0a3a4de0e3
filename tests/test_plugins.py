"""Plugin loading, the contract's validation, parameters, and the hook documentation."""

from __future__ import annotations

import inspect
import json
import re
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
from click.testing import CliRunner

import bench.plugins
from bench import hookimpl, hookspecs
from bench.cli import cli
from bench.errors import BenchError, PluginError
from bench.perturbation import Context, Param, perturb, resolve_params
from bench.plugins import load_plugins

ROOT = Path(__file__).resolve().parents[1]


# -- fake entry points: no real installs ------------------------------------------------------------
@dataclass
class FakeDist:
    name: str
    version: str = "1.0"


@dataclass
class FakeEntryPoint:
    name: str
    dist: FakeDist
    loader: Callable[[], object]
    value: str = "fake.module"

    def load(self):
        return self.loader()


class Dummy:
    description = "A test perturbation."
    params = (Param("strength", float, 1.0), Param("count", int, 2), Param("flag", bool, False))

    def __init__(self, name):
        self.name = name

    def apply(self, ctx):
        return dict(ctx.rewind)


def plugin_module(*names: str) -> types.ModuleType:
    module = types.ModuleType(f"fake_{'_'.join(n.replace('-', '_') for n in names)}")

    @hookimpl
    def register_perturbations(register):
        for name in names:
            register(Dummy(name))

    module.register_perturbations = register_perturbations
    return module


def broken():
    raise ImportError("No module named 'missing_dependency'")


def install(monkeypatch, *entry_points: FakeEntryPoint) -> None:
    fake = types.SimpleNamespace(entry_points=lambda group: [ep for ep in entry_points if group == "bench"])
    monkeypatch.setattr(bench.plugins, "metadata", fake)


def ep(name: str, dist: str, *perturbations: str, loader=None) -> FakeEntryPoint:
    module = plugin_module(*perturbations)
    return FakeEntryPoint(name, FakeDist(dist), loader or (lambda: module))


BUILTIN = "earlyphase-bench"


# -- loading -----------------------------------------------------------------------------------------
def test_real_builtins_load_through_the_entry_point_group():
    plugins = load_plugins()
    builtins = {p.name for p in plugins.loaded if p.dist == BUILTIN}
    assert {"builtin-controls", "builtin-signs", "builtin-shuffles", "builtin-noise"} <= builtins
    assert not plugins.failed
    special = {"builtin-pretraining": ("register_pretraining",), "builtin-tensorboard": ("register_loggers",),
               "builtin-mlflow": ("register_loggers",), "builtin-pruning": ("register_pruning_strategies",)}
    assert all(p.hooks == special.get(p.name, ("register_perturbations",)) for p in plugins.loaded if p.dist == BUILTIN)


def test_a_plugin_that_fails_to_import_warns_once_by_name_and_the_rest_loads(monkeypatch):
    install(monkeypatch, ep("good", "good-dist", "fine"), ep("bad", "bad-dist", loader=broken),
            ep("builtin", BUILTIN, "identity"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins = load_plugins()
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert "'bad'" in messages[0] and "bad-dist" in messages[0] and "missing_dependency" in messages[0]
    assert set(plugins.perturbations()) == {"fine", "identity"}
    assert [f["name"] for f in plugins.failed] == ["bad"]


def test_bench_load_plugins_restricts_outside_distributions_but_builtins_always_load(monkeypatch):
    install(monkeypatch, ep("a", "dist-a", "from-a"), ep("b", "Dist_B", "from-b"), ep("builtin", BUILTIN, "identity"))
    monkeypatch.setenv("BENCH_LOAD_PLUGINS", "dist-b")  # names compare case- and _/- insensitively
    plugins = load_plugins()
    assert set(plugins.perturbations()) == {"from-b", "identity"}
    assert plugins.skipped == ["a"]
    monkeypatch.setenv("BENCH_LOAD_PLUGINS", "")
    assert set(load_plugins().perturbations()) == {"identity"}


def test_two_plugins_registering_one_name_is_an_error_naming_both(monkeypatch):
    install(monkeypatch, ep("first", "dist-one", "same"), ep("second", "dist-two", "same"))
    with pytest.raises(PluginError) as info, pytest.warns(UserWarning, match="disabled"):
        load_plugins().perturbation("same")
    message = str(info.value)
    assert "'same'" in message
    assert all(word in message for word in ("first", "dist-one", "second", "dist-two"))


def test_unknown_perturbation_name_suggests_the_closest(monkeypatch):
    install(monkeypatch, ep("builtin", BUILTIN, "shuffle-layer"))
    with pytest.raises(BenchError, match="Did you mean 'shuffle-layer'"):
        load_plugins().perturbation("shuffle-layr")


def test_cli_lists_plugins_failures_and_perturbations(monkeypatch):
    install(monkeypatch, ep("good", "good-dist", "fine"), ep("bad", "bad-dist", loader=broken))
    runner = CliRunner()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        listed = json.loads(runner.invoke(cli, ["plugins", "--json"]).stdout)
    assert [p["name"] for p in listed["loaded"]] == ["good"]
    assert listed["loaded"][0]["hooks"] == ["register_perturbations"]
    assert listed["failed"][0]["name"] == "bad"
    result = runner.invoke(cli, ["perturbations", "--json"])
    (row,) = json.loads(result.stdout)
    assert row["name"] == "fine" and row["plugin"] == "good" and row["distribution"] == "good-dist"
    assert row["version"] == "1.0"
    assert row["params"][0] == {"name": "strength", "type": "float", "default": 1.0, "help": ""}


# -- what perturb() rejects --------------------------------------------------------------------------
class Returns:
    def __init__(self, make):
        self.name, self.description, self.params, self.make = "bad-plugin", "Returns something wrong.", (), make

    def apply(self, ctx):
        return self.make(ctx)


def tiny_ctx() -> Context:
    w = torch.tensor([[1.0, -2.0], [3.0, -4.0]])
    return Context(rewind={"w": w.clone()}, init={"w": w.clone()}, mask={"w": torch.ones(2, 2)},
                   generator=torch.Generator().manual_seed(0))


def boom(ctx):
    raise ValueError("oops")


@pytest.mark.parametrize("make, pattern", [
    (lambda ctx: {"w": torch.zeros(3, 2)}, r"shape \(3, 2\) for 'w'"),
    (lambda ctx: {"w": torch.zeros(2, 2, dtype=torch.float64)}, r"dtype torch.float64 for 'w'"),
    (lambda ctx: {"w": torch.full((2, 2), float("nan"))}, r"NaN or infinite values in 'w'"),
    (lambda ctx: {"w": torch.full((2, 2), float("inf"))}, r"NaN or infinite values in 'w'"),
    (lambda ctx: {"v": torch.zeros(2, 2)}, r"unknown tensor 'v'"),
    (lambda ctx: {"w": [[0.0, 0.0], [0.0, 0.0]]}, r"returned list for 'w'"),
    (lambda ctx: [torch.zeros(2, 2)], r"must return a dict"),
    (boom, r"failed in apply\(\): ValueError: oops"),
])
def test_perturb_rejects_bad_output_naming_the_plugin(make, pattern):
    with pytest.raises(PluginError, match=pattern) as info:
        perturb(Returns(make), tiny_ctx())
    assert "Perturbation 'bad-plugin'" in str(info.value)


def test_perturb_reapplies_the_mask_and_leaves_out_tensors_at_wk():
    ctx = tiny_ctx()
    ctx.mask["w"][0, 0] = 0
    out = perturb(Returns(lambda c: {"w": torch.full((2, 2), 5.0)}), ctx)
    assert out.weights["w"].tolist() == [[0.0, 5.0], [5.0, 5.0]]
    kept = perturb(Returns(lambda c: {}), tiny_ctx())
    assert torch.equal(kept.weights["w"], tiny_ctx().rewind["w"])


# -- --param conversion ------------------------------------------------------------------------------
def test_params_convert_to_their_declared_types():
    values = resolve_params(Dummy("x"), {"strength": "0.25", "count": "3", "flag": "yes"})
    assert values == {"strength": 0.25, "count": 3, "flag": True}
    assert resolve_params(Dummy("x"), {}) == {"strength": 1.0, "count": 2, "flag": False}


@pytest.mark.parametrize("raw, pattern", [
    ({"strength": "abc"}, r"Parameter 'strength' of perturbation 'x' must be float, got 'abc'"),
    ({"count": "1.5"}, r"Parameter 'count' of perturbation 'x' must be int"),
    ({"flag": "maybe"}, r"Parameter 'flag' of perturbation 'x' must be bool"),
    ({"strength": "nan"}, r"'strength' of perturbation 'x' must be finite"),
    ({"strenght": "1"}, r"has no parameter 'strenght'; its parameters: strength, count, flag"),
])
def test_param_conversion_errors(raw, pattern):
    with pytest.raises(BenchError, match=pattern):
        resolve_params(Dummy("x"), raw)


def test_cli_param_errors_are_one_line_before_any_training(tmp_path):
    runner = CliRunner()
    base = ["run", "--preset", "smoke", "--cache-dir", str(tmp_path), "-p", "gaussian-noise"]
    bad_type = runner.invoke(cli, [*base, "--param", "scale=abc"])
    assert bad_type.exit_code == 1
    assert "Error: Parameter 'scale' of perturbation 'gaussian-noise' must be float, got 'abc'." in bad_type.output
    no_equals = runner.invoke(cli, [*base, "--param", "scale"])
    assert no_equals.exit_code == 1 and "--param expects key=value, got 'scale'" in no_equals.output
    assert not (tmp_path / "experiments").exists()


# -- documentation -----------------------------------------------------------------------------------
def test_every_hook_is_documented_in_contributing_with_its_signature():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    specs = [(name, fn) for name, fn in vars(hookspecs).items()
             if callable(fn) and hasattr(fn, "bench_spec")]
    assert specs, "found no hookspecs"
    for name, fn in specs:
        signature = f"{name}{inspect.signature(fn)}"
        assert re.search(rf"^#+ .*`{re.escape(signature)}`", text, re.M), \
            f"CONTRIBUTING.md needs a heading with `{signature}`"
