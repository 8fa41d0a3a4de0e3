"""Signs and magnitudes mixed from W_0, W_k, a fresh initialisation, or coin flips (paper, Section 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import hookimpl

from ._layers import LayerWise

if TYPE_CHECKING:  # torch loads in the functions that compute: listing plugins needs none
    import torch


def _random_signs(like: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    import torch

    return torch.randint(0, 2, like.shape, generator=gen, device=like.device, dtype=like.dtype) * 2 - 1


PERTURBATIONS = [
    LayerWise("reinit-keep-sign", "Signs of W_k, magnitudes of a fresh initialisation.",
              lambda layer, ctx: layer.rewind.sign() * ctx.fresh_init(layer.name).abs()),
    LayerWise("init-magnitude-keep-sign", "Signs of W_k, magnitudes of W_0.",
              lambda layer, ctx: layer.rewind.sign() * layer.init.abs()),
    LayerWise("keep-magnitude-init-sign", "Magnitudes of W_k, signs of W_0.",
              lambda layer, ctx: layer.rewind.abs() * layer.init.sign()),
    LayerWise("random-sign", "Magnitudes of W_k, each sign a fair coin flip.",
              lambda layer, ctx: layer.rewind.abs() * _random_signs(layer.rewind, ctx.generator)),
]


@hookimpl
def register_perturbations(register):
    for perturbation in PERTURBATIONS:
        register(perturbation)
