"""A template earlyphase-bench plugin: one perturbation with one typed parameter, and one pruning strategy.

Copy this package, rename it, and replace :class:`SignFlipFraction` with your own idea (or
:class:`LargestFirst`, for a way of pruning; delete whichever you do not need, with its hook).
The contracts (what ``apply`` and ``masks`` get and must return) are in CONTRIBUTING.md of
earlyphase-bench and in the docstrings of ``bench.perturbation`` and ``bench.pruning_strategy``.
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


class LargestFirst:
    """A pruning strategy: the opposite of magnitude pruning, a control for "is it the small weights?"."""

    name = "largest-first"
    description = "Prune the largest-magnitude surviving weights first (all layers in one ranking)."
    params = ()

    def masks(self, ctx):
        names = list(ctx.mask)  # a fixed order: the same mask for the same weights
        alive = torch.cat([ctx.mask[n].flatten() for n in names]).bool()
        magnitude = torch.cat([ctx.weights[n].abs().flatten() for n in names])
        # ctx.removal turns the experiment's rule (fraction per level or target sparsity) into a count
        count = ctx.removal(int(alive.sum()), alive.numel())
        score = torch.where(alive, magnitude, torch.full_like(magnitude, -1.0))  # pruned never chosen twice
        keep = alive.clone()
        keep[torch.argsort(score, descending=True, stable=True)[:count]] = False
        out, offset = {}, 0
        for n in names:
            size = ctx.mask[n].numel()
            out[n] = keep[offset:offset + size].view_as(ctx.mask[n]).float()
            offset += size
        return out


@hookimpl
def register_perturbations(register):
    register(SignFlipFraction())


@hookimpl
def register_pruning_strategies(register):
    register(LargestFirst())
