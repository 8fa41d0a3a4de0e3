"""Controls: leave W_k alone, go back to W_0, or draw fresh weights."""

from __future__ import annotations

from bench import hookimpl


class Identity:
    name = "identity"
    description = "No change: the ticket itself, so its drop measures the harness's noise (zero on CPU)."
    params = ()

    def apply(self, ctx):
        return dict(ctx.rewind)


@hookimpl
def register_perturbations(register):
    register(Identity())
