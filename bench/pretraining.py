"""Pre-training plugins: produce the rewind point by training on a changed task (paper, Section 5).

A pre-training is any object with

* ``name``: kebab-case, unique across loaded plugins (its results rank as ``pretrain:<name>``);
* ``description``: one line shown by ``bench pretrainings``;
* ``params``: a sequence of :class:`bench.perturbation.Param` (may be empty). The harness adds
  ``steps`` (the pre-training length as a step string, e.g. ``200it`` or ``2ep``) to every one;
  left out, it is the preset's ``pretrain_steps`` (bench.presets);
* ``prepare(ctx)``: returns a :class:`Task` describing the changed task, given a :class:`PretrainContext`.

The protocol (the harness's, not the plugin's): from the replicate's own W_0, train ``steps``
iterations on the changed task (fresh SGD, constant learning rate = the preset's initial rate,
the replicate's data order). The state reached (with the real head of W_0 put back if the task
used its own head) replaces W_k: dense training continues from it on the real task from
iteration k to T, IMP prunes that network's end weights, and every level rewinds to it and
retrains k -> T. The entry's drop is the normal ticket's accuracy minus this ticket's, paired by
replicate seed at the same level.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench import models
from bench.cache import load_json, load_tensors, save_json, save_tensors
from bench.config import Experiment, digest, parse_step
from bench.data import BatchStream, Dataset
from bench.errors import BenchError, PluginError, unknown
from bench.perturbation import Param, resolve_params
from bench.plugins import PluginInfo, Plugins
from bench.seeding import derive_seed, generator
from bench.stages import Env, Job, Replicate
from bench.training import Schedule, Trainer, evaluate, run

PREFIX = "pretrain:"  # results rank under this prefix so they never collide with a perturbation's name
STEPS = Param("steps", str, "10ep", "pre-training length as a step string: '200it' or '2ep' (default: the preset's)")

BatchFn = Callable[[torch.Tensor, torch.Tensor, torch.Generator], "tuple[torch.Tensor, torch.Tensor]"]


@dataclass
class PretrainContext:
    """What ``prepare`` may read.

    data:         the real training and test tensors on the run's device; never modify them.
    spatial_dims: 1 for signals (N, C, L) such as MNIST-1D, 2 for images (N, C, H, W).
    num_classes:  classes of the real task.
    params:       the pre-training's parameters, converted to their declared types (``steps`` included).
    generator:    a seeded CPU generator for whole-dataset randomness (e.g. random labels).
    seed:         the seed ``generator`` was made from.
    """

    data: Dataset
    spatial_dims: int
    num_classes: int
    params: dict[str, Any]
    generator: torch.Generator
    seed: int


@dataclass
class Task:
    """The changed task. Every field is optional; leaving all of them out is the real task.

    outputs: a temporary head with this many outputs is trained instead of the real one, which
             is put back (at W_0) afterwards; None keeps and trains the real head.
    x_train: replacement training inputs, the shape of the real ones (e.g. blurred), applied
             before the usual augmentation (for a transform that must follow augmentation, as
             blur does on CIFAR, use ``batch``).
    y_train: replacement training labels, one per example (e.g. fixed random labels).
    batch:   ``batch(x, y, gen) -> (x, y)``, applied to each batch after augmentation; ``gen`` is
             a CPU generator seeded from (replicate, pre-training seed, step).
    """

    outputs: int | None = None
    x_train: torch.Tensor | None = None
    y_train: torch.Tensor | None = None
    batch: BatchFn | None = None


class Pretraining(Protocol):
    name: str
    description: str
    params: Sequence[Param]

    def prepare(self, ctx: PretrainContext) -> Task: ...


@dataclass(frozen=True)
class RegisteredPretraining:
    pretraining: Any
    plugin: PluginInfo

    @property
    def label(self) -> str:
        return PREFIX + self.pretraining.name


# -- discovery -------------------------------------------------------------------------------------
def pretrainings(plugins: Plugins) -> dict[str, RegisteredPretraining]:
    """Every registered pre-training by name; a name registered twice is an error naming both."""
    found = plugins.collect("register_pretraining", "pre-training", ("name", "description", "prepare"))
    for item, _ in found.values():
        if any(p.name == STEPS.name for p in getattr(item, "params", ())):
            raise PluginError(f"Pre-training '{item.name}' declares 'steps', which the harness provides.")
    return {name: RegisteredPretraining(item, info) for name, (item, info) in found.items()}


def get_pretraining(plugins: Plugins, name: str) -> RegisteredPretraining:
    known = pretrainings(plugins)
    bare = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if bare not in known:
        raise unknown("pre-training", bare, list(known))
    return known[bare]


def declared_params(pretraining: Any) -> tuple[Param, ...]:
    return (*getattr(pretraining, "params", ()), STEPS)


class _Named:
    """Lets ``resolve_params`` (written for perturbations) check a pre-training's parameters."""

    def __init__(self, pretraining: Any):
        self.name = PREFIX + pretraining.name
        self.params = declared_params(pretraining)


