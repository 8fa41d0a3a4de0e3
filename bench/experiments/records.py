"""The stored result record: the fields every result shares, and the outcome of a run over seeds."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import models
from bench.cache import load_json, save_json
from bench.connectivity import effective_density
from bench.config import Experiment, full
from bench.errors import BenchError
from bench.execute import StageEvent
from bench.plugins import PluginInfo, Plugins
from bench.presets import Preset
from bench.provenance import PROTOCOL_VERSION, environment
from bench.results import validate
from bench.stages import Replicate
from bench.stats import Summary, summarize

SCHEMA_VERSION = 2
# what a rerun from the cache may not change; everything else (environment, created) is provenance
# and which plugin distributions were loaded: a rerun from the cache keeps the trace of the run that trained it
_PROVENANCE = ("environment", "created", "timings", "plugins")
# what a result proves: a rerun from the cache that computes other values refuses instead of rewriting them
_EVIDENCE = ("accuracy", "drop", "fingerprints", "trained_with_seeds", "validation_accuracy", "density",
             "effective_std", "relative_change")


def base_record(preset: Preset, rep: Replicate, level: int) -> dict:
    """The fields every stored result shares: where it comes from and what produced it."""
    return {
        "schema_version": SCHEMA_VERSION,
        "protocol_version": PROTOCOL_VERSION,
        "preset": preset.name,
        "config_hash": rep.hash,
        "config": full(rep.exp),
        "seed": rep.seed,
        "level": level,
        "density": rep.record(level).get("sparsity", {}).get("density", 1.0),
        "effective_density": effective_density_of(rep, level),
        "pruning": {"strategy": rep.exp.prune.strategy, "params": dict(rep.exp.prune.strategy_params)},
        "steps": rep.T,
        "rewind_step": rep.k,
        "environment": environment(rep.env.device),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "fingerprints": rep.fingerprints(level),
    }


def effective_density_of(rep: Replicate, level: int) -> float | None:
    """The level's effective density (bench.connectivity): surviving weights that still carry signal."""
    model = models.build_model(rep.exp.model, rep.env.data.in_channels, rep.env.data.num_classes)
    return effective_density(model, rep.masks(level))


def store(path: Path, record: dict) -> dict:
    """Write ``record`` unless the file already holds the same result, whose provenance (the machine, time
    and code that trained it) a rerun from the cache must keep; return what the file holds.

    The record is validated first, as the leaderboard will read it: an invalid result is an error, never a file."""
    problems = _non_finite(record) or validate(record)
    if problems:
        raise BenchError(f"The result for {path} is invalid and was not written: {'; '.join(problems[:3])}. "
                         f"Its stages may be corrupt: run `bench cache doctor`.")
    if path.exists():
        try:
            old = load_json(path)
        except (ValueError, BenchError):  # BenchError: far too large to be a record
            old = None  # unreadable: replaced by the result just assembled from the stages
        if isinstance(old, dict):
            changed = [k for k in _EVIDENCE if k in old and k in record and old[k] != record[k]]
            if changed:  # never overwritten: the stored result is the evidence of what was trained
                raise BenchError(f"{path} holds other {', '.join(changed)} than its stages in the cache give now: the "
                                 f"stages changed since it was written (damaged, swapped or retrained files). The "
                                 f"result was kept; inspect the stages, or move the file away to store the new one.")
            if _without_provenance(old) == _without_provenance(record):
                return old
    save_json(path, record)
    return record


def _non_finite(value: Any, where: str = "") -> list[str]:
    """Where ``value`` holds NaN or an infinity (JSON has no such numbers; a file would carry a bare NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where or '<record>'} is {value}"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, f"{where}.{k}" if where else str(k))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{where}[{i}]")]
    return []


def _without_provenance(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in _PROVENANCE}


def plugin_fields(plugin: PluginInfo) -> dict[str, str]:
    """Which plugin produced a result, for its record's ``perturbation`` object."""
    return {"plugin": plugin.name, "distribution": plugin.dist, "version": plugin.version}


def plugin_trace(plugins: Plugins) -> list[dict[str, str]]:
    """Every plugin distribution loaded in the process that made a result, with its version: any of them
    could have touched the run (bench verify re-runs with only the built-ins and the result's own)."""
    dists = {(p.dist, p.version) for p in plugins.loaded}
    return [{"distribution": d, "version": v} for d, v in sorted(dists)]


def summarize_records(records: list[dict], key: str) -> Summary:
    """n, mean and 95% interval over seeds of ``drop`` or of one accuracy (dense, ticket, perturbed, ...)."""
    return summarize([r[key] if key == "drop" else r["accuracy"][key] for r in records])


@dataclass
class Outcome:
    """One perturbation (or pre-training) over seeds at one level: its stored records, and what ran."""

    preset: str
    experiment: Experiment
    level: int
    percent_remaining: float
    name: str  # the perturbation's name, or 'pretrain:<task>'
    plugin: PluginInfo
    params: dict[str, Any]
    records: list[dict] = field(default_factory=list)
    events: list[StageEvent] = field(default_factory=list)

    def summary(self, key: str) -> Summary:
        return summarize_records(self.records, key)
