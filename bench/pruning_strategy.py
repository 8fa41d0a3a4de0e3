"""The pruning-strategy contract: what a strategy plugin provides and what the harness guarantees.

A pruning strategy decides each IMP level's mask. It is any object with

* ``name``: a short kebab-case identifier, unique across loaded plugins (``bench pruning-strategies``);
* ``description``: one line;
* ``params``: a sequence of :class:`bench.perturbation.Param` (may be empty);
* ``masks(ctx)``: returns the next level's mask, ``{tensor_name: 0/1 tensor}`` for every tensor in
  ``ctx.mask``, from the previous level's trained weights ``ctx.weights`` and mask ``ctx.mask``.

How much to prune is the harness's: :meth:`PruneContext.removal` turns the experiment's rule (a
fraction of the survivors per level, or a target sparsity per level) into a count for any pool of
weights, so every strategy prunes the same amount. The harness checks what ``masks`` returns
(:func:`check_masks`): every tensor, its shape, values 0 or 1, and nothing pruned before comes back.
Randomness must come from ``ctx.generator`` (a CPU generator seeded from the replicate seed and the
level alone), so a random strategy draws the same mask for the same seed and level on every device,
and the ticket and its random control of one seed are paired.

The built-in rules themselves are in ``bench.pruning``.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

from bench.errors import PluginError
from bench.perturbation import Param

if TYPE_CHECKING:  # torch loads in the functions that compute: listing plugins needs none
    import torch

Masks = dict[str, "torch.Tensor"]


class PruningStrategy(Protocol):
    name: str
    description: str
    params: Sequence[Param]

    def masks(self, ctx: "PruneContext") -> Mapping[str, torch.Tensor]: ...


def layer_of(name: str) -> str:
    """The layer a prunable tensor belongs to: its module ('blocks.0.conv1.weight' -> 'blocks.0.conv1')."""
    return name.rpartition(".")[0] or name


@dataclass
class PruneContext:
    """Everything a strategy may read. All tensors are private CPU copies.

    weights:   the previous level's trained prunable tensors (level 1: the dense network's).
    mask:      the previous level's mask, float 0/1 (level 1: all ones).
    layers:    layer name -> its prunable tensors, in order (a weight, and its bias when biases are pruned).
    level:     the level whose mask is being made (1, 2, ...).
    fraction:  the experiment's fraction of the survivors removed per level (used when sparsity is None).
    sparsity:  the level's target fraction of weights pruned (the experiment's schedule), or None.
    ties:      the experiment's tie rule for magnitude ranking: 'exact' or 'threshold' (bench.pruning).
    params:    the strategy's parameters, converted to their declared types.
    seed:      the seed of ``generator`` (derived from the replicate seed and the level).
    generator: a seeded CPU torch.Generator: the only allowed source of randomness.
    """

    weights: dict[str, torch.Tensor]
    mask: dict[str, torch.Tensor]
    level: int
    fraction: float
    sparsity: float | None = None
    ties: str = "exact"
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    generator: torch.Generator | None = None
    layers: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.layers:
            grouped: dict[str, list[str]] = {}
            for name in self.mask:
                grouped.setdefault(layer_of(name), []).append(name)
            self.layers = {layer: tuple(names) for layer, names in grouped.items()}

    def removal(self, alive: int, total: int, scale: float = 1.0) -> int:
        """How many of a pool's ``alive`` surviving weights (of ``total``) this level removes.

        Per level: ``ceil(scale * fraction * alive)``; with a schedule: enough that ``floor(scale * sparsity
        * total)`` of the pool are pruned (MNIST-1D's notebook rounds down), never fewer than none."""
        if self.sparsity is None:
            return min(alive, math.ceil(scale * self.fraction * alive))
        return max(0, min(alive, int(scale * self.sparsity * total) - (total - alive)))

    def matching(self, patterns: str) -> set[str]:
        """The layers named by a comma-separated list of shell patterns ('fc', 'blocks.*.shortcut.0')."""
        wanted = [p.strip() for p in patterns.split(",") if p.strip()]
        return {layer for layer in self.layers if any(fnmatch.fnmatchcase(layer, p) for p in wanted)}


def check_masks(owner: str, ctx: PruneContext, result: Any) -> Masks:
    """``result`` as float 0/1 masks shaped like ``ctx.mask``, or a PluginError naming ``owner`` and what to fix."""
    import torch

    if not isinstance(result, Mapping):
        raise PluginError(f"Pruning strategy '{owner}' returned {type(result).__name__}, not a dict of masks.")
    missing = [n for n in ctx.mask if n not in result]
    extra = [n for n in result if n not in ctx.mask]
    if missing or extra:
        what = f"no mask for '{missing[0]}'" if missing else f"a mask for unknown tensor '{extra[0]}'"
        raise PluginError(f"Pruning strategy '{owner}' returned {what}: return one for every tensor in ctx.mask.")
    out: Masks = {}
    for name, previous in ctx.mask.items():
        mask = result[name]
        if not isinstance(mask, torch.Tensor) or mask.shape != previous.shape:
            shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise PluginError(f"Pruning strategy '{owner}' returned a mask for '{name}' shaped {shape}, "
                              f"expected {tuple(previous.shape)}.")
        mask = mask.detach().cpu().float()
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise PluginError(f"Pruning strategy '{owner}' returned a mask for '{name}' with values other than "
                              f"0 and 1.")
        if bool((mask > previous.cpu().float()).any()):
            raise PluginError(f"Pruning strategy '{owner}' revived weights pruned at an earlier level in '{name}': "
                              f"a mask may only remove survivors.")
        out[name] = mask.to(previous.dtype)
    return out
