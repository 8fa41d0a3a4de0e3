"""``bench pretrain`` without the CLI: the normal ticket and its pre-trained variant for every seed,
stored as result records that rank on the leaderboard next to the perturbations.

A pre-training record is a perturbation record (same schema, same grouping) with

* ``kind``: ``"pretraining"`` (perturbation records may carry ``"perturbation"`` or nothing);
* ``perturbation.name``: ``"pretrain:<name>"``, ``perturbation.params``: its parameters with ``steps``;
  ``perturbation.seed``: the pre-training seed, ``generator_seed``: the seed derived from it;
* ``pretraining``: ``{"name", "steps" (iterations), "params", "dense_accuracy", "rewind_point_accuracy",
  "task_accuracy", "task_chance", "task_examples"}``: the pre-trained network's accuracy on its own changed
  task, measured on the training examples without augmentation (``task_examples`` of them; a random rotation
  each, drawn from a seeded generator), and the best constant prediction's accuracy on the same labels;
* ``accuracy.perturbed``: the pre-trained variant's ticket, ``accuracy.pretrained_dense``: its dense network;
  ``validation_accuracy`` the same four on the validation split, where the data has one;
* ``effective_std`` / ``relative_change``: the pre-trained rewind point against the normal W_k over the
  variant's surviving weights, measured as for a perturbation;
* ``timings.pretrain_s`` and ``timings.pretrained_trunk_s`` besides the usual ones.

The harness side of the pre-training contract in ``bench.pretraining``: the checked stream the
pre-training reads, the variant replicate whose rewind point it produces, and the run over seeds.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn

from bench import models, paths
from bench.cache import load_json, load_tensors, save_json, save_tensors
from bench.config import Experiment, parse_step
from bench.data import BatchStream, Dataset
from bench.errors import BenchError, PluginError
from bench.execute import Env, Job
from bench.experiments.parallel import train_groups_side_by_side
from bench.experiments.records import Outcome, base_record, plugin_fields, plugin_trace, store
from bench.experiments.setup import RunOptions, prepare
from bench.perturbation import change_size
from bench.plugins import Plugins, RegisteredPretraining, default_plugins
from bench.presets import Preset
from bench.presets import pretrain_defaults
from bench.pretraining import LR, SCHEDULE, STEPS, WARMUP, PretrainContext, PretrainSchedule, Task, resolve, spatial_dims
from bench.seeding import derive_seed, generator
from bench.stages import Replicate, train_chain
from bench.training import Trainer, evaluate, run


# -- the stream the pre-training reads -------------------------------------------------------------
class TaskStream:
    """A BatchStream over the task's data, with the task's per-batch transform and its checks."""

    def __init__(self, base: BatchStream, task: Task, outputs: int, who: str, seed: int):
        self.base, self.task, self.outputs, self.who, self.seed = base, task, outputs, who, seed
        self._checked = False

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.base.batch(step)
        if self.task.batch is None:
            return x, y
        shape = x.shape
        try:
            x, y = self.task.batch(x, y, generator(self.seed, "batch", step))
        except BenchError:
            raise
        except Exception as exc:  # a plugin bug must name the plugin
            raise PluginError(f"{self.who} failed in its batch transform: {type(exc).__name__}: {exc}") from exc
        if x.shape != shape or y.shape != shape[:1]:
            raise PluginError(f"{self.who} returned a batch shaped {tuple(x.shape)} / {tuple(y.shape)}; expected "
                              f"{tuple(shape)} / {tuple(shape[:1])}.")
        if not self._checked:  # the value checks synchronise the device: once is enough
            _check_labels(y, self.outputs, self.who)
            self._checked = True
        return x, y


def _check_labels(y: torch.Tensor, outputs: int, who: str) -> None:
    if y.dtype != torch.long:
        raise PluginError(f"{who} produced labels of dtype {y.dtype}; expected torch.long.")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= outputs):
        raise PluginError(f"{who} produced labels outside 0..{outputs - 1}.")


def task_data(data: Dataset, task: Task, outputs: int, who: str) -> Dataset:
    """The dataset the pre-training reads: the real one with the task's replacements, checked."""
    x, y = data.x_train, data.y_train
    if task.x_train is not None:
        if task.x_train.shape != x.shape or not task.x_train.is_floating_point():
            raise PluginError(f"{who} returned x_train shaped {tuple(task.x_train.shape)} ({task.x_train.dtype}); "
                              f"expected float inputs shaped {tuple(x.shape)}.")
        x = task.x_train.to(x.device, x.dtype)
    if task.y_train is not None:
        if task.y_train.shape != y.shape:
            raise PluginError(f"{who} returned y_train shaped {tuple(task.y_train.shape)}; expected {tuple(y.shape)}.")
        _check_labels(task.y_train, outputs, who)
        y = task.y_train.to(y.device)
    return Dataset(x, y, data.x_test, data.y_test, data.num_classes, data.augment, data.pad_value)


