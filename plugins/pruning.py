"""The built-in pruning strategies, registered like any plugin's (the rules are in bench.pruning).

* ``magnitude`` (the default): global magnitude pruning, every layer in one ranking, ties by the
  experiment's ``prune.ties``.
* ``magnitude-layerwise``: each layer ranked and pruned on its own by the same amount (times its
  per-layer rate), as MNIST-1D's lottery-ticket notebook and Frankle & Carbin's fully-connected nets do.
* ``random``: the control. As many weights as global magnitude removes, chosen at random.
* ``random-layerwise``: each layer loses as many as ``magnitude-layerwise`` would, chosen at random.
* ``random-matched``: each layer loses as many as ``magnitude`` (global) would, chosen at random:
  the mask's per-layer density kept, its positions shuffled.

Every strategy takes ``dense`` (layers left unpruned); the layerwise ones also take ``rates``, a
per-layer multiplier of the amount (Frankle & Carbin prune the output layer at half the rate:
``rates=fc=0.5``). Layers are module names (``bench pruning-strategies`` shows the syntax).
"""

from __future__ import annotations

from bench import hookimpl
from bench.perturbation import Param
from bench.pruning import global_magnitude, layer_removals, layerwise_counts, layerwise_magnitude, random_global, \
    random_per_layer

DENSE = Param("dense", str, "", "comma-separated layers (module names, shell patterns) left unpruned, e.g. 'fc'")
RATES = Param("rates", str, "", "per-layer multiplier of the pruning amount, e.g. 'fc=0.5' (0 = dense)")


class Magnitude:
    name = "magnitude"
    description = "Global magnitude pruning (the default): all layers in one ranking, ties by prune.ties."
    params = (DENSE,)

    def masks(self, ctx):
        return global_magnitude(ctx, ctx.params["dense"])


class MagnitudeLayerwise:
    name = "magnitude-layerwise"
    description = "Magnitude pruning within each layer: every layer loses the same share (times its rate)."
    params = (RATES, DENSE)

    def masks(self, ctx):
        return layerwise_magnitude(ctx, ctx.params["rates"], ctx.params["dense"])


class Random:
    name = "random"
    description = "Random pruning: as many weights as global magnitude removes, chosen at random (seeded)."
    params = (DENSE,)

    def masks(self, ctx):
        return random_global(ctx, ctx.params["dense"])


class RandomLayerwise:
    name = "random-layerwise"
    description = "Random pruning within each layer, each losing as many as magnitude-layerwise would."
    params = (RATES, DENSE)

    def masks(self, ctx):
        return random_per_layer(ctx, layerwise_counts(ctx, ctx.params["rates"], ctx.params["dense"]))


class RandomMatched:
    name = "random-matched"
    description = "Random pruning with each layer losing as many as global magnitude would (positions shuffled)."
    params = (DENSE,)

    def masks(self, ctx):
        return random_per_layer(ctx, layer_removals(ctx, global_magnitude(ctx, ctx.params["dense"])))


@hookimpl
def register_pruning_strategies(register):
    for strategy in (Magnitude(), MagnitudeLayerwise(), Random(), RandomLayerwise(), RandomMatched()):
        register(strategy)
