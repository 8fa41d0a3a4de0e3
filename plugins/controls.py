"""Controls: leave W_k alone (with the ticket's data order or another), go back to W_0 (two ways), or draw
fresh weights.

* ``data-order``: the noise floor. The ticket's own start m * W_k (what ``identity`` starts from), retrained
  k -> T on another data order (``data_order = "other"``, see bench.perturbation; its seed is
  ``bench.seeding.branch_order_seed(replicate seed, perturbation seed)``), so its drop is what SGD noise alone
  moves a ticket's accuracy: a drop no larger than it says nothing about the early phase.
* ``rewind-to-init``: W_0 under the level's mask for the prunable (conv/linear) weights only;
  BatchNorm parameters and statistics and the biases stay at W_k, and the branch trains from step
  k with the schedule resumed at k, like every other perturbation. So it isolates the prunable
  weights' early phase; it is not the classic lottery ticket.
* ``lottery-ticket``: W_0 under the mask that IMP found while rewinding to k: everything rewound to
  W_0 (all parameters and BatchNorm state), prunable weights under the level's mask, trained 0 -> T
  with the full schedule (``start = "init"``, see bench.perturbation). Not the classic lottery ticket,
  whose masks IMP finds by resetting to W_0 at every level: that is ``imp-rewind-0``.
* ``imp-rewind-0``: the classic lottery ticket of Frankle & Carbin and the paper's k = 0 reference. Not W_0
  under this chain's mask: IMP rewound to iteration 0 throughout, with its own pruning chain (each level
  prunes its own previous level and trains W_0 0 -> T), run by the harness per seed and cached like any
  chain (``start = "imp-from-init"``). Its drop is how much rewinding to k beats rewinding to 0; its
  effective std measures W_0 against W_k under its own chain's mask, the one it trains under.
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


class DataOrder(Identity):
    """Starts from W_k like identity (so apply() is the same), but trains on another data order."""

    name = "data-order"
    description = ("The noise floor: the ticket's own start m * W_k retrained k -> T on another data order "
                   "(seeded from the replicate seed), so its drop is SGD noise alone.")
    data_order = "other"  # the harness trains the branch on bench.seeding.branch_order_seed's order


class LotteryTicket:
    name = "lottery-ticket"
    description = ("W_0 (BatchNorm too) under the mask IMP found rewinding to k, trained 0 -> T with the full "
                   "schedule; not the classic ticket (that is imp-rewind-0).")
    params = ()
    start = "init"  # the harness starts the branch from W_0's full state at step 0

    def apply(self, ctx):
        return dict(ctx.init)


class ImpRewindZero(LotteryTicket):
    """Starts from W_0 like the lottery ticket (so apply() is the same), but under its own pruning chain."""

    name = "imp-rewind-0"
    description = ("Reference, the classic lottery ticket: IMP rewound to iteration 0 with its own pruning chain "
                   "(own masks, W_0 trained 0 -> T at every level), as the paper compares.")
    start = "imp-from-init"  # the harness trains the chain; apply() measures W_0 against W_k


PERTURBATIONS = [
    Identity(),
    DataOrder(),
    LayerWise("rewind-to-init", "W_0 under the mask for conv/linear weights only (BatchNorm, biases stay at W_k); "
              "trained k -> T like every branch.", lambda layer, ctx: layer.init),
    LayerWise("reinit", "A fresh draw from the model's own initialiser (per-layer fan-in) under the mask.",
              lambda layer, ctx: ctx.fresh_init(layer.name)),
    LotteryTicket(),
    ImpRewindZero(),
]


@hookimpl
def register_perturbations(register):
    for perturbation in PERTURBATIONS:
        register(perturbation)
