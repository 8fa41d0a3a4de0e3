"""What every experiment resolves before training: run options, device, data, level."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from bench import numerics, paths
from bench.batchlog import seeds_text
from bench.config import DEFAULT_GROUP_SIZE, MAX_SEEDS, Experiment, config_hash
from bench.data import load_dataset
from bench.errors import BenchError
from bench.execute import Env
from bench.perturbation import DEFAULT_APPLY_TIMEOUT
from bench.presets import Preset
from bench.progress import NO_PROGRESS, Progress, hook
from bench.provenance import hardware_class
from bench.pruning import levels_table

if TYPE_CHECKING:
    from bench.experiments.tracking import Tracking


@dataclass(frozen=True)
class RunOptions:
    """How and where to run, never what: the same options for every training command.

    Only ``group_size`` can move a number (fused kernels round differently), and every stage records the
    group it trained in, so a result says how to reproduce it."""

    cache: Path
    device: str = "auto"
    data_dir: Path | None = None  # default: <cache>/data
    download: bool = False
    checkpoint_every: int | None = None  # steps; default one epoch
    group_size: int | None = None  # most replicates trained together as one fused model; None: the preset's
    workers: int = 1  # seed groups trained at once, each in its own process (CPU only); never moves a number
    compile: bool = False
    apply_timeout: float | None = DEFAULT_APPLY_TIMEOUT  # seconds a perturbation's apply() may run (None: no limit)
    progress: Progress = NO_PROGRESS
    tracking: "Tracking | None" = None  # `bench run --logger`: the trackers this run logs to; never moves a number
    # False: never evaluate the test split (a search on validation, scripts/search_default.py). Its stages live
    # in their own tree, <cache>/validation-only, so a normal run never reads them (nor they a normal stage)
    evaluate_test: bool = True


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



def seed_list(seeds: int | Sequence[int]) -> list[int]:
    """``N`` means seeds 0..N-1; a sequence is taken as given (in order, without repeats); at most MAX_SEEDS."""
    if (seeds if isinstance(seeds, int) else len(seeds)) > MAX_SEEDS:
        raise BenchError(f"--seeds names {seeds if isinstance(seeds, int) else len(seeds):,} seeds, more than the "
                         f"{MAX_SEEDS} one command trains: run fewer.")
    chosen = list(range(seeds)) if isinstance(seeds, int) else list(dict.fromkeys(int(s) for s in seeds))
    if not chosen:
        raise BenchError("--seeds must name at least one seed, e.g. --seeds 3, --seeds 10-14 or --seeds 3,7,9.")
    if min(chosen) < 0:
        raise BenchError(f"Seeds must be 0 or more, got {min(chosen)}.")
    return chosen


@dataclass
class Setup:
    """The experiment, its data on the device (inside ``env``), the seeds and the level to report."""

    experiment: Experiment
    env: Env
    level: int
    table: list[tuple[int, float]]
    seeds: list[int]

    @property
    def percent_remaining(self) -> float:
        return self.table[self.level][1]


def prepare(preset: Preset, options: RunOptions, *, seeds: int | Sequence[int], level: int | None = None,
            sparsity: float | None = None, experiment: Experiment | None = None, writes_results: bool = True) -> Setup:
    """``writes_results=False``: the caller reads only validation accuracy (the search script) and writes no
    result; only such a caller may set ``options.evaluate_test`` False, since results need test accuracy."""
    if writes_results and not options.evaluate_test:
        raise BenchError("evaluate_test=False is for the validation-only search (scripts/search_default.py): "
                         "results and the leaderboard need test accuracy, so run with evaluate_test=True.")
    numerics.pin()  # the kernels' env vars and the thread count, before anything trains
    chosen = seed_list(seeds)
    exp = experiment or preset.experiment
    device = resolve_device(options.device)
    data = load_dataset(exp.data, options.data_dir or paths.data_dir(options.cache), device, options.download)
    table = levels_table(exp, data.in_channels, data.num_classes)
    lvl = resolve_level(table, level, sparsity, min(preset.level, exp.prune.levels))
    cache = options.cache if options.evaluate_test else paths.validation_only_dir(options.cache)
    env = Env(cache=cache, device=device, data=data, progress=options.progress,
              checkpoint_every=options.checkpoint_every, group_size=options.group_size or preset.group_size,
              compile=options.compile,
              apply_timeout=options.apply_timeout, metrics=options.tracking, evaluate_test=options.evaluate_test)
    setup = Setup(exp, env, lvl, table, chosen)
    hook(options.progress, "announce")(describe(preset, setup, options))  # a batch log's header line
    return setup


def describe(preset: Preset, setup: Setup, options: RunOptions) -> dict[str, Any]:
    """What a batch log's header says of an experiment about to train (bench.batchlog.header)."""
    return {"preset": preset.name, "config": config_hash(setup.experiment), "device": str(setup.env.device),
            "class": hardware_class(setup.env.device), "seeds": seeds_text(setup.seeds), "level": setup.level,
            "group": setup.env.group_size, "workers": options.workers, "cache": options.cache}
