"""Controls: leave W_k alone, go back to W_0 (two ways), or draw fresh weights.

* ``rewind-to-init``: W_0 under the level's mask for the prunable (conv/linear) weights only;
  BatchNorm parameters and statistics and the biases stay at W_k, and the branch trains from step
  k with the schedule resumed at k, like every other perturbation. So it isolates the prunable
  weights' early phase; it is not the classic lottery ticket.
* ``lottery-ticket``: the classic lottery ticket of Frankle & Carbin: everything rewound to W_0
  (all parameters and BatchNorm state), prunable weights under the level's mask, trained 0 -> T
  with the full schedule (``start = "init"``, see bench.perturbation).
"""

from __future__ import annotations

from bench import hookimpl

from ._layers import LayerWise


class Identity:
    name = "identity"
    description = "No change: the ticket itself, so its drop measures the harness's noise (zero on CPU)."
    params = ()

    def apply(self, ctx):
        return dict(ctx.rewind)


class LotteryTicket:
    name = "lottery-ticket"
    description = ("The classic lottery ticket: everything rewound to W_0 (BatchNorm too), mask applied, "
                   "trained 0 -> T with the full schedule.")
    params = ()
    start = "init"  # the harness starts the branch from W_0's full state at step 0

    def apply(self, ctx):
        return dict(ctx.init)


PERTURBATIONS = [
    Identity(),
    LayerWise("rewind-to-init", "W_0 under the mask for conv/linear weights only (BatchNorm, biases stay at W_k); "
              "trained k -> T like every branch.", lambda layer, ctx: layer.init),
    LayerWise("reinit", "A fresh draw from the model's own initialiser (per-layer fan-in) under the mask.",
              lambda layer, ctx: ctx.fresh_init(layer.name)),
    LotteryTicket(),
]


@hookimpl
def register_perturbations(register):
    for perturbation in PERTURBATIONS:
        register(perturbation)
