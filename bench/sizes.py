"""Sizes known without building a network: the ResNets' parameter counts and the pruning schedule's
densities, so `bench presets` and level tables need no torch (docs/performance.md).

The counts follow bench/models.py layer by layer; tests/test_fast_start.py checks them against the
built networks of every preset.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bench.errors import BenchError

if TYPE_CHECKING:
    from bench.config import Experiment, ModelConfig

# kernel elements of a 3-wide convolution: 1 x 3 for the 1D network (held as 2D), 3 x 3 for CIFAR
_KERNEL = {"resnet1d": 3, "cifar_resnet": 9}


def parameter_counts(cfg: ModelConfig, in_channels: int, num_classes: int) -> tuple[int, int]:
    """(parameters, prunable weights) of ``models.build_model(cfg, in_channels, num_classes)``."""
    if cfg.name == "mlp":  # bench.models.MLP: Linear layers with biases, prunable biases only when asked
        sizes = (in_channels * cfg.inputs, *cfg.widths, num_classes)
        weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
        biases = sum(sizes[1:])
        return weights + biases, weights + (biases if cfg.prune_biases else 0)
    k = _KERNEL.get(cfg.name)
    if k is None:
        raise BenchError(f"Unknown model '{cfg.name}'. Known: cifar_resnet, mlp, resnet1d.")
    widths = tuple(cfg.widths)
    convs = in_channels * widths[0] * k  # the stem; every convolution is bias-free
    batchnorm = 2 * widths[0]  # weight and bias per channel
    f_in = widths[0]
    for stage, f_out in enumerate(widths):
        for index in range(cfg.blocks_per_stage):
            stride = 2 if stage > 0 and index == 0 else 1
            convs += f_in * f_out * k + f_out * f_out * k
            batchnorm += 4 * f_out
            if stride != 1 or f_in != f_out:  # the 1 x 1 projection and its BatchNorm
                convs += f_in * f_out
                batchnorm += 2 * f_out
            f_in = f_out
    fc = widths[-1] * num_classes
    return convs + batchnorm + fc + num_classes, convs + fc


def expected_density(fraction: float, level: int, total: int, ties: str = "exact") -> float:
    """Density after ``level`` levels, with the same rounding as :func:`bench.pruning.prune`.

    Exact for ``exact``. For ``threshold`` it assumes distinct magnitudes (one weight beyond the
    count goes per level): true of trained float weights except by rare coincidence, so it is the
    expected value; planted ties remove more."""
    extra = 1 if ties == "threshold" else 0
    alive = total
    for _ in range(level):
        alive -= min(alive, math.ceil(fraction * alive) + extra)
    return alive / total


def levels_table(experiment: Experiment, in_channels: int, num_classes: int) -> list[tuple[int, float]]:
    """(level, percent of prunable weights remaining) for every reachable level."""
    if experiment.prune.schedule:  # the targets (a layerwise strategy rounds each layer down on its own)
        return [(0, 100.0)] + [(lvl, 100 * (1 - s)) for lvl, s in enumerate(experiment.prune.schedule, 1)]
    _, total = parameter_counts(experiment.model, in_channels, num_classes)
    return [(lvl, 100 * expected_density(experiment.prune.fraction, lvl, total, experiment.prune.ties))
            for lvl in range(experiment.prune.levels + 1)]
