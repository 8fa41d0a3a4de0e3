"""The pruning rule: global magnitude pruning of a fixed fraction of the surviving weights.

All prunable tensors compete in one ranking (global, not per layer). Exactly
``ceil(fraction * surviving)`` weights are removed per level, the ones of
smallest magnitude; ties are broken by position so the result is deterministic.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from bench.config import Experiment

Masks = dict[str, torch.Tensor]


def ones_like(weights: dict[str, torch.Tensor]) -> Masks:
    return {name: torch.ones_like(w) for name, w in weights.items()}


def prune(weights: dict[str, torch.Tensor], masks: Masks, fraction: float) -> Masks:
    """The next level's masks: drop the lowest-magnitude ``fraction`` of the surviving weights."""
    names = list(masks)
    alive = torch.cat([masks[n].flatten() for n in names]).bool()
    magnitude = torch.cat([weights[n].detach().abs().flatten().float().cpu() for n in names])
    count = math.ceil(fraction * int(alive.sum()))
    # pruned weights rank last so they are never counted twice
    score = torch.where(alive.cpu(), magnitude, torch.full_like(magnitude, math.inf))
    order = torch.sort(score, stable=True).indices
    keep = alive.cpu().clone()
    keep[order[:count]] = False
    out, offset = {}, 0
    for n in names:
        size = masks[n].numel()
        out[n] = keep[offset:offset + size].view_as(masks[n]).to(masks[n].dtype).to(masks[n].device)
        offset += size
    return out


def density(masks: Masks) -> float:
    """The fraction of prunable weights that survive."""
    total = sum(m.numel() for m in masks.values())
    return float(sum(m.sum() for m in masks.values())) / total


def report(masks: Masks) -> dict:
    """Per-tensor and overall survival, for the level's record."""
    layers = {n: {"size": m.numel(), "remaining": int(m.sum())} for n, m in masks.items()}
    total = sum(v["size"] for v in layers.values())
    remaining = sum(v["remaining"] for v in layers.values())
    return {"total": total, "remaining": remaining, "density": remaining / total, "layers": layers}


def expected_density(fraction: float, level: int, total: int) -> float:
    """Density after ``level`` levels, with the same rounding as :func:`prune`."""
    alive = total
    for _ in range(level):
        alive -= math.ceil(fraction * alive)
    return alive / total


def levels_table(experiment: Experiment, in_channels: int, num_classes: int) -> list[tuple[int, float]]:
    """(level, percent of prunable weights remaining) for every reachable level."""
    from bench import models  # the rule itself needs no network; only the schedule's sizes do

    model = models.build_model(experiment.model, in_channels, num_classes)
    params = dict(model.named_parameters())
    total = sum(params[n].numel() for n in models.prunable_names(model))
    return [(lvl, 100 * expected_density(experiment.prune.fraction, lvl, total))
            for lvl in range(experiment.prune.levels + 1)]
