"""``bench run`` without the CLI: resolve the request, run every replicate's stages, store results."""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import bench
from bench import models
from bench.cache import save_json
from bench.config import Experiment, digest, full
from bench.data import load_dataset
from bench.errors import BenchError
from bench.perturbation import resolve_params
from bench.plugins import Plugins, Registered, default_plugins
from bench.presets import Preset
from bench.pruning import expected_density
from bench.stages import Env, ProgressFactory, Replicate, _no_progress, execute, training_groups
from bench.stats import Summary, summarize

SCHEMA_VERSION = 1


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise BenchError(f"Unknown device '{name}': use cpu, cuda, cuda:N or auto.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"--device {name} was asked for but CUDA is not available here; use --device cpu.")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels once
    return device


def levels_table(experiment: Experiment, in_channels: int, num_classes: int) -> list[tuple[int, float]]:
    """(level, percent of prunable weights remaining) for every reachable level."""
    model = models.build_model(experiment.model, in_channels, num_classes)
    params = dict(model.named_parameters())
    total = sum(params[n].numel() for n in models.prunable_names(model))
    return [(lvl, 100 * expected_density(experiment.prune.fraction, lvl, total, experiment.prune.ties))
            for lvl in range(experiment.prune.levels + 1)]


def resolve_level(table: list[tuple[int, float]], level: int | None, sparsity: float | None, default: int) -> int:
    reachable = ", ".join(f"{pct:.1f}% (level {lvl})" for lvl, pct in table)
    if level is not None and sparsity is not None:
        raise BenchError("Give either --level or --sparsity, not both.")
    if sparsity is not None:
        lvl, pct = min(table, key=lambda row: abs(row[1] - sparsity))
        if abs(pct - sparsity) > 0.05 + 1e-9 and round(pct, 1) != round(sparsity, 1):
            raise BenchError(f"No IMP level leaves {sparsity}% of weights; reachable: {reachable}.")
        return lvl
    if level is not None:
        if not 0 <= level < len(table):
            raise BenchError(f"Level {level} is out of range; reachable: {reachable}.")
        return level
    return default


@dataclass
class Setup:
    """What every command resolves before training: the experiment, its data on the device, the level."""

    experiment: Experiment
    env: Env
    level: int
    table: list[tuple[int, float]]

    @property
    def percent_remaining(self) -> float:
        return self.table[self.level][1]


def prepare(preset: Preset, *, seeds: int, level: int | None = None, sparsity: float | None = None,
            device: str = "auto", cache: Path, data_dir: Path | None = None, download: bool = False,
            progress: ProgressFactory = _no_progress, checkpoint_every: int | None = None,
            experiment: Experiment | None = None, group_size: int | None = None,
            compile: bool = False) -> Setup:
    if seeds < 1:
        raise BenchError("--seeds must be at least 1.")
    exp = experiment or preset.experiment
    dev = resolve_device(device)
    data = load_dataset(exp.data, data_dir or cache / "data", dev, download)
    table = levels_table(exp, data.in_channels, data.num_classes)
    lvl = resolve_level(table, level, sparsity, min(preset.level, exp.prune.levels))
    env = Env(cache=cache, device=dev, data=data, progress=progress, checkpoint_every=checkpoint_every)
    if group_size is not None:
        env.group_size = group_size
    env.compile = compile
    return Setup(exp, env, lvl, table)


def environment(device: torch.device) -> dict[str, str]:
    """Versions and hardware, stored with every result."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {"bench_version": bench.__version__, "torch_version": torch.__version__,
            "python_version": platform.python_version(), "platform": sys.platform, "device": str(device),
            "device_name": name}


@dataclass
class Outcome:
    preset: str
    experiment: Experiment
    level: int
    density: float
    perturbation: Registered
    params: dict[str, Any]
    records: list[dict] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def summary(self, key: str) -> Summary:
        return summarize_records(self.records, key)


def summarize_records(records: list[dict], key: str) -> Summary:
    """n, mean and 95% interval over seeds of ``drop`` or of one accuracy (dense, ticket, perturbed, ...)."""
    return summarize([r[key] if key == "drop" else r["accuracy"][key] for r in records])


def result_path(root: Path, record: dict, name: str | None = None) -> Path:
    """Where a result file lives: one per (config, level, perturbation, params, perturbation seed, seed)."""
    pert = record["perturbation"]
    key = f"{name or pert['name']}-{digest(pert['params'], 8)}-p{pert['seed']}"
    return root / record["config_hash"] / f"level-{record['level']}" / key / f"seed-{record['seed']}.json"


def run_perturbation(preset: Preset, perturbation: str, raw_params: dict[str, str], **kwargs: Any) -> Outcome:
    """One perturbation end to end (see :func:`run_perturbations`)."""
    return run_perturbations(preset, [(perturbation, raw_params)], **kwargs)[0]


def run_perturbations(preset: Preset, requests: list[tuple[str, dict[str, str]]], *, seeds: int,
                      level: int | None = None, sparsity: float | None = None, device: str = "auto",
                      cache: Path, data_dir: Path | None = None, download: bool = False,
                      perturbation_seed: int = 0, progress: ProgressFactory = _no_progress,
                      checkpoint_every: int | None = None, plugins: Plugins | None = None,
                      experiment: Experiment | None = None, group_size: int = 16,
                      compile: bool = False) -> list[Outcome]:
    """Several perturbations at one level, each over ``seeds`` replicates, sharing trunk and IMP levels.

    Each stage trains its replicates together as fused groups of up to ``group_size``.
    """
    plugins = plugins or default_plugins()
    chosen = []
    for name, raw in requests:
        registered = plugins.perturbation(name)
        chosen.append((registered, resolve_params(registered.perturbation, raw)))
    setup = prepare(preset, seeds=seeds, level=level, sparsity=sparsity, device=device, cache=cache,
                    data_dir=data_dir, download=download, progress=progress, checkpoint_every=checkpoint_every,
                    experiment=experiment, group_size=group_size, compile=compile)
    exp, env, lvl = setup.experiment, setup.env, setup.level
    reps = [Replicate(exp, seed, env) for seed in range(seeds)]
    # stage by stage across replicates, so each stage's replicates train together as one fused model
    for level_ in range(lvl + 1):
        execute([rep.level_job(level_) for rep in reps], env)
    # Each perturbation's branches train together like its tickets did (same seeds, same group), so a
    # ticket and its branch follow the same numerical path; early training amplifies any rounding
    # difference (docs/harness.md), and then identity would no longer drop exactly 0.
    for registered, params in chosen:
        for group in training_groups(reps, lvl):
            execute([rep.branch_job(registered, params, lvl, perturbation_seed) for rep in group], env)
    outcomes = []
    for registered, params in chosen:
        out = Outcome(preset.name, exp, lvl, setup.percent_remaining, registered, params, log=env.log)
        out.records = [_record(preset, rep, registered, params, lvl, perturbation_seed) for rep in reps]
        for record in out.records:
            save_json(result_path(cache / "results", record), record)
        outcomes.append(out)
    return outcomes


def base_record(preset: Preset, rep: Replicate, level: int) -> dict:
    """The fields every stored result shares: where it comes from and what produced it."""
    return {
        "schema_version": SCHEMA_VERSION,
        "preset": preset.name,
        "config_hash": rep.hash,
        "config": full(rep.exp),
        "seed": rep.seed,
        "level": level,
        "density": rep.record(level).get("sparsity", {}).get("density", 1.0),
        "steps": rep.T,
        "rewind_step": rep.k,
        "environment": environment(rep.env.device),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _record(preset: Preset, rep: Replicate, registered: Registered, params: dict[str, Any], lvl: int,
            perturbation_seed: int) -> dict:
    """The stored result of one (configuration, perturbation, parameters, seed)."""
    dense, ticket = rep.record(0), rep.record(lvl)
    branch = rep.branch_record(registered.perturbation.name, params, lvl, perturbation_seed)
    groups = {"ticket": ticket.get("trained_with_seeds"), "branch": branch.get("trained_with_seeds")}
    return base_record(preset, rep, lvl) | {
        "perturbation": {
            "name": registered.perturbation.name, "description": registered.perturbation.description,
            "params": params, "seed": perturbation_seed,
            "generator_seed": branch["generator_seed"], "plugin": registered.plugin.name,
            "distribution": registered.plugin.dist, "version": registered.plugin.version,
        },
        "accuracy": {"dense": dense["accuracy"], "ticket": ticket["accuracy"], "perturbed": branch["accuracy"]},
        "drop": ticket["accuracy"] - branch["accuracy"],
        "effective_std": branch["effective_std"],
        "relative_change": branch["relative_change"],
        "timings": {"trunk_s": dense["seconds"], "ticket_s": ticket["seconds"], "branch_s": branch["seconds"],
                    "replicas_trained_together": branch.get("replicas_trained_together", 1)},
    } | ({"trained_with_seeds": groups} if None not in groups.values() else {})  # absent in older caches
