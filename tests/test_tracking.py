"""Experiment trackers: the logger contract through a fake plugin, and the TensorBoard and MLflow loggers
read back with their own libraries. Every run is the smoke preset with 2 seeds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import bench.experiments.tracking as tracking
import bench.plugins
from bench import hookimpl
from bench.cli import cli

SMOKE = ["run", "--preset", "smoke", "--seeds", "2", "--json"]
T = 120  # the smoke preset's training length
PER_EPOCH = 10  # 640 examples in batches of 64: the default checkpoint interval
ACCURACIES = (("dense_accuracy", "dense"), ("ticket_accuracy", "ticket"), ("perturbed_accuracy", "perturbed"))


# -- a fake logger plugin, installed in-process next to the real entry points ------------------------
class FakeLogger:
    def __init__(self, name: str, settings, fail_in: str | None = None):
        self.name, self.settings, self.fail_in = name, settings, fail_in
        self.version = f"{name}-run"
        self.calls: list[tuple] = []

    def _record(self, method: str, *args) -> None:
        if method == self.fail_in:
            raise RuntimeError("the tracking server went away")
        self.calls.append((method, *args))

    def log_hyperparams(self, params):
        self._record("log_hyperparams", dict(params))

    def log_metrics(self, metrics, step):
        self._record("log_metrics", dict(metrics), step)

    def save(self):
        self._record("save")

    def finalize(self, status):
        self.calls.append(("finalize", status))  # recorded even by a logger that fails elsewhere

    def metrics(self) -> dict[str, list[tuple[int, float]]]:
        """tag -> [(step, value)] in logging order."""
        found: dict[str, list[tuple[int, float]]] = {}
        for call in self.calls:
            if call[0] == "log_metrics":
                for tag, value in call[1].items():
                    found.setdefault(tag, []).append((call[2], value))
        return found


CREATED: list[FakeLogger] = []


@dataclass
class FakeFactory:
    name: str
    description: str = "A logger that remembers every call."
    fail_in: str | None = None
    requires: tuple[str, ...] = ()
    install: str | None = None

    def create(self, settings):
        CREATED.append(FakeLogger(self.name, settings, self.fail_in))
        return CREATED[-1]


class Raising:
    """A perturbation whose apply() raises ``error``, after the trunk and levels have trained."""

    description = "Raises in apply()."
    params = ()

    def __init__(self, name: str, error: type[BaseException]):
        self.name, self.error = name, error

    def apply(self, ctx):
        raise self.error("stop here")


def fake_module() -> types.ModuleType:
    module = types.ModuleType("fake_tracking_plugin")

    @hookimpl
    def register_loggers(register):
        register(FakeFactory("fake"))
        register(FakeFactory("fake-two"))
        register(FakeFactory("flaky", fail_in="log_metrics"))
        register(FakeFactory("needs-lib", requires=("no_such_module_for_bench_tests",), install="fake-dist[extra]"))

    @hookimpl
    def register_perturbations(register):
        register(Raising("explode", RuntimeError))
        register(Raising("interrupt", KeyboardInterrupt))

    module.register_loggers = register_loggers
    module.register_perturbations = register_perturbations
    return module


@dataclass(frozen=True)
class _Dist:
    name: str = "fake-tracking"
    version: str = "1.0"


@dataclass
class _EntryPoint:
    name: str = "fake-tracking"
    dist: _Dist = _Dist()
    value: str = "fake_tracking_plugin"

    def load(self):
        return fake_module()


@pytest.fixture
def fakes(monkeypatch):
    real = metadata.entry_points
    monkeypatch.setattr(bench.plugins, "metadata", types.SimpleNamespace(
        entry_points=lambda group: [*real(group=group), _EntryPoint()]))
    bench.plugins.default_plugins.cache_clear()
    CREATED.clear()
    yield CREATED
    CREATED.clear()


def bench_run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [*SMOKE, *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, data_dir):
    """A trained cache and its records, from a run without any logger."""
    cache = tmp_path_factory.mktemp("baseline")
    code, stdout, stderr = bench_run("-p", "identity", "--cache-dir", str(cache), "--data-dir", str(data_dir))
    assert code == 0, stderr
    return cache, json.loads(stdout)["results"]


def comparable(record: dict) -> tuple:
    return record["seed"], record["accuracy"], record["drop"], record["fingerprints"], record["config_hash"]


# -- the contract ------------------------------------------------------------------------------------
def test_a_logger_gets_hyperparameters_once_metrics_with_steps_and_success_and_no_number_moves(
        fakes, baseline, tmp_path, data_dir):
    code, stdout, stderr = bench_run("-p", "identity", "--logger", "fake", "--cache-dir", str(tmp_path),
                                     "--data-dir", str(data_dir))
    assert code == 0, stderr
    records = json.loads(stdout)["results"]
    # a logger reads numbers, never moves one: the same records as the run without it
    assert [comparable(r) for r in records] == [comparable(r) for r in baseline[1]]

    (logger,) = fakes
    assert logger.settings.log_dir == tmp_path / "logs" / "fake" and logger.settings.log_dir.is_dir()
    assert logger.settings.run_name.startswith("smoke-identity-")
    assert logger.settings.tags == {"preset": "smoke", "perturbation": "identity"}
    methods = [c[0] for c in logger.calls]
    assert methods[0] == "log_hyperparams" and methods.count("log_hyperparams") == 1
    assert methods[-1] == "finalize" and logger.calls[-1] == ("finalize", "success")
    assert methods.count("finalize") == 1 and "save" in methods
    params = logger.calls[0][1]
    assert params["preset"] == "smoke" and params["config_hash"] == records[0]["config_hash"]
    assert params["perturbation"] == "identity" and params["seeds"] == "0,1" and params["level"] == 2
    assert params["config.train.lr"] == records[0]["config"]["train"]["lr"] and "bench_version" in params
    assert all(isinstance(v, (str, int, float, bool)) for v in params.values())
    assert all(isinstance(c[2], int) for c in logger.calls if c[0] == "log_metrics")

    metrics = logger.metrics()
    for record in records:
        seed, base = record["seed"], f"result/identity/level_2/seed_{record['seed']}"
        assert metrics[f"{base}/drop"] == [(T, record["drop"])]
        for tag, key in ACCURACIES:
            assert metrics[f"{base}/{tag}"] == [(T, record["accuracy"][key])]
        # per stage, at T: the trunk is the dense network, the level-2 ticket the ticket, the branch the perturbed
        assert metrics[f"trunk/dense_trunk/seed_{seed}/test_accuracy"] == [(T, record["accuracy"]["dense"])]
        assert metrics[f"level/imp_level_2/seed_{seed}/test_accuracy"] == [(T, record["accuracy"]["ticket"])]
        branch = f"branch/identity_at_level_2/seed_{seed}"
        assert metrics[f"{branch}/test_accuracy"] == [(T, record["accuracy"]["perturbed"])]
        assert metrics[f"{branch}/val_accuracy"] == [(T, record["validation_accuracy"]["perturbed"])]
        assert metrics[f"trunk/dense_trunk/seed_{seed}/seconds"][0][1] == record["timings"]["trunk_s"]
    assert metrics["result/identity/level_2/mean/drop"] == [(T, 0.0)]
    # training loss at every checkpoint point: the trunk from 0, the branch from the rewind point k = 10
    trunk_loss = metrics["trunk/dense_trunk/seeds_0_1/train_loss"]
    assert [step for step, _ in trunk_loss] == list(range(PER_EPOCH, T + 1, PER_EPOCH))
    assert [s for s, _ in metrics["branch/identity_at_level_2/seeds_0_1/train_loss"]] == list(range(20, T + 1, 10))
    assert all(0 < value < 10 for _, value in trunk_loss)

    # again, from the cache: the stages are read back and logged, nothing trains, so no loss
    fakes.clear()
    code, stdout, stderr = bench_run("-p", "identity", "--logger", "fake", "--cache-dir", str(tmp_path),
                                     "--data-dir", str(data_dir))
    assert code == 0, stderr
    again = fakes[0].metrics()
    assert again["trunk/dense_trunk/seed_0/test_accuracy"] == metrics["trunk/dense_trunk/seed_0/test_accuracy"]
    assert not [tag for tag in again if tag.endswith("train_loss")]
    assert fakes[0].calls[-1] == ("finalize", "success")


def test_seed_groups_in_worker_processes_log_through_the_main_process(fakes, tmp_path, data_dir):
    code, stdout, stderr = bench_run("-p", "identity", "--logger", "fake", "--group-size", "1", "--workers", "2",
                                     "--cache-dir", str(tmp_path), "--data-dir", str(data_dir))
    assert code == 0, stderr
    records = json.loads(stdout)["results"]
    metrics = fakes[0].metrics()
    for record in records:  # one group per seed, each trained in its own process: its own loss
        seed = record["seed"]
        assert [s for s, _ in metrics[f"trunk/dense_trunk/seed_{seed}/train_loss"]] == list(range(10, T + 1, 10))
        # reported by the worker, then read back from the cache by the main process: logged once
        assert metrics[f"level/imp_level_2/seed_{seed}/test_accuracy"] == [(T, record["accuracy"]["ticket"])]
        assert metrics[f"result/identity/level_2/seed_{seed}/drop"] == [(T, 0.0)]
    assert fakes[0].calls[-1] == ("finalize", "success")


def test_a_run_that_raises_finalizes_failed_and_ctrl_c_interrupted(fakes, baseline, data_dir):
    cache = ["--cache-dir", str(baseline[0]), "--data-dir", str(data_dir)]
    code, _, stderr = bench_run("-p", "explode", "--logger", "fake", *cache)
    assert code == 1 and "Perturbation 'explode' failed in apply()" in stderr
    assert fakes[0].calls[0][0] == "log_hyperparams" and fakes[0].calls[-1] == ("finalize", "failed")
    code, _, stderr = bench_run("-p", "interrupt", "--logger", "fake", *cache)
    assert code == 130, stderr
    assert fakes[1].calls[-1] == ("finalize", "interrupted")
    assert [c[0] for c in fakes[1].calls].count("finalize") == 1


def test_bench_loggers_chooses_loggers_and_a_failing_logger_is_disabled_not_the_run(
        fakes, baseline, data_dir, monkeypatch):
    monkeypatch.setenv("BENCH_LOGGERS", "flaky, fake-two")
    code, _, stderr = bench_run("-p", "identity", "--cache-dir", str(baseline[0]), "--data-dir", str(data_dir))
    assert code == 0, stderr
    flaky, other = fakes
    assert "Logger 'flaky' failed in log_metrics(): RuntimeError: the tracking server went away" in stderr
    assert "log_metrics" not in [c[0] for c in flaky.calls] and "finalize" not in [c[0] for c in flaky.calls]
    assert other.metrics()["result/identity/level_2/mean/drop"] == [(T, 0.0)]
    assert other.calls[-1] == ("finalize", "success")
    # --logger wins over the variable
    fakes.clear()
    code, _, stderr = bench_run("-p", "identity", "--logger", "fake", "--cache-dir", str(baseline[0]),
                                "--data-dir", str(data_dir))
    assert code == 0 and [logger.name for logger in fakes] == ["fake"]


@pytest.mark.parametrize("args, message", [
    (["--logger", "tensorbord"], "Error: Unknown logger 'tensorbord'. Did you mean 'tensorboard'? Known: fake, "),
    (["--logger", "needs-lib"], "Error: Logger 'needs-lib' needs 'no_such_module_for_bench_tests', which is not "
                                "installed: pip install 'fake-dist[extra]'.\n"),
    (["--logger", "fake", "-p", "no-such-perturbation"], "Error: Unknown perturbation 'no-such-perturbation'."),
])
def test_bad_logger_choices_are_one_line_before_anything_runs(fakes, tmp_path, args, message):
    code, _, stderr = bench_run("-p", "identity", *args, "--cache-dir", str(tmp_path))
    assert code == 1 and stderr.startswith(message) and stderr.count("\n") == 1, stderr
    assert not fakes and not (tmp_path / "experiments").exists()


def test_a_missing_library_names_the_extra_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(tracking, "find_spec", lambda name: None if name in ("tensorboard", "alembic") else object())
    for name, message in (("tensorboard", "'tensorboard', which is"), ("mlflow", "'alembic', which is")):
        code, _, stderr = bench_run("-p", "identity", "--logger", name, "--cache-dir", str(tmp_path))
        assert code == 1 and stderr == f"Error: Logger '{name}' needs {message} not installed: " \
                                       f"pip install 'earlyphase-bench[{name}]'.\n"


def test_the_built_in_loggers_import_their_library_only_when_used():
    code = ("import sys; from bench.plugins import load_plugins; p = load_plugins(); "
            "assert sorted(n for n in p.loggers() if n in ('tensorboard', 'mlflow')) == ['mlflow', 'tensorboard']; "
            "assert not {'tensorboard', 'mlflow', 'torch.utils.tensorboard'} & set(sys.modules), 'imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- the real libraries ----------------------------------------------------------------------------------
def test_tensorboard_event_files_read_back_with_the_records_numbers(tmp_path, data_dir):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (pip install '.[tensorboard]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    logs = tmp_path / "runs"
    code, stdout, stderr = bench_run("-p", "identity", "--logger", "tensorboard", "--log-dir", str(logs),
                                     "--cache-dir", str(tmp_path / "cache"), "--data-dir", str(data_dir))
    assert code == 0, stderr
    records = json.loads(stdout)["results"]
    (run,) = (logs / "tensorboard").iterdir()
    assert run.name.startswith("smoke-identity-") and f"Logged to tensorboard: {run}" in stderr
    events = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()

    def scalar(tag: str) -> list[tuple[int, float]]:
        return [(e.step, e.value) for e in events.Scalars(tag)]

    for record in records:
        base = f"result/identity/level_2/seed_{record['seed']}"
        for tag, key in ACCURACIES:  # event files hold float32
            assert scalar(f"{base}/{tag}") == [(T, np.float32(record["accuracy"][key]))]
        assert scalar(f"{base}/drop") == [(T, 0.0)]
        assert scalar(f"trunk/dense_trunk/seed_{record['seed']}/test_accuracy") == \
            [(T, np.float32(record["accuracy"]["dense"]))]
    assert [s for s, _ in scalar("level/imp_level_1/seeds_0_1/train_loss")] == list(range(20, T + 1, PER_EPOCH))
    tags = events.Tags()
    assert "hyperparameters/text_summary" in tags["tensors"] and "status/text_summary" in tags["tensors"]
    status = events.Tensors("status/text_summary")[0].tensor_proto.string_val[0].decode()
    assert status == "success"
    hparams = plugin_data_pb2.HParamsPluginData.FromString(
        events.SummaryMetadata("_hparams_/session_start_info").plugin_data.content).session_start_info.hparams
    assert hparams["config_hash"].string_value == records[0]["config_hash"]
    assert hparams["preset"].string_value == "smoke" and hparams["level"].number_value == 2


def test_mlflow_runs_read_back_from_a_local_store_finished_and_failed(fakes, baseline, data_dir, tmp_path):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install '.[mlflow]')")
    pytest.importorskip("sqlalchemy", reason="the mlflow extra is not installed (pip install '.[mlflow]')")
    from mlflow.tracking import MlflowClient

    cache = tmp_path / "cache"
    shutil.copytree(baseline[0], cache)  # stages read from a trained cache: their numbers, no training
    args = ["--logger", "mlflow", "--cache-dir", str(cache), "--data-dir", str(data_dir)]
    code, stdout, stderr = bench_run("-p", "identity", *args)
    assert code == 0, stderr
    records = json.loads(stdout)["results"]
    code, _, stderr = bench_run("-p", "explode", *args)
    assert code == 1, stderr

    store = cache / "logs" / "mlflow" / "mlflow.db"  # the default: SQLite under <cache>/logs/mlflow
    client = MlflowClient(f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("earlyphase-bench")
    runs = {r.data.params["perturbation"]: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"identity", "explode"}
    ok, failed = runs["identity"], runs["explode"]
    assert ok.info.status == "FINISHED" and failed.info.status == "FAILED"
    assert ok.info.run_name.startswith("smoke-identity-") and ok.data.tags["preset"] == "smoke"
    assert ok.data.params["config_hash"] == records[0]["config_hash"] == failed.data.params["config_hash"]
    assert ok.data.params["seeds"] == "0,1" and ok.data.params["config.train.steps"] == "120it"
    for record in records:
        base = f"result/identity/level_2/seed_{record['seed']}"
        for tag, key in ACCURACIES:  # MLflow keeps doubles: the record's very number
            history = client.get_metric_history(ok.info.run_id, f"{base}/{tag}")
            assert [(m.step, m.value) for m in history] == [(T, record["accuracy"][key])]
        history = client.get_metric_history(ok.info.run_id, f"level/imp_level_2/seed_{record['seed']}/test_accuracy")
        assert [(m.step, m.value) for m in history] == [(T, record["accuracy"]["ticket"])]
    # the failed run logged what it reached: the shared stages, not a result
    assert "level/imp_level_2/seed_0/test_accuracy" in failed.data.metrics
    assert not [key for key in failed.data.metrics if key.startswith("result/")]


def test_stage_labels_map_to_their_kind():
    assert [tracking.stage_kind(label) for label in ("dense trunk", "IMP level 2", "ticket at level 0",
                                                     "level 0 rewound to 0", "IMP level 1 rewound to 0",
                                                     "reinit at level 2")] == \
        ["trunk", "level", "level", "level", "level", "branch"]
    assert tracking.slug("IMP level 1 rewound to 0") == "imp_level_1_rewound_to_0"
    assert tracking.logger_names(()) == [] and tracking.logger_names(("a", "b", "a")) == ["a", "b"]