def resolve(pretraining: Any, raw: Mapping[str, Any], default_steps: str | None = None) -> dict[str, Any]:
    """The parameters with defaults filled in; ``steps`` defaults to ``default_steps`` (the preset's) if given."""
    if default_steps is not None and STEPS.name not in raw:
        raw = {**raw, STEPS.name: default_steps}
    return resolve_params(_Named(pretraining), raw)


# -- transforms shared by the built-ins and usable by outside plugins ------------------------------
def spatial_dims(x: torch.Tensor) -> int:
    return x.dim() - 2


def blur(x: torch.Tensor, factor: int, chunk: int = 8192) -> torch.Tensor:
    """Average-pool by ``factor`` along every spatial axis, then interpolate back (linear / bilinear).

    Factor 1 returns ``x`` itself. Averaging and linear interpolation both have weights summing
    to one, so blurring commutes with the per-channel normalisation of the inputs.
    """
    if factor == 1:
        return x
    dims = spatial_dims(x)
    size = tuple(x.shape[2:])
    small = tuple(max(1, math.ceil(s / factor)) for s in size)
    pool = F.adaptive_avg_pool1d if dims == 1 else F.adaptive_avg_pool2d
    mode = "linear" if dims == 1 else "bilinear"
    parts = [F.interpolate(pool(part, small), size=size, mode=mode, align_corners=False)
             for part in x.split(chunk)]  # in chunks: a whole CIFAR copy at once doubles peak memory
    return torch.cat(parts)


def check_blur(x: torch.Tensor, factor: int) -> None:
    if factor < 1:
        raise BenchError(f"Blur factor must be at least 1, got {factor}.")
    shortest = min(x.shape[2:])
    if shortest // factor < 2:
        raise BenchError(f"Blur factor {factor} leaves fewer than 2 samples of a length-{shortest} input, so the "
                         f"blurred input would be constant; use a factor of at most {shortest // 2}.")


ROTATION_GROUPS = ("auto", "rot90", "flips")


def rotation_group(x: torch.Tensor, group: str) -> str:
    """The transform set used for ``group`` on inputs shaped like ``x``, or a one-line refusal."""
    dims = spatial_dims(x)
    if group not in ROTATION_GROUPS:
        raise BenchError(f"Unknown rotation group '{group}'. Known: {', '.join(ROTATION_GROUPS)}.")
    if dims not in (1, 2):
        raise BenchError(f"Rotation prediction needs signals (N, C, L) or images (N, C, H, W); inputs have "
                         f"{dims} spatial dimensions.")
    if group == "auto":
        group = "rot90" if dims == 2 else "flips"
    if group == "rot90" and dims == 1:
        raise BenchError("A 1D signal has no 90-degree rotation: rotation group 'rot90' needs images; use "
                         "group=flips (identity, reversal, time-and-amplitude reversal, negation) or group=auto.")
    if group == "flips" and dims == 2:
        raise BenchError("Rotation group 'flips' is the 1D analogue for signals; images use the paper's "
                         "group=rot90 (or group=auto).")
    if group == "rot90" and x.shape[-1] != x.shape[-2]:
        raise BenchError(f"A 90-degree rotation changes the shape of a {x.shape[-2]}x{x.shape[-1]} image; rotation "
                         "prediction needs square images.")
    return group


