"""Issue 15: hostile plugins, corrupt cache and result files, and bad values give clear errors, never wrong numbers."""

import json
import math
import threading
import types
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bench import hookimpl, paths
from bench.cache import load_tensors, read_record, save_json
from bench.cache_doctor import diagnose
from bench.cli import cli
from bench.config import config_hash
from bench.errors import BenchError, PluginError
from bench.experiments.records import store
from bench.experiments.setup import RunOptions, prepare
from bench.perturbation import Context, perturb
from bench.plugins import load_plugins
from bench.presets import get_preset
from bench.results import MAX_BYTES, load_results
from bench.report.text import num
from bench.cli.output import fmt
from bench.stages import Replicate, execute
from test_plugins import BUILTIN, Dummy, FakeDist, FakeEntryPoint, ep, install


def module_registering(*items, fail: BaseException | None = None) -> types.ModuleType:
    module = types.ModuleType("hostile")

    @hookimpl
    def register_perturbations(register):
        for item in items:
            register(item)
        if fail is not None:
            raise fail

    module.register_perturbations = register_perturbations
    return module


def custom(name, module) -> FakeEntryPoint:
    return FakeEntryPoint(name, FakeDist(f"{name}-dist"), lambda: module)


def load(monkeypatch, *entry_points):
    install(monkeypatch, ep("builtin", BUILTIN, "identity"), *entry_points)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins = load_plugins()
        names = set(plugins.perturbations())
    return plugins, names, [str(w.message) for w in caught]


# -- 1. plugin names and isolation -------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["../evil", "has space", "<script>", "Upper", "a--b", "-a", "x" * 65, "a/b", ""])
def test_a_malformed_name_disables_only_that_item_with_a_warning_naming_the_plugin(monkeypatch, bad):
    plugins, names, messages = load(monkeypatch, custom("hostile", module_registering(Dummy(bad), Dummy("fine"))))
    assert names == {"identity", "fine"}
    assert len(messages) == 1 and "'hostile'" in messages[0] and "kebab-case" in messages[0]


def test_a_name_of_64_characters_is_accepted(monkeypatch):
    _, names, messages = load(monkeypatch, custom("ok", module_registering(Dummy("a" * 64))))
    assert "a" * 64 in names and not messages


def test_a_duplicate_disables_that_name_and_asking_for_it_names_both_plugins(monkeypatch):
    plugins, names, messages = load(monkeypatch, ep("first", "dist-one", "same", "other"),
                                    ep("second", "dist-two", "same"))
    assert names == {"identity", "other"}
    assert any("'same'" in m and "first" in m and "second" in m for m in messages)
    plugins.perturbation("other")  # the rest keeps working
    with pytest.raises(PluginError, match="'same' is registered by two plugins.*first.*second"):
        plugins.perturbation("same")


def test_an_object_without_apply_is_disabled_and_asking_for_it_names_the_plugin(monkeypatch):
    item = types.SimpleNamespace(name="no-apply", description="d", params=())
    plugins, names, messages = load(monkeypatch, custom("lazy", module_registering(item)))
    assert names == {"identity"} and "'lazy'" in messages[0]
    with pytest.raises(PluginError, match="Plugin 'lazy' .*without 'apply'"):
        plugins.perturbation("no-apply")


class Custom(BaseException):
    pass


@pytest.mark.parametrize("exc", [SystemExit(3), Custom("odd"), RuntimeError("boom")])
def test_any_exception_at_import_is_isolated_and_named(monkeypatch, exc):
    def loader():
        raise exc

    plugins, names, messages = load(monkeypatch, FakeEntryPoint("exploding", FakeDist("x-dist"), loader))
    assert names == {"identity"}
    assert [f["name"] for f in plugins.failed] == ["exploding"] and "'exploding'" in messages[0]


def test_keyboard_interrupt_at_import_is_not_swallowed(monkeypatch):
    def loader():
        raise KeyboardInterrupt

    install(monkeypatch, FakeEntryPoint("ctrl-c", FakeDist("x"), loader))
    with pytest.raises(KeyboardInterrupt):
        load_plugins()


def test_cli_survives_a_plugin_that_calls_sys_exit_at_import(monkeypatch):
    def loader():
        raise SystemExit(3)

    install(monkeypatch, ep("builtin", BUILTIN, "identity"), FakeEntryPoint("quitter", FakeDist("q"), loader))
    result = CliRunner().invoke(cli, ["perturbations", "--json"])
    assert result.exit_code == 0, result.output
    assert "quitter" in result.stderr


@pytest.mark.parametrize("exc", [RuntimeError("hook bug"), SystemExit(2)])
def test_a_hook_that_raises_is_named_and_the_others_keep_working(monkeypatch, exc):
    plugins, names, messages = load(monkeypatch, custom("buggy", module_registering(Dummy("lost"), fail=exc)))
    assert names == {"identity"}
    assert "Plugin 'buggy'" in messages[0] and type(exc).__name__ in messages[0]
    with pytest.raises(BenchError, match="Plugin 'buggy'"):
        plugins.perturbation("lost")


