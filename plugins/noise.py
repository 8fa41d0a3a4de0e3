"""Additive Gaussian noise scaled by each layer's initialisation standard deviation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import hookimpl
from bench.errors import BenchError
from bench.perturbation import Param

from ._layers import layers

if TYPE_CHECKING:  # torch loads in the functions that compute: listing plugins needs none
    import torch


class GaussianNoise:
    name = "gaussian-noise"
    description = "W_k plus Gaussian noise with std = scale x the layer's initialisation std."
    params = (Param("scale", float, 1.0, "noise std as a multiple of each layer's initialisation std"),)

    def apply(self, ctx):
        import torch

        scale = ctx.params.get("scale", self.params[0].default)
        if scale < 0:
            raise BenchError(f"Parameter 'scale' of '{self.name}' must be >= 0, got {scale}.")
        out = {}
        for layer in layers(ctx):
            w = layer.rewind
            noise = torch.randn(w.shape, generator=ctx.generator, device=w.device, dtype=w.dtype)
            out[layer.name] = w + (scale * ctx.init_std(layer.name)) * noise
        return out


@hookimpl
def register_perturbations(register):
    register(GaussianNoise())
