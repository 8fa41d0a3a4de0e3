"""Permutations of the surviving weights of W_k: per layer, per layer keeping signs, per filter."""

from __future__ import annotations

from bench import hookimpl

from ._layers import LayerWise, shuffle_filters, shuffle_layer

PERTURBATIONS = [
    LayerWise("shuffle-layer", "Permute the surviving weights of W_k within each layer.",
              lambda layer, ctx: shuffle_layer(layer.rewind, layer.keep, ctx.generator)),
    LayerWise("shuffle-layer-keep-sign",
              "Permute the surviving magnitudes of W_k within each layer; each position keeps its sign.",
              lambda layer, ctx: layer.rewind.sign() * shuffle_layer(layer.rewind.abs(), layer.keep, ctx.generator)),
    LayerWise("shuffle-filter", "Permute the surviving weights of W_k within each output filter (or row).",
              lambda layer, ctx: shuffle_filters(layer.rewind, layer.keep, ctx.generator)),
]


@hookimpl
def register_perturbations(register):
    for perturbation in PERTURBATIONS:
        register(perturbation)