@torch.no_grad()
def task_accuracy(model: nn.Module, data: Dataset, task: Task, outputs: int, seed: int,
                  chunk: int = 2000) -> dict[str, float | int]:
    """The model's accuracy on the changed task over the task's training examples, unaugmented (the task's
    per-batch transform applied chunk by chunk with a seeded generator), and the accuracy of the best constant
    prediction on the same labels (the largest class share): what a network that learned nothing reaches."""
    model.eval()
    correct, counts = 0, torch.zeros(outputs, dtype=torch.long)
    n = data.x_train.shape[0]
    for i in range(0, n, chunk):
        x, y = data.x_train[i:i + chunk], data.y_train[i:i + chunk]
        if task.batch is not None:
            x, y = task.batch(x, y, generator(seed, "task-accuracy", i))
        correct += int((model(x).argmax(-1) == y).sum())
        counts += torch.bincount(y.cpu(), minlength=outputs)[:outputs]
    return {"task_accuracy": 100.0 * correct / n, "task_chance": 100.0 * int(counts.max()) / n, "task_examples": n}


def classifier(model: nn.Module) -> tuple[str, nn.Linear]:
    """The model's output layer: its last linear module."""
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise BenchError("The model has no linear output layer to swap for a pre-training head.")
    return found[-1]


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


