"""A ``bench run`` as one run in each chosen experiment tracker (``--logger``; contract in bench.tracking).

What is logged, all of it read from what the harness computes anyway (no extra forward pass, nothing that
could move a number):

* hyperparameters, once, before anything trains: preset, config hash, the flattened experiment config,
  the perturbations with their parameters and seed, seeds, level, group size, device, code version;
* per stage of each replicate, when it finishes or is read from the cache, at the stage's last iteration
  T: ``<kind>/<stage>/seed_<s>/test_accuracy``, ``val_accuracy`` and ``seconds`` (kind: trunk, level or
  branch);
* during training, at each checkpoint point (default: every epoch) and at the end, with the iteration:
  ``<kind>/<stage>/seed_<s>/train_loss``, the loss of that step's batch. Seeds trained together as one fused
  model share one loss: the tag is then ``seeds_<a>_<b>...`` and the value their mean;
* per result, at T: ``result/<perturbation>/level_<L>/seed_<s>/`` ``drop``, ``dense_accuracy``,
  ``ticket_accuracy`` and ``perturbed_accuracy``, and their means over seeds under ``.../mean/``.

Seed groups trained in worker processes (``--workers``) report to the main process, which alone holds the
loggers (bench.experiments.parallel).
"""

from __future__ import annotations

import os
import re
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Iterator, Sequence

from bench.config import config_hash, full
from bench.errors import BenchError
from bench.plugins import Plugins, Registered, default_plugins
from bench.presets import Preset
from bench.provenance import PROTOCOL_VERSION, code_version
from bench.tracking import STATUSES, Logger, Settings, flatten

ENV_LOGGERS = "BENCH_LOGGERS"
ENV_LOG_DIR = "BENCH_LOG_DIR"
ENV_TRACKING_URI = "BENCH_TRACKING_URI"
RESULT_KEYS = (("drop", None), ("dense_accuracy", "dense"), ("ticket_accuracy", "ticket"),
               ("perturbed_accuracy", "perturbed"))


def logger_names(given: Sequence[str]) -> list[str]:
    """``--logger`` values, else ``$BENCH_LOGGERS`` (comma-separated), without repeats."""
    names = list(given) or (os.environ.get(ENV_LOGGERS) or "").split(",")
    return list(dict.fromkeys(n.strip() for n in names if n.strip()))


def slug(text: str) -> str:
    """A stage label as one tag segment: "IMP level 2" -> "imp_level_2"."""
    return re.sub(r"[^a-z0-9.-]+", "_", text.lower()).strip("_")


def stage_kind(label: str) -> str:
    """trunk, level or branch, from a stage's label (bench.stages names them)."""
    if label.startswith("dense trunk"):
        return "trunk"
    if label.startswith(("IMP level", "ticket at level", "level 0 rewound")):
        return "level"
    return "branch"


def seed_tag(seeds: Sequence[int]) -> str:
    return f"seed_{seeds[0]}" if len(seeds) == 1 else "seeds_" + "_".join(str(s) for s in seeds)


