"""Typed experiment descriptions, step strings, and the canonical hash behind the cache key.

The canonical form of an experiment omits every field left at its dataclass
default, so a new field with a no-op default keeps old results addressable.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from bench.errors import BenchError

_STEP = re.compile(r"^\s*(\d+)\s*(it|ep)\s*$")


# the most iterations any step string may name: 16x the paper preset's 160 epochs (62,560 iterations), so a
# typo or a hostile config (999999999it) is refused up front instead of running for months
MAX_STEPS = 1_000_000
# the most replicate seeds one command trains: each is a full dense trunk and IMP chain, the paper reports 5
# and the committed boards 6, so 1000 is far past any real use yet stops `--seeds 100000` from queueing years
MAX_SEEDS = 1000
# replicates trained together as one fused group, unless the preset says otherwise
DEFAULT_GROUP_SIZE = 16


def parse_step(text: str, iterations_per_epoch: int) -> int:
    """'500it' -> 500; '2ep' -> 2 * iterations_per_epoch; at most MAX_STEPS iterations."""
    match = _STEP.match(str(text)[:100])
    if not match:
        raise BenchError(f"Bad step string '{str(text)[:100]}': write a whole number followed by 'it' or 'ep', "
                         f"e.g. '500it' or '2ep'.")
    count, unit = int(match.group(1)), match.group(2)
    steps = count if unit == "it" else count * iterations_per_epoch
    if steps > MAX_STEPS:
        raise BenchError(f"'{text}' is {steps:,} iterations, more than the most this bench runs ({MAX_STEPS:,}, "
                         f"16 times the paper preset's schedule): give a shorter one.")
    return steps


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist1d"  # mnist1d | cifar10
    train_examples: int = 8000  # mnist1d only: examples generated for training
    test_examples: int = 2000  # mnist1d only
    # mnist1d only: examples generated apart (own seed) for validation; 0 = none. Choices are made on
    # validation accuracy, results reported on test accuracy; records carry both.
    validation_examples: int = 0
    augment: bool = False  # cifar10: random crop (pad 4) + horizontal flip, in batch on the device
    # cifar10 only. Defaults are this harness's original choices (so existing hashes hold); the paper
    # preset sets OpenLTH's: ImageNet statistics, and a crop padded with black before normalising.
    normalization: str = "cifar10"  # cifar10 | imagenet: the mean/std inputs are normalised with
    pad: str = "zero-normalized"  # zero-normalized (0 after normalising: mean grey) | black (pixel 0)
    # shuffled: a seeded permutation per epoch; sequential: the training set in stored order every epoch
    # (MNIST-1D's notebooks read batches x[i*B:(i+1)*B] in turn)
    order: str = "shuffled"


@dataclass(frozen=True)
class ModelConfig:
    name: str = "resnet1d"  # resnet1d | cifar_resnet | mlp (MNIST-1D notebook's: widths = its hidden sizes)
    widths: tuple[int, ...] = (8, 16, 32)
    blocks_per_stage: int = 2
    batchnorm_init: str = "ones"  # ones | uniform: BatchNorm weight 1, or uniform [0, 1) as OpenLTH
    fc_bias_init: str = "zeros"  # zeros | pytorch: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) as nn.Linear
    # kaiming-normal: prunable weights Kaiming normal (the harness's); pytorch: every linear weight and
    # bias as nn.Linear draws them, uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) (mlp only)
    init: str = "kaiming-normal"
    inputs: int = 40  # mlp only: input features per channel (MNIST-1D's 40 samples)
    prune_biases: bool = False  # mlp only: biases are prunable with their layer's weights (MNIST-1D notebook)


@dataclass(frozen=True)
class TrainConfig:
    steps: str = "15ep"
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[str, ...] = ()  # step strings where the learning rate is multiplied by gamma
    gamma: float = 0.1
    warmup: str = "0it"  # linear learning-rate warm-up from 0 over this many steps (OpenLTH's warmup_steps)
    # auto: bf16 autocast on CUDA, fp32 elsewhere (the original behaviour); fp32 (the paper, OpenLTH); bf16
    precision: str = "auto"
    optimizer: str = "sgd"  # sgd (with momentum) | adam (default betas and eps; momentum ignored)
    # Gradient-norm clipping per replicate (0: off): each replicate's whole gradient (its unpruned weights)
    # scaled to this L2 norm when longer, as torch.nn.utils.clip_grad_norm_ on that network alone
    clip_norm: float = 0.0


@dataclass(frozen=True)
class PruneConfig:
    fraction: float = 0.2  # of the surviving prunable weights removed per level
    levels: int = 8
    # exact: exactly ceil(fraction * surviving) removed, ties by position; threshold: OpenLTH's
    # sparse_global, every weight at or below the (count+1)-th smallest surviving magnitude removed
    ties: str = "exact"
    # The pruning strategy (a registered name, `bench pruning-strategies`) and its parameters as sorted
    # (name, value) pairs; the default is the global magnitude rule above.
    strategy: str = "magnitude"
    strategy_params: tuple[tuple[str, Any], ...] = ()
    # Target fraction of the prunable weights pruned at levels 1, 2, ... (one per level, so `levels` must be
    # its length); empty: remove `fraction` of the survivors per level instead.
    schedule: tuple[float, ...] = ()
    # The dense network level 1 prunes. trunk: the one uninterrupted run 0 -> T (the harness's original);
    # level-0: the level-0 ticket, W_k retrained k -> T with a fresh optimizer, as OpenLTH's lottery runner
    # with rewinding does (docs/paper-recipe.md). Rewound to 0 both are the same run, so the trunk is used.
    level1_prunes: str = "trunk"

    def __post_init__(self) -> None:
        # a table (sweep files, the command line) or JSON's lists become sorted pairs: one value, one hash
        raw = self.strategy_params
        pairs = raw.items() if isinstance(raw, dict) else raw
        object.__setattr__(self, "strategy_params", tuple(sorted((str(k), v) for k, v in pairs)))
        object.__setattr__(self, "schedule", tuple(float(v) for v in self.schedule))


@dataclass(frozen=True)
class Experiment:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    rewind: str = "20it"  # the rewind point k

    def iterations_per_epoch(self, train_size: int) -> int:
        return math.ceil(train_size / self.train.batch_size)

    def with_overrides(self, **sections: dict[str, Any]) -> "Experiment":
        updated = {name: replace(getattr(self, name), **values) for name, values in sections.items() if values}
        return replace(self, **updated)


CHOICES = {
    ("data", "normalization"): ("cifar10", "imagenet"),
    ("data", "pad"): ("zero-normalized", "black"),
    ("model", "batchnorm_init"): ("ones", "uniform"),
    ("model", "fc_bias_init"): ("zeros", "pytorch"),
    ("train", "precision"): ("auto", "fp32", "bf16"),
    ("prune", "ties"): ("exact", "threshold"),
    ("data", "order"): ("shuffled", "sequential"),
    ("model", "init"): ("kaiming-normal", "pytorch"),
    ("train", "optimizer"): ("sgd", "adam"),
    ("prune", "level1_prunes"): ("trunk", "level-0"),
}


def validate(experiment: Experiment) -> None:
    """One-line refusals for enumerated fields with a value the code does not know."""
    for (section, name), allowed in CHOICES.items():
        value = getattr(getattr(experiment, section), name)
        if value not in allowed:
            raise BenchError(f"Unknown {section}.{name} '{value}'. Known: {', '.join(allowed)}.")
    clip = experiment.train.clip_norm
    if not (isinstance(clip, (int, float)) and math.isfinite(clip) and clip >= 0):
        raise BenchError(f"train.clip_norm must be a finite number >= 0 (0: no clipping), got {clip!r}.")
    prune = experiment.prune
    if prune.schedule:
        if len(prune.schedule) != prune.levels:
            raise BenchError(f"prune.schedule has {len(prune.schedule)} target sparsities but prune.levels is "
                             f"{prune.levels}: give one per level.")
        if any(not 0 <= s <= 1 for s in prune.schedule) or list(prune.schedule) != sorted(prune.schedule):
            raise BenchError("prune.schedule must rise from 0 to 1 at most (fractions of the weights pruned).")


def check_schedule(steps: int, rewind: int, per_epoch: int) -> None:
    """Refuse a rewind point that is not strictly inside training, with the numbers."""
    if not 0 <= rewind < steps:
        raise BenchError(
            f"rewind point k = {rewind} iterations is not before the end of training T = {steps} iterations "
            f"({per_epoch} iterations per epoch); use an earlier rewind point, more training steps, or more "
            f"training examples.")


def canonical(obj: Any) -> Any:
    """A JSON-ready dict of ``obj`` with every field at its default omitted (recursively)."""
    if not is_dataclass(obj):
        return list(obj) if isinstance(obj, tuple) else obj
    out: dict[str, Any] = {}
    defaults = type(obj)()
    for f in fields(obj):
        value, default = getattr(obj, f.name), getattr(defaults, f.name)
        if is_dataclass(value):
            nested = canonical(value)
            if nested:
                out[f.name] = nested
        elif value != default:
            out[f.name] = canonical(value)
    return out


def full(obj: Any) -> Any:
    """A JSON-ready dict of every field, defaults included (for records people read)."""
    if not is_dataclass(obj):
        return list(obj) if isinstance(obj, tuple) else obj
    return {f.name: full(getattr(obj, f.name)) for f in fields(obj)}


def digest(payload: Any, length: int = 16) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def config_hash(experiment: Experiment) -> str:
    """The cache key of an experiment: a hash of its canonical form."""
    return digest(canonical(experiment))


def from_dict(data: dict[str, Any]) -> Experiment:
    """Inverse of :func:`canonical` / :func:`full` (missing fields take their defaults)."""
    sections = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "prune": PruneConfig}
    kwargs: dict[str, Any] = {}
    for name, cls in sections.items():
        raw = dict(data.get(name, {}))
        for f in fields(cls):
            if f.name in raw and isinstance(raw[f.name], list):
                raw[f.name] = tuple(raw[f.name])
        kwargs[name] = cls(**raw)
    if "rewind" in data:
        kwargs["rewind"] = data["rewind"]
    return Experiment(**kwargs)
