"""``bench pretrain`` without the CLI: the normal ticket and its pre-trained variant for every seed,
stored as result records that rank on the leaderboard next to the perturbations.

A pre-training record is a perturbation record (same schema, same grouping) with

* ``kind``: ``"pretraining"`` (perturbation records may carry ``"perturbation"`` or nothing);
* ``perturbation.name``: ``"pretrain:<name>"``, ``perturbation.params``: its parameters with ``steps``;
  ``perturbation.seed``: the pre-training seed, ``generator_seed``: the seed derived from it;
* ``pretraining``: ``{"name", "steps" (iterations), "params", "dense_accuracy", "rewind_point_accuracy"}``;
* ``accuracy.perturbed``: the pre-trained variant's ticket, ``accuracy.pretrained_dense``: its dense network;
* ``effective_std`` / ``relative_change``: the pre-trained rewind point against the normal W_k over the
  variant's surviving weights, measured as for a perturbation;
* ``timings.pretrain_s`` and ``timings.pretrained_trunk_s`` besides the usual ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cache import load_json, save_json
from bench.config import Experiment, parse_step
from bench.plugins import Plugins, default_plugins
from bench.presets import Preset
from bench.pretraining import (STEPS, PretrainedReplicate, RegisteredPretraining, get_pretraining, resolve)
from bench.perturbation import change_size
from bench.runner import base_record, prepare, summarize_records
from bench.runner import result_path as runner_result_path
from bench.stages import ProgressFactory, Replicate, _no_progress, execute
from bench.stats import Summary


@dataclass
class PretrainOutcome:
    preset: str
    experiment: Experiment
    level: int
    density: float  # percent remaining
    registered: RegisteredPretraining
    params: dict[str, Any]
    pretrain_seed: int
    records: list[dict] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def summary(self, key: str) -> Summary:
        return summarize_records(self.records, key)


def result_path(root: Path, record: dict) -> Path:
    """Beside the perturbations' results; the folder name has no ':' so it is valid everywhere."""
    return runner_result_path(root, record, f"pretrain-{record['pretraining']['name']}")


def run_pretraining(preset: Preset, name: str, raw_params: dict[str, str], *, seeds: int,
                    level: int | None = None, sparsity: float | None = None, device: str = "auto",
                    cache: Path, data_dir: Path | None = None, download: bool = False, pretrain_seed: int = 0,
                    progress: ProgressFactory = _no_progress, checkpoint_every: int | None = None,
                    plugins: Plugins | None = None, experiment: Experiment | None = None,
                    group_size: int | None = None) -> PretrainOutcome:
    plugins = plugins or default_plugins()
    registered = get_pretraining(plugins, name)
    params = resolve(registered.pretraining, raw_params, preset.pretrain_steps)
    parse_step(params[STEPS.name], 1)  # a malformed step string fails before any data is loaded
    setup = prepare(preset, seeds=seeds, level=level, sparsity=sparsity, device=device, cache=cache,
                    data_dir=data_dir, download=download, progress=progress, checkpoint_every=checkpoint_every,
                    experiment=experiment, group_size=group_size)
    exp, env, lvl = setup.experiment, setup.env, setup.level
    out = PretrainOutcome(preset.name, exp, lvl, setup.percent_remaining, registered, params, pretrain_seed,
                          log=env.log)
    normal = [Replicate(exp, seed, env) for seed in range(seeds)]
    variants = [PretrainedReplicate(exp, seed, env, registered, params, pretrain_seed) for seed in range(seeds)]
    variants[0].task()  # a task that refuses this dataset says so before anything trains
    # stage by stage across seeds (the harness trains a stage's replicates together); the variants
    # separately, since their dense run starts at k like the normal levels but has no mask
    for stage in range(lvl + 1):
        execute([rep.level_job(stage) for rep in normal], env)
    for stage in range(lvl + 1):
        execute([rep.level_job(stage) for rep in variants], env)
    for rep, var in zip(normal, variants):
        dense, ticket = rep.record(0), rep.record(lvl)
        vdense, vticket = var.record(0), var.record(lvl)
        std, relative = change_size(rep.prunable(rep.state("wk.pt")), var.prunable(var.state("wk.pt")),
                                    var.masks(lvl))
        pre = load_json(var.root / "trunk" / "pretrain.json")
        record = base_record(preset, rep, lvl) | {
            "kind": "pretraining",
            "perturbation": {
                "name": registered.label, "description": registered.pretraining.description, "params": params,
                "seed": pretrain_seed, "generator_seed": var.generator_seed, "plugin": registered.plugin.name,
                "distribution": registered.plugin.dist, "version": registered.plugin.version,
            },
            "pretraining": {
                "name": registered.pretraining.name, "steps": var.pretrain_steps, "params": params,
                "dense_accuracy": vdense["accuracy"], "rewind_point_accuracy": vdense["rewind_point_accuracy"],
            },
            "accuracy": {"dense": dense["accuracy"], "ticket": ticket["accuracy"], "perturbed": vticket["accuracy"],
                         "pretrained_dense": vdense["accuracy"]},
            "drop": ticket["accuracy"] - vticket["accuracy"],
            "effective_std": std,
            "relative_change": relative,
            "timings": {"trunk_s": dense["seconds"], "ticket_s": ticket["seconds"], "branch_s": vticket["seconds"],
                        "pretrain_s": pre["seconds"], "pretrained_trunk_s": vdense["seconds"]},
        }
        save_json(result_path(cache / "results", record), record)
        out.records.append(record)
    return out
