"""Pre-training plugins: produce the rewind point by training on a changed task (paper, Section 5).

A pre-training is any object with

* ``name``: kebab-case, unique across loaded plugins (its results rank as ``pretrain:<name>``);
* ``description``: one line shown by ``bench pretrainings``;
* ``params``: a sequence of :class:`bench.perturbation.Param` (may be empty). The harness adds the
  pre-training's own hyperparameters to every one (``HARNESS_PARAMS``): ``steps`` (the length as a
  step string, e.g. ``200it`` or ``2ep``), ``lr`` (the peak learning rate), ``warmup`` (a linear
  warm-up from 0 over this many steps, a step string) and ``schedule`` (``constant``, ``cosine``
  to 0 at the end, or ``step``: x0.1 at half and at three quarters of the length). Left out, each
  is the preset's (``pretrain_steps``, ``pretrain_lr``, ... in bench.presets). They are recorded in
  the entry's params, so they are part of its cache folder and its leaderboard row;
* ``prepare(ctx)``: returns a :class:`Task` describing the changed task, given a :class:`PretrainContext`.

The protocol (the harness's, not the plugin's): from the replicate's own W_0, train ``steps``
iterations on the changed task (a fresh optimizer of the preset's kind, momentum and weight decay;
the learning rate ``lr`` after ``warmup``, shaped by ``schedule``; the replicate's data order). Its
own accuracy on the changed task is then measured on the training examples without augmentation
(``task_accuracy``, beside the best constant prediction's, ``task_chance``). The state reached (with the real head of W_0 put back if the task
used its own head) replaces W_k: dense training continues from it on the real task from
iteration k to T, IMP prunes that network's end weights, and every level rewinds to it and
retrains k -> T. The entry's drop is the normal ticket's accuracy minus this ticket's, paired by
replicate seed at the same level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

from bench.errors import BenchError
from bench.perturbation import Param, resolve_params

if TYPE_CHECKING:  # torch loads in the functions that compute: listing plugins needs none
    import torch
    import torch.nn.functional as F

PREFIX = "pretrain:"  # results rank under this prefix so they never collide with a perturbation's name
STEPS = Param("steps", str, "10ep", "pre-training length as a step string: '200it' or '2ep' (default: the preset's)")
LR = Param("lr", float, 0.1, "pre-training peak learning rate (default: the preset's pretrain_lr)")
WARMUP = Param("warmup", str, "0it", "linear learning-rate warm-up from 0, a step string (default: the preset's)")
SCHEDULE = Param("schedule", str, "constant",
                 "constant, cosine (to 0 at the end) or step (x0.1 at 1/2 and 3/4) (default: the preset's)")
HARNESS_PARAMS = (STEPS, LR, WARMUP, SCHEDULE)  # added to every pre-training; no task may declare them
SCHEDULES = ("constant", "cosine", "step")

BatchFn = Callable[["torch.Tensor", "torch.Tensor", "torch.Generator"], "tuple[torch.Tensor, torch.Tensor]"]


class TaskData(Protocol):
    """The real task's data as a pre-training sees it (the harness passes its ``bench.data.Dataset``; the
    contract names only what a plugin may read, so it does not depend on the harness)."""

    x_train: torch.Tensor  # (N, C, L) signals or (N, C, H, W) images
    y_train: torch.Tensor  # (N,) class labels, torch.long
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    augment: bool  # the harness crops and flips each batch (then a transform after it belongs in ``batch``)


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

    data: TaskData
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


# -- parameters ------------------------------------------------------------------------------------
def declared_params(pretraining: Any) -> tuple[Param, ...]:
    """The task's own parameters plus the hyperparameters the harness adds to every pre-training."""
    return (*getattr(pretraining, "params", ()), *HARNESS_PARAMS)


def resolve(pretraining: Any, raw: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The parameters with defaults filled in: ``defaults`` (the preset's hyperparameters) before the declared
    ones. The learning rate, warm-up and schedule are checked here, before anything trains."""
    raw = {**(defaults or {}), **raw}
    params = resolve_params(pretraining, raw, kind="pre-training", declared=declared_params(pretraining))
    if not params[LR.name] > 0:
        raise BenchError(f"Pre-training lr must be positive, got {params[LR.name]}.")
    if params[SCHEDULE.name] not in SCHEDULES:
        raise BenchError(f"Unknown pre-training schedule '{params[SCHEDULE.name]}'. Known: {', '.join(SCHEDULES)}.")
    return params


def legacy_params(params: Mapping[str, Any], train_lr: float) -> dict[str, Any]:
    """A record's params as trained: one written before the hyperparameters existed pre-trained at the training
    rate ``train_lr`` held constant, with no warm-up (bench verify re-runs it so)."""
    old = {LR.name: train_lr, WARMUP.name: "0it", SCHEDULE.name: "constant"}
    return {**params, **{k: v for k, v in old.items() if k not in params}}


@dataclass(frozen=True)
class PretrainSchedule:
    """The pre-training's learning rate at a step: ``lr`` shaped by ``kind`` over ``steps``, times the linear
    warm-up ``min(1, step / warmup)`` (the rule of bench.training.Schedule, OpenLTH's)."""

    lr: float
    kind: str
    steps: int
    warmup: int = 0

    def lr_at(self, step: int) -> float:
        lr = self.lr
        if self.kind == "cosine":
            lr *= 0.5 * (1 + math.cos(math.pi * min(step, self.steps) / self.steps))
        elif self.kind == "step":
            lr *= 0.1 ** ((2 * step >= self.steps) + (4 * step >= 3 * self.steps))
        return lr * min(1.0, step / self.warmup) if self.warmup else lr


# -- transforms shared by the built-ins and usable by outside plugins ------------------------------
def spatial_dims(x: torch.Tensor) -> int:
    return x.dim() - 2


def blur(x: torch.Tensor, factor: int, chunk: int = 8192) -> torch.Tensor:
    """Average-pool by ``factor`` along every spatial axis, then interpolate back (linear / bilinear).

    Factor 1 returns ``x`` itself. Averaging and linear interpolation both have weights summing
    to one, so blurring commutes with the per-channel normalisation of the inputs.
    """
    import torch
    import torch.nn.functional as F

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
    import torch

    labels = labels.to(x.device)
    if group == "rot90":
        variants = [torch.rot90(x, q, dims=(-2, -1)) for q in range(4)]
    else:
        rev = x.flip(-1)
        variants = [x, rev, -rev, -x]
    stacked = torch.stack(variants)  # (4, N, ...): pick one per example without a Python loop
    return stacked[labels, torch.arange(x.shape[0], device=x.device)]
