"""Controls: leave W_k alone, go back to W_0, or draw fresh weights."""

from __future__ import annotations

from bench import hookimpl

from ._layers import LayerWise


class Identity:
    name = "identity"
    description = "No change: the ticket itself, so its drop measures the harness's noise (zero on CPU)."
    params = ()

    def apply(self, ctx):
        return dict(ctx.rewind)


PERTURBATIONS = [
    Identity(),
    LayerWise("rewind-to-init", "W_0 under the mask: the classic lottery ticket, rewound to iteration 0.",
              lambda layer, ctx: layer.init),
    LayerWise("reinit", "A fresh draw from the model's own initialiser (per-layer fan-in) under the mask.",
              lambda layer, ctx: ctx.fresh_init(layer.name)),
]


@hookimpl
def register_perturbations(register):
    for perturbation in PERTURBATIONS:
        register(perturbation)