# -- the trunk variant -----------------------------------------------------------------------------
class PretrainedReplicate(Replicate):
    """A replicate whose rewind point comes from pre-training; it caches under the normal replicate.

    Layout: ``seed-<s>/pretrain/<name>-<params digest>-p<seed>/`` holding ``trunk/`` (w0.pt,
    wk.pt = the pre-trained state, final.pt, done.json) and ``level-L/`` exactly like a normal
    replicate, so the inherited IMP stages rewind to the pre-trained state.
    """

    def __init__(self, experiment: Experiment, seed: int, env: Env, registered: RegisteredPretraining,
                 params: dict[str, Any], pretrain_seed: int = 0):
        super().__init__(experiment, seed, env)
        self.registered, self.params, self.pretrain_seed = registered, dict(params), pretrain_seed
        self.name = registered.pretraining.name
        self.who = f"Pre-training '{self.name}'"
        self.pretrain_steps = parse_step(params[STEPS.name], self.per_epoch)
        if self.pretrain_steps < 1:
            raise BenchError("Pre-training needs at least one iteration: give steps=1it or more.")
        warmup = parse_step(params[WARMUP.name], self.per_epoch)
        if warmup > self.pretrain_steps:
            raise BenchError(f"Pre-training warm-up ({params[WARMUP.name]}) is longer than the pre-training "
                             f"({params[STEPS.name]}); give a shorter warmup=.")
        self.pretrain_schedule = PretrainSchedule(params[LR.name], params[SCHEDULE.name], self.pretrain_steps, warmup)
        self.generator_seed = derive_seed(seed, "pretrain", self.name, pretrain_seed)
        self.root = paths.pretrained_dir(self.root, self.name, params, pretrain_seed)

    # the inherited stages' labels name the variant, so its log lines and progress bars are its own
    def cached_record(self, folder: Path, label: str) -> dict | None:
        return super().cached_record(folder, self._tag(label))

    def finisher(self, folder: Path, label: str, fields: dict[str, Any]):
        return super().finisher(folder, self._tag(label), fields)

    def level_job(self, level: int, rewind: int | None = None) -> Job | None:
        job = super().level_job(level, rewind)
        if job is not None:
            job.label = self._tag(job.label)
        return job

    def _tag(self, label: str) -> str:
        return label if self.name in label else f"{label} (pre-trained: {self.name})"

    def context(self) -> PretrainContext:
        data = self.env.data
        return PretrainContext(data=data, spatial_dims=spatial_dims(data.x_train), num_classes=data.num_classes,
                               params=dict(self.params), generator=generator(self.generator_seed, "data"),
                               seed=self.generator_seed)

    def task(self) -> Task:
        try:
            task = self.registered.pretraining.prepare(self.context())
        except BenchError:
            raise
        except Exception as exc:
            raise PluginError(f"{self.who} failed in prepare(): {type(exc).__name__}: {exc}") from exc
        if not isinstance(task, Task):
            raise PluginError(f"{self.who} must return a bench.pretraining.Task, got {type(task).__name__}.")
        if task.outputs is not None and (not isinstance(task.outputs, int) or task.outputs < 2):
            raise PluginError(f"{self.who} asked for a head with {task.outputs!r} outputs; it needs at least 2.")
        return task

    def pretrain(self, model: nn.Module, folder: Path) -> float:
        """Train ``model`` (at W_0) on the changed task; write the state reached to ``folder/wk.pt``."""
        target = folder / paths.WK
        if target.exists():
            return 0.0
        task = self.task()
        outputs = task.outputs or self.env.data.num_classes
        head_name, real_head = classifier(model)
        if task.outputs is not None:
            head = nn.Linear(real_head.in_features, task.outputs)
            with torch.no_grad():  # seeded like every other draw, from the model's own initialiser
                gen = generator(self.generator_seed, "head")
                models.init_tensor(f"{head_name}.weight", head.weight, gen)
                if self.exp.model.fc_bias_init == "pytorch":  # as the real head's bias (OpenLTH's default)
                    bound = 1 / math.sqrt(head.in_features)
                    nn.init.uniform_(head.bias, -bound, bound, generator=gen)
                else:
                    head.bias.zero_()
            _set_module(model, head_name, head.to(self.env.device))
        data = task_data(self.env.data, task, outputs, self.who)
        stream = TaskStream(BatchStream(data, self.exp.train.batch_size, self.seed), task, outputs, self.who,
                            self.generator_seed)
        # its own rate and schedule: the real schedule's milestones are positions in the real run, not in this one
        trainer = Trainer(model, self.exp.train, self.pretrain_schedule)  # type: ignore[arg-type]  # has lr_at, as Schedule
        checkpoint = folder / paths.PRETRAIN_CHECKPOINT
        bar = self.env.progress.start(f"pre-training {self.name} seed {self.seed}", self.pretrain_steps)
        t0 = time.perf_counter()
        identity = {"stages": [paths.stage_id(folder, self.env.cache)], "pretrain": self.name, "seed": self.seed,
                    "end": self.pretrain_steps}
        run(trainer, stream, 0, self.pretrain_steps, checkpoint=checkpoint, checkpoint_every=self.every,
            progress=bar.advance, identity=identity,
            accept=lambda state: None if state.get("identity") == identity else "it belongs to another pre-training")
        seconds = time.perf_counter() - t0
        learned = task_accuracy(model, data, task, outputs, self.generator_seed)
        if task.outputs is not None:
            _set_module(model, head_name, real_head)  # untouched since W_0: it was not in the optimizer
        save_json(folder / paths.PRETRAIN_RECORD, {"steps": self.pretrain_steps, "seconds": seconds,
                                                   "outputs": outputs, "temporary_head": task.outputs is not None,
                                                   **learned})
        save_tensors(target, model.state_dict())  # last: its presence means the pre-training is done
        checkpoint.unlink(missing_ok=True)
        return seconds

    def trunk_job(self) -> Job | None:
        """W_0 -> pre-training -> rewind point (wk.pt); the job is the dense run k -> T on the real task.

        The pre-training itself runs here, one replicate at a time (each has its own task data and
        head); the dense run k -> T is an ordinary job, so replicates still train it fused."""
        folder = self.stage_dir(0)
        label = f"dense after pre-training ({self.name})"
        if self.cached_record(folder, label) is not None:
            return None
        w0 = folder / paths.W0
        if w0.exists():
            model = self.new_model()
            model.load_state_dict(load_tensors(w0, self.env.device))
        else:
            model = self.initial_model()  # exactly the normal trunk's W_0
            save_tensors(w0, model.state_dict())
        self.pretrain(model, folder)
        pre = load_json(folder / paths.PRETRAIN_RECORD)
        wk = self.state(paths.WK)
        model = self.new_model()
        model.load_state_dict(wk)
        fields = {"stage": "trunk", "steps": self.T, "rewind_step": self.k, "pretraining": self.name,
                  "params": self.params, "pretrain_seed": self.pretrain_seed, "generator_seed": self.generator_seed,
                  "pretrain_steps": self.pretrain_steps, "pretrain_seconds": pre["seconds"],
                  "rewind_point_accuracy": evaluate(model, self.env.data.x_test, self.env.data.y_test),
                  **{k: pre[k] for k in ("task_accuracy", "task_chance", "task_examples") if k in pre}}
        return Job(self, label, folder, self.k, wk, None, self.finisher(folder, label, fields))


