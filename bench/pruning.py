"""The pruning rule: global magnitude pruning of a fixed fraction of the surviving weights.

All prunable tensors compete in one ranking (global, not per layer). Two tie rules:

* ``exact`` (the default): exactly ``ceil(fraction * surviving)`` weights are removed per
  level, the ones of smallest magnitude; ties are broken by position so the result is
  deterministic.
* ``threshold`` (OpenLTH's sparse_global): with ``count = ceil(fraction * surviving)``, the
  threshold is the magnitude at 0-based position ``count`` of the sorted surviving magnitudes,
  and only weights strictly above it survive. Every weight tied with the threshold goes, so on
  distinct magnitudes one weight more than ``count`` is removed per level.

That is the default strategy, ``magnitude``. The other built-in rules are here too (layerwise
magnitude, random pruning globally or per layer); the strategies that expose them, and any plugin's,
are registered through the ``register_pruning_strategies`` hook (contract: ``bench.pruning_strategy``),
and :func:`level_masks` is where the harness asks the experiment's strategy for a level's mask.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from bench.config import Experiment
from bench.errors import BenchError, closest
from bench.pruning_strategy import PruneContext, check_masks
from bench.seeding import derive_seed, generator
from bench.sizes import expected_density, levels_table  # noqa: F401  (the schedule, known without torch)

Masks = dict[str, "torch.Tensor"]


def ones_like(weights: dict[str, torch.Tensor]) -> Masks:
    import torch

    return {name: torch.ones_like(w) for name, w in weights.items()}


TIES = ("exact", "threshold")


def prune(weights: dict[str, torch.Tensor], masks: Masks, fraction: float, ties: str = "exact") -> Masks:
    """The next level's masks: drop the lowest-magnitude ``fraction`` of the surviving weights."""
    alive = int(sum(masks[n].bool().sum() for n in masks))
    return prune_count(weights, masks, math.ceil(fraction * alive), ties)


def prune_count(weights: dict[str, torch.Tensor], masks: Masks, count: int, ties: str = "exact") -> Masks:
    """Global magnitude pruning of ``count`` surviving weights, all tensors in one ranking."""
    import torch

    if ties not in TIES:
        raise BenchError(f"Unknown prune.ties '{ties}'. Known: {', '.join(TIES)}.")
    names = list(masks)
    alive = torch.cat([masks[n].flatten() for n in names]).bool().cpu()
    magnitude = torch.cat([weights[n].detach().abs().flatten().float().cpu() for n in names])
    keep = _lowest_out(magnitude, alive, count, ties)
    return _split(keep, names, masks)


def _lowest_out(magnitude: torch.Tensor, alive: torch.Tensor, count: int, ties: str) -> torch.Tensor:
    """Which weights survive removing the ``count`` surviving weights of lowest magnitude (by the tie rule)."""
    import torch

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
    return keep


def _split(keep: torch.Tensor, names: list[str], masks: Masks) -> Masks:
    out, offset = {}, 0
    for n in names:
        size = masks[n].numel()
        out[n] = keep[offset:offset + size].view_as(masks[n]).to(masks[n].dtype).to(masks[n].device)
        offset += size
    return out


def _random_out(alive: torch.Tensor, count: int, gen: torch.Generator) -> torch.Tensor:
    """Which weights survive removing ``count`` surviving weights chosen uniformly at random."""
    import torch

    keep = alive.clone()
    survivors = alive.nonzero().flatten()
    keep[survivors[torch.randperm(survivors.numel(), generator=gen)[:count]]] = False
    return keep


