"""A template earlyphase-bench plugin: one perturbation with one typed parameter.

Copy this package, rename it, and replace :class:`SignFlipFraction` with your own idea.
The contract (what ``apply`` gets and must return) is in CONTRIBUTING.md of earlyphase-bench
and in the docstring of ``bench.perturbation``.
"""

from __future__ import annotations

import torch

from bench import hookimpl
from bench.errors import BenchError
from bench.perturbation import Param

__version__ = "0.1.0"


class SignFlipFraction:
    name = "sign-flip-fraction"
    description = "W_k with each surviving weight's sign flipped with probability `fraction`."
    params = (Param("fraction", float, 0.1, "probability that a weight's sign flips, in [0, 1]"),)

    def apply(self, ctx):
        fraction = ctx.params.get("fraction", self.params[0].default)
        if not 0.0 <= fraction <= 1.0:
            # BenchError reaches the user as a one-line message instead of a traceback
            raise BenchError(f"Parameter 'fraction' of '{self.name}' must be in [0, 1], got {fraction}.")
        out = {}
        for name in ctx.names:  # a fixed order, so the draws from ctx.generator are reproducible
            w = ctx.rewind[name]
            flip = torch.rand(w.shape, generator=ctx.generator, device=w.device) < fraction
            out[name] = torch.where(flip, -w, w)  # a new tensor; pruned positions are zeroed by the harness
        return out


@hookimpl
def register_perturbations(register):
    register(SignFlipFraction())
