"""The networks, their seeded initialiser, and which tensors are prunable.

One ResNet definition serves both presets: ``dims=1`` is the 1D ResNet for
MNIST-1D, ``dims=2`` with widths 16/32/64 and 3 blocks per stage is the CIFAR
ResNet-20 of the paper (272,474 parameters, 270,896 prunable).

The 1D network is held as a 2D one over height-1 inputs (1 x 3 kernels): the same function with
the same number of parameters, but PyTorch's CPU kernels for 2D (and grouped 2D) convolutions in
channels_last are 1.4x faster than its 1D ones for this model (docs/performance.md). Its weights
are shaped (out, in, 1, 3).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.config import ModelConfig
from bench.errors import BenchError


def _conv(dims: int, f_in: int, f_out: int, size: int, stride: int) -> nn.Conv2d:
    """A bias-free size x size convolution, or 1 x size for the 1D network (padding keeps the length)."""
    if dims == 1:
        return nn.Conv2d(f_in, f_out, (1, size), stride=(1, stride), padding=(0, size // 2), bias=False)
    return nn.Conv2d(f_in, f_out, size, stride=stride, padding=size // 2, bias=False)


class Block(nn.Module):
    """A basic residual block; a 1x1 projection with BatchNorm when the shape changes."""

    def __init__(self, dims: int, f_in: int, f_out: int, stride: int):
        super().__init__()
        self.conv1 = _conv(dims, f_in, f_out, 3, stride)
        self.bn1 = nn.BatchNorm2d(f_out)
        self.conv2 = _conv(dims, f_out, f_out, 3, 1)
        self.bn2 = nn.BatchNorm2d(f_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or f_in != f_out:
            self.shortcut = nn.Sequential(_conv(dims, f_in, f_out, 1, stride), nn.BatchNorm2d(f_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in place: BatchNorm's backward needs its input, not its output, and ReLU's backward reads the
        # same signs from its output, so the gradients are bit-identical and two allocations fewer
        out = F.relu_(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu_(out)


class ResNet(nn.Module):
    def __init__(self, dims: int, in_channels: int, num_classes: int, widths: tuple[int, ...], blocks: int):
        super().__init__()
        self.dims = dims
        self.conv = _conv(dims, in_channels, widths[0], 3, 1)
        self.bn = nn.BatchNorm2d(widths[0])
        layers, f_in = [], widths[0]
        for stage, f_out in enumerate(widths):
            for index in range(blocks):
                stride = 2 if stage > 0 and index == 0 else 1
                layers.append(Block(dims, f_in, f_out, stride))
                f_in = f_out
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dims == 1:  # (N, C, L) -> (N, C, 1, L), channels_last like the weights
            x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        out = self.blocks(F.relu_(self.bn(self.conv(x))))
        return self.fc(out.flatten(2).mean(-1))


class MLP(nn.Module):
    """MNIST-1D's lottery-ticket MLP: h = relu(W1 x), then h = h + relu(W h) for each further hidden layer
    of the same width (a plain h = relu(W h) when the width changes), out = W_fc h. Widths (500, 500) are
    the notebook's 40-500-500-10 network with its one residual connection."""

    def __init__(self, in_features: int, num_classes: int, widths: tuple[int, ...], prune_biases: bool = False):
        super().__init__()
        self.prune_biases = prune_biases  # read by prunable_names
        sizes = (in_features, *widths)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.fc = nn.Linear(sizes[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for index, layer in enumerate(self.hidden):
            out = F.relu(layer(h))
            h = h + out if index > 0 and out.shape == h.shape else out
        return self.fc(h)


def build_model(cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    if cfg.name == "mlp":
        return MLP(in_channels * cfg.inputs, num_classes, tuple(cfg.widths), cfg.prune_biases)
    dims = {"resnet1d": 1, "cifar_resnet": 2}.get(cfg.name)
    if dims is None:
        raise BenchError(f"Unknown model '{cfg.name}'. Known: cifar_resnet, mlp, resnet1d.")
    model = ResNet(dims, in_channels, num_classes, tuple(cfg.widths), cfg.blocks_per_stage)
    # NHWC convolutions: 1.4x faster than NCHW on CPU for ResNet-20 and for the 1D network held as 2D
    # (docs/performance.md), and the layout Tensor Cores want on CUDA. Every path that trains builds
    # its network here, so all of them share one layout, and so one rounding path.
    return model.to(memory_format=torch.channels_last)


def prunable_names(model: nn.Module) -> list[str]:
    """Conv and linear weights. BatchNorm parameters are never pruned, biases only by an MLP built with
    ``prune_biases`` (each after its layer's weight)."""
    kinds = (nn.Conv1d, nn.Conv2d, nn.Linear)
    biases = getattr(model, "prune_biases", False)
    names = []
    for name, module in model.named_modules():
        if isinstance(module, kinds):
            names.append(f"{name}.weight")
            if biases and module.bias is not None:
                names.append(f"{name}.bias")
    return names


def init_tensor(name: str, tensor: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Kaiming normal (fan-in, ReLU gain) for one conv/linear weight; fan-in comes from its shape.

    Drawn into a contiguous tensor, then copied: the sampler fills memory in order, so a draw straight
    into a channels_last weight would give other values to the same seed."""
    values = nn.init.kaiming_normal_(torch.empty(tensor.shape, dtype=tensor.dtype), generator=gen)
    with torch.no_grad():
        return tensor.copy_(values)


def init_std(tensor: torch.Tensor) -> float:
    fan_in = tensor[0].numel()
    return math.sqrt(2.0 / fan_in)


@torch.no_grad()
def initialize(model: nn.Module, gen: torch.Generator, cfg: ModelConfig | None = None) -> None:
    """Seeded initialisation: prunable weights Kaiming normal, biases zero, BatchNorm to (1, 0).

    ``cfg`` may ask for OpenLTH's choices instead: BatchNorm weights uniform in [0, 1)
    (``batchnorm_init="uniform"``) and the linear layer's bias left at PyTorch's default
    distribution (``fc_bias_init="pytorch"``). Every draw comes from ``gen``, in parameter
    order; the defaults draw nothing beyond the Kaiming weights, so their numerics never change.
    """
    bn_init = cfg.batchnorm_init if cfg is not None else "ones"
    bias_init = cfg.fc_bias_init if cfg is not None else "zeros"
    linear_init = cfg.init if cfg is not None else "kaiming-normal"
    prunable = set(prunable_names(model))
    modules = dict(model.named_modules())
    for name, param in model.named_parameters():
        owner = modules[name.rpartition(".")[0]]
        if linear_init == "pytorch" and isinstance(owner, nn.Linear):
            bound = 1 / math.sqrt(owner.in_features)  # what nn.Linear draws for its weight and its bias
            nn.init.uniform_(param, -bound, bound, generator=gen)
        elif name in prunable and not name.endswith("bias"):
            init_tensor(name, param, gen)
        elif isinstance(owner, nn.Linear) and name.endswith("bias") and bias_init == "pytorch":
            bound = 1 / math.sqrt(owner.in_features)  # nn.Linear.reset_parameters' bias bound
            nn.init.uniform_(param, -bound, bound, generator=gen)
        elif name.endswith("bias"):
            param.zero_()
        elif bn_init == "uniform":
            nn.init.uniform_(param, 0.0, 1.0, generator=gen)  # BatchNorm weight, as OpenLTH
        else:
            param.fill_(1.0)  # BatchNorm weight
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