def test_a_typo_in_bench_load_plugins_lists_the_known_distributions(monkeypatch):
    install(monkeypatch, ep("builtin", BUILTIN, "identity"), ep("mine", "my-plugins", "mine"))
    monkeypatch.setenv("BENCH_LOAD_PLUGINS", "my-plugin")
    with pytest.raises(BenchError, match="BENCH_LOAD_PLUGINS.*'my-plugin'.*Did you mean 'my-plugins'.*earlyphase-bench"):
        load_plugins()


@pytest.mark.parametrize("bad", ["../x", "a/b", "a\\b", "A", "x" * 65])
def test_no_cache_path_is_built_from_an_invalid_name(bad):
    with pytest.raises(BenchError, match="Refusing to build a cache path"):
        paths.variant_key(bad, {}, 0)


# -- 5. apply timeout, numbers, bounded reads ---------------------------------------------------------
def small_ctx() -> Context:
    w = torch.ones(2, 2)
    return Context(rewind={"w": w.clone()}, init={"w": w.clone()}, mask={"w": torch.ones(2, 2)},
                   generator=torch.Generator().manual_seed(0))


def test_an_apply_that_never_returns_is_named_after_the_timeout():
    release = threading.Event()

    class Stuck(Dummy):
        def apply(self, ctx):
            release.wait(30)
            return {}

    try:
        with pytest.raises(PluginError, match="'stuck' did not return from apply\\(\\) within 0.2 s.*cannot be stopped"):
            perturb(Stuck("stuck"), small_ctx(), timeout=0.2)
    finally:
        release.set()


def test_with_a_timeout_results_and_errors_are_those_of_a_plain_call():
    applied = perturb(Dummy("fine"), small_ctx(), timeout=10)
    assert applied.effective_std == 0.0

    class Broken(Dummy):
        def apply(self, ctx):
            raise ValueError("oops")

    with pytest.raises(PluginError, match="'broken' failed in apply\\(\\): ValueError: oops"):
        perturb(Broken("broken"), small_ctx(), timeout=10)


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])  # 0 (or none) turns the default limit off
def test_apply_timeout_must_be_a_positive_finite_number(value):
    result = CliRunner().invoke(cli, ["run", "--apply-timeout", value])
    assert result.exit_code == 2


def test_huge_numbers_print_at_a_sane_precision():
    assert len(num(1e308, 4)) < 12 and len(fmt(1e308, 4)) < 12
    assert num(1.23456, 2) == "1.23" and fmt(-1e300) == "-1e+300"


def test_an_oversized_result_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    big = tmp_path / "big.json"
    with open(big, "wb") as handle:
        handle.truncate(MAX_BYTES + 1)  # sparse: costs no disk

    def no_read(self):
        raise AssertionError("read before the size check")

    monkeypatch.setattr(Path, "read_bytes", no_read)
    loaded = load_results([tmp_path])
    assert "at most" in loaded.problems[0].message


# -- 3. records validated before they are written ------------------------------------------------------
def test_a_nan_result_is_refused_not_written(tmp_path):
    path = tmp_path / "r.json"
    with pytest.raises(BenchError, match="invalid and was not written.*accuracy.perturbed is nan"):
        store(path, {"schema_version": 2, "accuracy": {"perturbed": math.nan}})
    with pytest.raises(BenchError, match="invalid and was not written"):
        store(path, {"schema_version": 2})
    assert not path.exists()


def test_a_corrupt_tensor_file_is_a_one_line_error_naming_it(tmp_path):
    bad = tmp_path / "final.pt"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(BenchError) as info:
        load_tensors(bad)
    message = str(info.value)
    assert str(bad) in message and "bench cache doctor" in message
    assert "weights_only" not in message and "\n" not in message


# -- 3. stage files: corrupt records and checkpoints, on the smoke preset --------------------------------
class Crash(Exception):
    pass


class crashing_progress:
    """Progress that raises once a stage reaches iteration ``at``, as a kill would stop it."""

    def __init__(self, at: int):
        self.at = at

    def start(self, label, total):
        return self

    def advance(self, done):
        if done >= self.at:
            raise Crash

    def done(self, accuracies, seconds):
        pass


def replicate(cache: Path, data_dir, seed: int = 0, **env) -> Replicate:
    setup = prepare(get_preset("smoke"), RunOptions(cache=cache, data_dir=data_dir, checkpoint_every=5),
                    seeds=[seed])
    for key, value in env.items():
        setattr(setup.env, key, value)
    return Replicate(setup.experiment, seed, setup.env)


def crash_run(tmp_path, data_dir, at: int, seed: int = 0) -> Replicate:
    """Train the trunk of ``seed`` and crash at step ``at``, as a kill would (checkpoints every 5 steps)."""
    rep = replicate(tmp_path, data_dir, seed, progress=crashing_progress(at))
    with pytest.raises(Crash):
        execute([rep.trunk_job()], rep.env)
    return rep