def _pool(ctx: PruneContext, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    alive = torch.cat([ctx.mask[n].flatten() for n in names]).bool()
    magnitude = torch.cat([ctx.weights[n].detach().abs().flatten().float() for n in names])
    return alive, magnitude


def layer_scales(ctx: PruneContext, rates: str = "", dense: str = "") -> dict[str, float]:
    """Each layer's multiplier of the level's pruning amount: 1, a ``rates`` entry ('fc=0.5,conv=2'; shell
    patterns allowed, the last match wins), or 0 for the ``dense`` layers (left unpruned)."""
    scales = dict.fromkeys(ctx.layers, 1.0)
    for item in (part.strip() for part in rates.split(",") if part.strip()):
        pattern, sep, value = item.partition("=")
        try:
            scale = float(value)
        except ValueError:
            scale = -1.0
        if not sep or not math.isfinite(scale) or scale < 0:
            raise BenchError(f"Bad per-layer rate {item!r}: write LAYER=SCALE with SCALE >= 0, e.g. 'fc=0.5'.")
        matched = ctx.matching(pattern)
        if not matched:
            raise BenchError(f"Per-layer rate {item!r} names no layer. Layers: {', '.join(ctx.layers)}.")
        scales.update(dict.fromkeys(matched, scale))
    if dense.strip():
        matched = ctx.matching(dense)
        if not matched:
            raise BenchError(f"'dense={dense}' names no layer. Layers: {', '.join(ctx.layers)}.")
        scales.update(dict.fromkeys(matched, 0.0))
    return scales


def global_magnitude(ctx: PruneContext, dense: str = "") -> Masks:
    """All layers but the ``dense`` ones in one magnitude ranking (``ctx.ties``)."""
    frozen = ctx.matching(dense) if dense.strip() else set()
    names = [n for layer, ns in ctx.layers.items() if layer not in frozen for n in ns]
    if not frozen:
        alive = int(sum(ctx.mask[n].bool().sum() for n in names))
        total = sum(ctx.mask[n].numel() for n in names)
        out = prune_count(ctx.weights, ctx.mask, ctx.removal(alive, total), ctx.ties)
        return {n: out[n] for n in ctx.mask}
    layer_scales(ctx, dense=dense)  # refuses patterns that name no layer
    alive, magnitude = _pool(ctx, names)
    keep = _lowest_out(magnitude, alive, ctx.removal(int(alive.sum()), alive.numel()), ctx.ties)
    return {**{n: ctx.mask[n].clone() for n in ctx.mask}, **_split(keep, names, ctx.mask)}


def layerwise_magnitude(ctx: PruneContext, rates: str = "", dense: str = "") -> Masks:
    """Each layer ranked on its own and pruned by the level's amount times its scale (:func:`layer_scales`)."""
    out = {n: ctx.mask[n].clone() for n in ctx.mask}
    for layer, scale in layer_scales(ctx, rates, dense).items():
        names = list(ctx.layers[layer])
        alive, magnitude = _pool(ctx, names)
        count = ctx.removal(int(alive.sum()), alive.numel(), scale)
        out.update(_split(_lowest_out(magnitude, alive, count, ctx.ties), names, ctx.mask))
    return out


def random_global(ctx: PruneContext, dense: str = "") -> Masks:
    """As many weights as global magnitude pruning removes, chosen at random among all survivors."""
    frozen = ctx.matching(dense) if dense.strip() else set()
    layer_scales(ctx, dense=dense)
    names = [n for layer, ns in ctx.layers.items() if layer not in frozen for n in ns]
    alive, _ = _pool(ctx, names)
    keep = _random_out(alive, ctx.removal(int(alive.sum()), alive.numel()), ctx.generator)
    return {**{n: ctx.mask[n].clone() for n in ctx.mask}, **_split(keep, names, ctx.mask)}


def random_per_layer(ctx: PruneContext, counts: dict[str, int]) -> Masks:
    """``counts[layer]`` survivors of each layer removed at random (layers in ``ctx.layers`` order)."""
    out = {n: ctx.mask[n].clone() for n in ctx.mask}
    for layer, names in ctx.layers.items():
        alive, _ = _pool(ctx, list(names))
        out.update(_split(_random_out(alive, counts.get(layer, 0), ctx.generator), list(names), ctx.mask))
    return out


def layer_removals(ctx: PruneContext, reference: Masks) -> dict[str, int]:
    """How many survivors of each layer ``reference`` (a next-level mask) removes."""
    return {layer: int(sum(ctx.mask[n].bool().sum() - reference[n].bool().sum() for n in names))
            for layer, names in ctx.layers.items()}


def layerwise_counts(ctx: PruneContext, rates: str = "", dense: str = "") -> dict[str, int]:
    """What :func:`layerwise_magnitude` removes per layer, without ranking anything."""
    out = {}
    for layer, scale in layer_scales(ctx, rates, dense).items():
        alive = int(sum(ctx.mask[n].bool().sum() for n in ctx.layers[layer]))
        out[layer] = ctx.removal(alive, sum(ctx.mask[n].numel() for n in ctx.layers[layer]), scale)
    return out


def level_masks(experiment: Experiment, weights: dict[str, torch.Tensor], masks: Masks, level: int,
                seed: int) -> Masks:
    """Level ``level``'s mask from the previous level's trained ``weights`` and ``masks``, by the experiment's
    strategy. The default strategy (global magnitude, no parameters) is :func:`prune` itself."""
    cfg = experiment.prune
    if cfg.strategy == "magnitude" and not cfg.strategy_params and not cfg.schedule:
        return prune(weights, masks, cfg.fraction, cfg.ties)
    from bench.plugins import default_plugins  # the registry loads plugins: only non-default strategies need it

    registered = default_plugins().pruning_strategy(cfg.strategy)
    strategy = registered.strategy
    params = resolve_strategy_params(strategy, dict(cfg.strategy_params))
    ctx_seed = derive_seed(seed, "prune", level)
    ctx = PruneContext(weights={n: t.detach().cpu().clone() for n, t in weights.items()},
                       mask={n: m.detach().cpu().float() for n, m in masks.items()}, level=level,
                       fraction=cfg.fraction, sparsity=cfg.schedule[level - 1] if cfg.schedule else None,
                       ties=cfg.ties, params=params, seed=ctx_seed, generator=generator(ctx_seed))
    checked = check_masks(strategy.name, ctx, strategy.masks(ctx))
    return {n: checked[n].to(masks[n].dtype).to(masks[n].device) for n in masks}


def resolve_strategy_params(strategy: object, raw: dict[str, object]) -> dict[str, object]:
    """The strategy's parameters: every declared one, ``raw`` converted to its type, the rest defaulted."""
    declared = {p.name: p for p in getattr(strategy, "params", ())}
    owner = f"pruning strategy '{getattr(strategy, 'name', '?')}'"
    for key in raw:
        if key not in declared:
            known = ", ".join(declared) or "none"
            raise BenchError(f"Unknown parameter '{key}' of {owner}.{closest(key, list(declared))} Known: {known}.")
    return {name: p.convert(raw[name], owner) if name in raw else p.default for name, p in declared.items()}


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


def with_strategy(experiment: Experiment, name: str | None, raw: dict[str, object]) -> Experiment:
    """``experiment`` pruned by strategy ``name`` (None: its own) with parameters ``raw`` (strings from the
    command line or typed values). Parameters left at their defaults are dropped, so the default strategy
    keeps the default configuration and its hash."""
    from bench.plugins import default_plugins

    cfg = experiment.prune
    chosen = cfg.strategy if name is None else name
    strategy = default_plugins().pruning_strategy(chosen).strategy
    given = dict(cfg.strategy_params) if chosen == cfg.strategy else {}
    given.update(raw)
    params = resolve_strategy_params(strategy, given)
    defaults = {p.name: p.default for p in getattr(strategy, "params", ())}
    kept = {k: v for k, v in params.items() if k in given and v != defaults[k]}
    return experiment.with_overrides(prune={"strategy": chosen, "strategy_params": kept})