def run_pretraining(preset: Preset, name: str, raw_params: dict[str, str], options: RunOptions, *, seeds: int | Sequence[int],
                    level: int | None = None, sparsity: float | None = None, pretrain_seed: int = 0,
                    plugins: Plugins | None = None, experiment: Experiment | None = None) -> Outcome:
    """The normal ticket and its pre-trained variant for every seed, stored as result records."""
    plugins = plugins or default_plugins()
    registered = plugins.pretraining(name)
    params = resolve(registered.pretraining, raw_params, pretrain_defaults(preset, experiment or preset.experiment))
    for key in (STEPS.name, WARMUP.name):  # a malformed step string fails before any data is loaded
        parse_step(params[key], 1)
    setup = prepare(preset, options, seeds=seeds, level=level, sparsity=sparsity, experiment=experiment)
    exp, env, lvl = setup.experiment, setup.env, setup.level
    out = Outcome(preset.name, exp, lvl, setup.percent_remaining, registered.label, registered.plugin, params,
                  events=env.events)
    # a task that refuses this dataset says so before anything trains
    PretrainedReplicate(exp, setup.seeds[0], env, registered, params, pretrain_seed).task()

    def train(group: list[int], on: Env) -> tuple[list[Replicate], list[PretrainedReplicate]]:
        normal = [Replicate(exp, seed, on) for seed in group]
        variants = [PretrainedReplicate(exp, seed, on, registered, params, pretrain_seed) for seed in group]
        # stage by stage across seeds (the harness trains a stage's replicates together); the variants
        # separately, since their dense run starts at k like the normal levels but has no mask
        train_chain(normal, lvl, on)
        train_chain(variants, lvl, on)
        return normal, variants

    train_groups_side_by_side(train, setup.seeds, env, options.workers)
    normal, variants = train(setup.seeds, env)  # after parallel groups: reads what they trained
    for rep, var in zip(normal, variants):
        dense, ticket = rep.trunk_record(), rep.record(lvl)
        vdense, vticket = var.trunk_record(), var.record(lvl)
        std, relative = change_size(rep.prunable(rep.state(paths.WK)), var.prunable(var.state(paths.WK)),
                                    var.masks(lvl))
        pre = load_json(var.stage_dir(0) / paths.PRETRAIN_RECORD)
        validation = {"dense": dense.get("val_accuracy"), "ticket": ticket.get("val_accuracy"),
                      "perturbed": vticket.get("val_accuracy"), "pretrained_dense": vdense.get("val_accuracy")}
        record = base_record(preset, rep, lvl) | {
            "kind": "pretraining",
            "perturbation": {
                "name": registered.label, "description": registered.pretraining.description, "params": params,
                "seed": pretrain_seed, "generator_seed": var.generator_seed, **plugin_fields(registered.plugin),
            },
            "pretraining": {
                "name": registered.pretraining.name, "steps": var.pretrain_steps, "params": params,
                "dense_accuracy": vdense["accuracy"], "rewind_point_accuracy": vdense["rewind_point_accuracy"],
                **{k: pre[k] for k in ("task_accuracy", "task_chance", "task_examples") if k in pre},
            },
            "accuracy": {"dense": dense["accuracy"], "ticket": ticket["accuracy"], "perturbed": vticket["accuracy"],
                         "pretrained_dense": vdense["accuracy"]},
            # chosen on validation, reported on test, as a perturbation record (None: the data has no such split)
            **({"validation_accuracy": validation} if None not in validation.values() else {}),
            "drop": ticket["accuracy"] - vticket["accuracy"],
            "effective_std": std,
            "relative_change": relative,
            "timings": {"trunk_s": dense["seconds"], "ticket_s": ticket["seconds"], "branch_s": vticket["seconds"],
                        "pretrain_s": pre["seconds"], "pretrained_trunk_s": vdense["seconds"]},
        }
        record["fingerprints"]["pretrained"] = var.fingerprints(lvl)  # the variant's own rewind point and ticket
        # the seed groups fix the rounding path: what `bench verify` needs to re-run this result exactly
        record["trained_with_seeds"] = {"trunk": dense.get("trained_with_seeds"),
                                        "ticket": ticket.get("trained_with_seeds"),
                                        "branch": vticket.get("trained_with_seeds")}
        record["plugins"] = plugin_trace(plugins)
        # the rank name has a ':', which is not valid in every file system's folder names
        folder = f"pretrain-{registered.pretraining.name}"
        out.records.append(store(paths.result_file(paths.results_dir(options.cache), record, folder), record))
    return out
