"""Shared helpers for the built-in perturbations: most of them act on one prunable tensor at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NamedTuple, Sequence

from bench.perturbation import Context, Param

if TYPE_CHECKING:  # torch loads in the functions that compute: listing plugins needs none
    import torch


class Layer(NamedTuple):
    """One prunable tensor: its name, W_k, W_0 and the boolean mask of surviving positions."""

    name: str
    rewind: torch.Tensor
    init: torch.Tensor
    keep: torch.Tensor


def layers(ctx: Context) -> list[Layer]:
    return [Layer(n, ctx.rewind[n], ctx.init[n], ctx.mask[n].bool()) for n in ctx.names]


@dataclass(frozen=True)
class LayerWise:
    """A perturbation defined by ``fn(layer, ctx) -> new tensor``, applied to every prunable tensor in order.

    Layers are visited in ``ctx.names`` order so the draws from ``ctx.generator`` are reproducible.
    """

    name: str
    description: str
    fn: Callable[[Layer, Context], torch.Tensor]
    params: Sequence[Param] = ()

    def apply(self, ctx: Context) -> dict[str, torch.Tensor]:
        return {layer.name: self.fn(layer, ctx) for layer in layers(ctx)}


def shuffle_rows(values: torch.Tensor, keep: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Permute, independently within each row of a 2-D tensor, the entries where ``keep`` is True.

    Vectorised rather than a Python loop over rows: random keys sort each row's survivors
    into a random order, and a stable sort of ``~keep`` lists the survivors' own slots in
    order; scattering the first list into the second moves survivors only among survivors.
    Pruned entries are shuffled among pruned slots, which is harmless: the harness zeroes them.
    """
    import torch

    keys = torch.rand(values.shape, generator=gen, device=values.device)
    keys = keys.masked_fill(~keep, 2.0)  # rand is in [0, 1): pruned entries sort last
    source = keys.argsort(dim=1)
    slots = (~keep).to(torch.uint8).argsort(dim=1, stable=True)
    return torch.empty_like(values).scatter_(1, slots, values.gather(1, source))


def shuffle_layer(values: torch.Tensor, keep: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Permute the surviving entries across the whole tensor."""
    return shuffle_rows(values.reshape(1, -1), keep.reshape(1, -1), gen).view_as(values)


def shuffle_filters(values: torch.Tensor, keep: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Permute the surviving entries within each output filter (conv) or row (linear), i.e. along dim 0."""
    rows = values.shape[0]
    return shuffle_rows(values.reshape(rows, -1), keep.reshape(rows, -1), gen).view_as(values)
