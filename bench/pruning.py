"""The pruning rule: global magnitude pruning of a fixed fraction of the surviving weights.

All prunable tensors compete in one ranking (global, not per layer). Two tie rules:

* ``exact`` (the default): exactly ``ceil(fraction * surviving)`` weights are removed per
  level, the ones of smallest magnitude; ties are broken by position so the result is
  deterministic.
* ``threshold`` (OpenLTH's sparse_global): with ``count = ceil(fraction * surviving)``, the
  threshold is the magnitude at 0-based position ``count`` of the sorted surviving magnitudes,
  and only weights strictly above it survive. Every weight tied with the threshold goes, so on
  distinct magnitudes one weight more than ``count`` is removed per level.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from bench.config import Experiment
from bench.errors import BenchError
from bench.sizes import expected_density, levels_table  # noqa: F401  (the schedule, known without torch)

Masks = dict[str, torch.Tensor]


def ones_like(weights: dict[str, torch.Tensor]) -> Masks:
    return {name: torch.ones_like(w) for name, w in weights.items()}


TIES = ("exact", "threshold")


def prune(weights: dict[str, torch.Tensor], masks: Masks, fraction: float, ties: str = "exact") -> Masks:
    """The next level's masks: drop the lowest-magnitude ``fraction`` of the surviving weights."""
    if ties not in TIES:
        raise BenchError(f"Unknown prune.ties '{ties}'. Known: {', '.join(TIES)}.")
    names = list(masks)
    alive = torch.cat([masks[n].flatten() for n in names]).bool().cpu()
    magnitude = torch.cat([weights[n].detach().abs().flatten().float().cpu() for n in names])
    count = math.ceil(fraction * int(alive.sum()))
    keep = alive.clone()
    if ties == "threshold":
        surviving = torch.sort(magnitude[alive]).values
        if count < surviving.numel():
            keep &= magnitude > surviving[count]
        else:  # nothing lies above the last magnitude: everything goes
            keep[:] = False
    else:
        # pruned weights rank last so they are never counted twice
        score = torch.where(alive, magnitude, torch.full_like(magnitude, math.inf))
        order = torch.sort(score, stable=True).indices
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