def test_a_leftover_checkpoint_without_w0_retrains_from_the_start(tmp_path, data_dir):
    trunk = crash_run(tmp_path, data_dir, 30).stage_dir(0)
    assert (trunk / "checkpoint.pt").exists() and (trunk / "wk.pt").exists()
    (trunk / "w0.pt").unlink()
    (trunk / "wk.pt").unlink()  # what a user deleting the stage's files by hand leaves behind
    with pytest.warns(UserWarning, match="checkpoint not resumed.*w0.pt it should have saved is missing"):
        crash_run(tmp_path, data_dir, 12)  # past k = 10: resumed at 25 it would never write W_0 and W_k again
    assert (trunk / "w0.pt").exists() and (trunk / "wk.pt").exists()
    assert list(trunk.glob("checkpoint.pt.corrupt-*"))


def test_a_checkpoint_of_another_stage_or_a_corrupt_one_is_moved_aside(tmp_path, data_dir):
    rep = crash_run(tmp_path, data_dir, 6)
    foreign = replicate(tmp_path, data_dir, seed=1).stage_dir(0) / "checkpoint.pt"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes((rep.stage_dir(0) / "checkpoint.pt").read_bytes())
    with pytest.warns(UserWarning, match="belongs to another stage"):
        crash_run(tmp_path, data_dir, 1, seed=1)
    (rep.stage_dir(0) / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="checkpoint.pt: checkpoint not resumed: cannot be loaded"):
        crash_run(tmp_path, data_dir, 1)


@pytest.mark.parametrize("content", ["{", '{"seconds": 1}', '{"accuracy": 150}', '{"accuracy": -1}',
                                     '{"accuracy": NaN}', '{"accuracy": Infinity}', '{"accuracy": "90"}',
                                     '{"accuracy": true}', "[]", "\xff"])
def test_invalid_stage_records_are_recognised(tmp_path, content):
    done = tmp_path / "done.json"
    done.write_text(content, encoding="latin-1")
    assert read_record(done)[1] is not None
    done.write_text('{"accuracy": 87.5}')
    assert read_record(done) == ({"accuracy": 87.5}, None)


def test_an_invalid_done_json_is_moved_aside_and_the_stage_recomputed(tmp_path, data_dir):
    rep = replicate(tmp_path, data_dir)
    done = rep.stage_dir(0) / "done.json"
    done.parent.mkdir(parents=True)
    done.write_text('{"accuracy": 150}')  # a hand edit: would be reported as a drop of 100+
    with pytest.warns(UserWarning, match="done.json: accuracy 150.*moved aside to done.json.corrupt-"):
        job = rep.trunk_job()
    assert job is not None and not done.exists()  # recomputed, not trusted
    assert json.loads(next(done.parent.glob("done.json.corrupt-*")).read_text()) == {"accuracy": 150}


# -- 4. bench cache doctor / clear -------------------------------------------------------------------
def test_cache_doctor_reports_and_fixes_leftovers_but_keeps_locks(tmp_path):
    stage = paths.experiment_dir(tmp_path, "abc") / "seed-0" / "trunk"
    stage.mkdir(parents=True)
    (stage / ".done.json.x1.tmp").write_text("half")
    (stage / ".lock").write_text("")
    save_json(stage / "done.json", {"accuracy": 50.0})
    (stage / "checkpoint.pt").write_bytes(b"x")  # next to a finished stage: orphaned
    level = stage.parent / "level-1"
    level.mkdir()
    (level / "done.json").write_text('{"accuracy": 1e9}')
    (paths.experiment_dir(tmp_path, "abc") / "fused" / "deadbeef").mkdir(parents=True)
    runner = CliRunner()
    found = json.loads(runner.invoke(cli, ["cache", "doctor", "--json", "--cache-dir", str(tmp_path)]).stdout)
    kinds = sorted((f["kind"], Path(f["path"]).name) for f in found["findings"])
    assert kinds == [("corrupt", "done.json"), ("orphaned-checkpoint", "checkpoint.pt"), ("stale-fused", "deadbeef"),
                     ("tmp", ".done.json.x1.tmp")]
    result = runner.invoke(cli, ["cache", "doctor", "--fix", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0 and "Removed 4" in result.stderr
    assert not diagnose(tmp_path).findings
    assert (stage / ".lock").exists() and (stage / "done.json").exists()


def test_cache_clear_removes_one_preset_and_asks_first(tmp_path):
    smoke = config_hash(get_preset("smoke").experiment)
    for folder in (paths.experiment_dir(tmp_path, smoke) / "seed-0", tmp_path / f"results/{smoke}/level-2",
                   paths.experiment_dir(tmp_path, "other") / "seed-0"):
        folder.mkdir(parents=True)
    runner = CliRunner()
    refused = runner.invoke(cli, ["cache", "clear", "--preset", "smoke", "--cache-dir", str(tmp_path)])
    assert refused.exit_code == 1 and "--yes" in refused.stderr
    assert (paths.experiment_dir(tmp_path, smoke)).exists()
    done = runner.invoke(cli, ["cache", "clear", "--preset", "smoke", "--yes", "--cache-dir", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert f"Will delete {paths.experiment_dir(tmp_path, smoke)}" in done.stderr.replace("\n", "")
    assert not (paths.experiment_dir(tmp_path, smoke)).exists() and not (tmp_path / "results" / smoke).exists()
    assert paths.experiment_dir(tmp_path, "other").exists()