@dataclass
class Tracking:
    """The loggers of one ``bench run``: fed by the stages (bench.stages.Metrics) and by the run itself."""

    loggers: list[Logger]
    levels: list[int] = field(default_factory=list)  # the levels asked for, when several
    _logged_params: bool = False
    _stages: set[tuple[str, int]] = field(default_factory=set)

    def _call(self, method: str, *args: Any) -> None:
        """Each logger in turn; one that raises is disabled with a warning, and the run goes on."""
        for logger in list(self.loggers):
            try:
                getattr(logger, method)(*args)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # a tracker's failure must not lose a run's results
                self.loggers.remove(logger)
                warnings.warn(f"Logger '{getattr(logger, 'name', '?')}' failed in {method}(): "
                              f"{type(exc).__name__}: {str(exc)[:200]}. It was disabled; the run goes on.",
                              stacklevel=2)

    def log(self, values: dict[str, float | None], step: int) -> None:
        present = {k: float(v) for k, v in values.items() if v is not None}  # no validation split: no value
        if present:
            self._call("log_metrics", present, step)

    # -- bench.stages.Metrics ------------------------------------------------------------------------
    def stage(self, label: str, seed: int, step: int, record: dict) -> None:
        if (label, seed) in self._stages:  # a stage read twice (the trunk, then via a level) logs once
            return
        self._stages.add((label, seed))
        tag = f"{record.get('stage') or stage_kind(label)}/{slug(label)}/seed_{seed}"
        self.log({f"{tag}/test_accuracy": record.get("accuracy"), f"{tag}/val_accuracy": record.get("val_accuracy"),
                  f"{tag}/seconds": record.get("seconds")}, step)

    def loss(self, label: str, seeds: list[int], step: int, loss: float) -> None:
        if not label.startswith("replaying"):  # a replay retraces the trunk: its losses are the trunk's
            self.log({f"{stage_kind(label)}/{slug(label)}/{seed_tag(seeds)}/train_loss": loss}, step)

    # -- the run ------------------------------------------------------------------------------------
    def begin(self, preset: Preset, setup: Any, chosen: list[tuple[Registered, dict[str, Any]]],
              perturbation_seed: int) -> None:
        """The hyperparameters, at the first level's start (a run over several levels logs them once)."""
        if self._logged_params:
            return
        self._logged_params = True
        exp = setup.experiment
        params: dict[str, Any] = {
            "preset": preset.name, "config_hash": config_hash(exp), **flatten(full(exp), "config"),
            "perturbation": ",".join(r.perturbation.name for r, _ in chosen),
            **flatten({r.perturbation.name: p for r, p in chosen if p}, "perturbation_params"),
            "perturbation_seed": perturbation_seed, "seeds": ",".join(str(s) for s in setup.seeds),
            "level": ",".join(str(lvl) for lvl in self.levels) if len(self.levels) > 1 else setup.level,
            "group_size": setup.env.group_size, "device": str(setup.env.device),
            "protocol_version": PROTOCOL_VERSION, **code_version(),
        }
        self._call("log_hyperparams", params)

    def results(self, outcomes: list[Any]) -> None:
        """Each result's drop and accuracies, and their means over seeds, at the last iteration T."""
        for outcome in outcomes:
            if not outcome.records:
                continue
            base = f"result/{outcome.name}/level_{outcome.level}"
            values: dict[str, float | None] = {}
            for key, accuracy in RESULT_KEYS:
                per_seed = [r["drop"] if accuracy is None else r["accuracy"][accuracy] for r in outcome.records]
                for record, value in zip(outcome.records, per_seed):
                    values[f"{base}/seed_{record['seed']}/{key}"] = value
                values[f"{base}/mean/{key}"] = sum(per_seed) / len(per_seed)
            self.log(values, outcome.records[0]["steps"])
        self._call("save")

    def finalize(self, status: str) -> None:
        assert status in STATUSES, status
        self._call("save")
        self._call("finalize", status)


def _missing(modules: Sequence[str]) -> list[str]:
    missing = []
    for module in modules:
        try:
            if find_spec(module) is None:
                missing.append(module)
        except (ImportError, ValueError):  # a parent package missing, or a module set to None
            missing.append(module)
    return missing


def _install_hint(name: str, factory: Any, modules: Sequence[str]) -> BenchError:
    quoted = [f"'{m}'" for m in modules]
    what = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
    install = getattr(factory, "install", None)
    how = f"pip install '{install}'" if install else f"pip install {' '.join(modules)}"
    verb = "is" if len(modules) == 1 else "are"
    return BenchError(f"Logger '{name}' needs {what}, which {verb} not installed: {how}.")


def open_tracking(names: Sequence[str], *, log_dir: Path, run_name: str, tracking_uri: str | None = None,
                  tags: dict[str, str] | None = None, levels: Sequence[int] = (),
                  plugins: Plugins | None = None) -> Tracking:
    """One new run in each named logger. Every name and library is checked before any run is created."""
    plugins = plugins or default_plugins()
    factories = [(name, plugins.logger(name).factory) for name in names]
    for name, factory in factories:
        missing = _missing(getattr(factory, "requires", ()))
        if missing:
            raise _install_hint(name, factory, missing)
    loggers: list[Logger] = []
    try:
        for name, factory in factories:
            folder = log_dir / name
            folder.mkdir(parents=True, exist_ok=True)
            settings = Settings(folder, run_name, tracking_uri, dict(tags or {}))
            try:
                loggers.append(factory.create(settings))
            except ModuleNotFoundError as exc:
                raise _install_hint(name, factory, [exc.name or str(exc)]) from None
            except BenchError:
                raise
            except Exception as exc:
                raise BenchError(f"Logger '{name}' could not start a run: {type(exc).__name__}: "
                                 f"{str(exc)[:200]}") from None
    except BaseException as exc:  # the runs already created are closed, not left running
        Tracking(loggers).finalize("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        raise
    return Tracking(loggers, levels=list(levels))


def run_name(preset: str, perturbations: Sequence[str]) -> str:
    """``<preset>-<perturbation>[+...]-<date>-<time>``: readable, and apart from earlier runs."""
    return f"{preset}-{'+'.join(perturbations)}-{time.strftime('%Y%m%d-%H%M%S')}"


@contextmanager
def tracked(tracking: Tracking | None) -> Iterator[Tracking | None]:
    """Finalize every logger when the block ends: "success", "interrupted" on Ctrl-C, else "failed"."""
    if tracking is None:
        yield None
        return
    status = "failed"
    try:
        yield tracking
        status = "success"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        tracking.finalize(status)