def rotate(x: torch.Tensor, labels: torch.Tensor, group: str) -> torch.Tensor:
    """Example i transformed by element ``labels[i]`` (0..3) of ``group``.

    rot90: rotation by 90 * label degrees (torch.rot90 over the last two axes), exact.
    flips: 0 identity, 1 reversal in time, 2 reversal and negation (the signal's graph turned by
           180 degrees, as label 2 is for images), 3 negation.
    """
    labels = labels.to(x.device)
    if group == "rot90":
        variants = [torch.rot90(x, q, dims=(-2, -1)) for q in range(4)]
    else:
        rev = x.flip(-1)
        variants = [x, rev, -rev, -x]
    stacked = torch.stack(variants)  # (4, N, ...): pick one per example without a Python loop
    return stacked[labels, torch.arange(x.shape[0], device=x.device)]


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
        self.generator_seed = derive_seed(seed, "pretrain", self.name, pretrain_seed)
        self.root = self.root / "pretrain" / f"{self.name}-{digest(params, 8)}-p{pretrain_seed}"

    # the inherited stages' labels name the variant, so its log lines and progress bars are its own
    def _cached(self, folder: Path, label: str) -> dict | None:
        return super()._cached(folder, self._tag(label))

    def _finisher(self, folder: Path, label: str, fields: dict[str, Any]):
        return super()._finisher(folder, self._tag(label), fields)

    def level_job(self, level: int) -> Job | None:
        job = super().level_job(level)
        if job is not None and level > 0:
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
        target = folder / "wk.pt"
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
        # constant rate: the real schedule's milestones are positions in the real run, not in this one
        trainer = Trainer(model, self.exp.train, Schedule(self.exp.train.lr, 1.0, ()))
        checkpoint = folder / "pretrain-checkpoint.pt"
        update = self.env.progress(f"pre-training {self.name} seed {self.seed}", self.pretrain_steps)
        t0 = time.perf_counter()
        run(trainer, stream, 0, self.pretrain_steps, checkpoint=checkpoint, checkpoint_every=self.every,
            progress=update)
        seconds = time.perf_counter() - t0
        if task.outputs is not None:
            _set_module(model, head_name, real_head)  # untouched since W_0: it was not in the optimizer
        save_json(folder / "pretrain.json", {"steps": self.pretrain_steps, "seconds": seconds,
                                             "outputs": outputs, "temporary_head": task.outputs is not None})
        save_tensors(target, model.state_dict())  # last: its presence means the pre-training is done
        checkpoint.unlink(missing_ok=True)
        return seconds

    def trunk_job(self) -> Job | None:
        """W_0 -> pre-training -> rewind point (wk.pt); the job is the dense run k -> T on the real task.

        The pre-training itself runs here, one replicate at a time (each has its own task data and
        head); the dense run k -> T is an ordinary job, so replicates still train it fused."""
        folder = self.root / "trunk"
        label = f"dense after pre-training ({self.name})"
        if self._cached(folder, label) is not None:
            return None
        w0 = folder / "w0.pt"
        if w0.exists():
            model = self.new_model()
            model.load_state_dict(load_tensors(w0, self.env.device))
        else:
            model = self.initial_model()  # exactly the normal trunk's W_0
            save_tensors(w0, model.state_dict())
        self.pretrain(model, folder)
        pre = load_json(folder / "pretrain.json")
        wk = self.state("wk.pt")
        model = self.new_model()
        model.load_state_dict(wk)
        fields = {"stage": "trunk", "steps": self.T, "rewind_step": self.k, "pretraining": self.name,
                  "params": self.params, "pretrain_seed": self.pretrain_seed, "generator_seed": self.generator_seed,
                  "pretrain_steps": self.pretrain_steps, "pretrain_seconds": pre["seconds"],
                  "rewind_point_accuracy": evaluate(model, self.env.data.x_test, self.env.data.y_test)}
        return Job(self, label, folder, self.k, wk, None, self._finisher(folder, label, fields))
