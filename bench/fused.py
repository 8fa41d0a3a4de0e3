"""Several replicates trained as one model: the fused path behind ``--seeds N``.

R replicates of a network become one network R times as wide whose layers
never mix replicates: every convolution is grouped (groups=R), BatchNorm is per
channel anyway, and the classifier is a grouped linear map. Replicate r owns
channel block r of every tensor (dimension 0), so fusing is concatenation and
unfusing is chunking. Each replicate keeps its own weights, mask, data order
(its batch is stacked along the channel axis) and BatchNorm statistics; the
loss is the sum of the replicates' mean losses, so each replicate receives the
gradient it would get alone. Small networks leave the machine mostly idle, so R
replicates cost far less than R times one.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench import models
from bench.config import ModelConfig
from bench.data import BatchStream
from bench.training import cross_entropy, evaluate as evaluate_one

# Tensors with no replicate axis (identical across replicates by construction).
_SHARED = ("num_batches_tracked",)


class GroupedLinear(nn.Module):
    """R independent linear maps; weight (R*out, in) so replicate r owns rows r*out:(r+1)*out."""

    def __init__(self, replicas: int, in_features: int, out_features: int):
        super().__init__()
        self.replicas, self.out_features = replicas, out_features
        self.weight = nn.Parameter(torch.empty(replicas * out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(replicas * out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        w = self.weight.view(self.replicas, self.out_features, -1)
        out = torch.einsum("nri,roi->nro", x.view(n, self.replicas, -1), w)
        return out.reshape(n, -1) + self.bias


def _widen(module: nn.Module, replicas: int) -> nn.Module:
    """Replace every layer by its R-replicate grouped twin, in place."""
    for name, child in module.named_children():
        if isinstance(child, (nn.Conv1d, nn.Conv2d)):
            cls = type(child)
            setattr(module, name, cls(child.in_channels * replicas, child.out_channels * replicas,
                                      child.kernel_size, stride=child.stride, padding=child.padding,
                                      groups=replicas, bias=child.bias is not None))
        elif isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, type(child)(child.num_features * replicas))
        elif isinstance(child, nn.Linear):
            setattr(module, name, GroupedLinear(replicas, child.in_features, child.out_features))
        else:
            _widen(child, replicas)
    return module


def build(cfg: ModelConfig, in_channels: int, num_classes: int, replicas: int) -> nn.Module:
    """The fused network; with one replicate it is exactly the plain network."""
    model = models.build_model(cfg, in_channels, num_classes)
    return model if replicas == 1 else _widen(model, replicas).to(memory_format=torch.channels_last)


def fuse(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Per-replicate tensors (state dicts or masks) -> fused tensors."""
    if len(states) == 1:
        return dict(states[0])
    out = {}
    for name, first in states[0].items():
        if name.endswith(_SHARED):
            out[name] = first
        else:
            out[name] = torch.cat([s[name] for s in states], dim=0)
    return out


def unfuse(state: dict[str, torch.Tensor], replicas: int) -> list[dict[str, torch.Tensor]]:
    if replicas == 1:
        return [{n: t.clone() for n, t in state.items()}]
    out: list[dict[str, torch.Tensor]] = [{} for _ in range(replicas)]
    for name, tensor in state.items():
        parts = [tensor] * replicas if name.endswith(_SHARED) else tensor.chunk(replicas, dim=0)
        for r, part in enumerate(parts):
            out[r][name] = part.clone()
    return out


class FusedStream:
    """Each replicate's own batch for a step, stacked along the channel axis."""

    def __init__(self, streams: list[BatchStream]):
        self.streams = streams
        self.per_epoch = streams[0].per_epoch

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if len(self.streams) == 1:
            return self.streams[0].batch(step)
        xs, ys = zip(*(s.batch(step) for s in self.streams))
        return torch.cat(xs, dim=1), torch.stack(ys, dim=1)


def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum over replicates of each replicate's mean cross-entropy (labels shaped (N, R))."""
    if y.dim() == 1:
        return cross_entropy(logits, y)
    n, replicas = y.shape
    per = logits.view(n, replicas, -1).permute(0, 2, 1)  # (N, classes, R): cross_entropy's K-dim form
    return F.cross_entropy(per, y, reduction="sum") / n


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, replicas: int,
             batch_size: int = 2000) -> list[float]:
    """Test accuracy in percent of each replicate on the same test set."""
    if replicas == 1:
        return [evaluate_one(model, x, y, batch_size)]
    model.eval()
    correct = torch.zeros(replicas, dtype=torch.long, device=x.device)
    for i in range(0, x.shape[0], batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        logits = model(xb.repeat(1, replicas, *([1] * (xb.dim() - 2))))
        pred = logits.view(xb.shape[0], replicas, -1).argmax(-1)
        correct += (pred == yb[:, None]).sum(0)
    return [100.0 * int(c) / x.shape[0] for c in correct]
