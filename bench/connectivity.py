"""Effective density: the surviving weights that can still carry signal from the input to the output.

A mask can cut a unit (a neuron, a channel) off: if none of its incoming weights from live units survive,
it passes no signal forward (BatchNorm's shift or a bias makes it a constant, not a signal); if none of
its outgoing weights survive, nothing it computes reaches the output. Its other weights then count in
the nominal density but do nothing. Liveness is propagated forward from the input and backward from the
output over the network's unit graph; a skip connection (identity shortcut, the MLP's residual) is
always live, so a unit stays reachable through it.

A surviving weight is effective when its input unit is forward-live and its output unit backward-live;
a surviving pruned-with-the-weights bias when its unit is both. Convolution weights connect two
channels when any kernel position survives.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from bench import models


@dataclass(frozen=True)
class Edge:
    """Units of node ``src`` feed units of node ``dst`` through prunable tensor ``tensor`` (None: identity)."""

    src: str
    dst: str
    tensor: str | None = None


def unit_graph(model: nn.Module) -> list[Edge] | None:
    """The network's edges in forward order, from node 'input' to node 'output'; None for a model it cannot read."""
    if isinstance(model, models.MLP):
        edges, node = [], "input"
        for index, layer in enumerate(model.hidden):
            dst = f"hidden.{index}"
            edges.append(Edge(node, dst, f"hidden.{index}.weight"))
            if index > 0 and layer.in_features == layer.out_features:  # h = h + relu(W h)
                edges.append(Edge(node, dst))
            node = dst
        return edges + [Edge(node, "output", "fc.weight")]
    if isinstance(model, models.ResNet):
        edges, node = [Edge("input", "stem", "conv.weight")], "stem"
        for index, block in enumerate(model.blocks):
            prefix = f"blocks.{index}"
            edges += [Edge(node, f"{prefix}.mid", f"{prefix}.conv1.weight"),
                      Edge(f"{prefix}.mid", prefix, f"{prefix}.conv2.weight")]
            shortcut = f"{prefix}.shortcut.0.weight" if len(block.shortcut) else None
            edges.append(Edge(node, prefix, shortcut))
            node = prefix
        return edges + [Edge(node, "output", "fc.weight")]
    return None


def _connections(mask: torch.Tensor) -> torch.Tensor:
    """(out, in) booleans: which unit pairs a weight tensor still connects."""
    m = mask.bool()
    return m.flatten(2).any(-1) if m.dim() > 2 else m


def effective_counts(edges: list[Edge], masks: dict[str, torch.Tensor]) -> dict[str, int]:
    """Per prunable tensor, how many of its surviving entries carry signal (see the module docstring)."""
    conn = {e.tensor: _connections(masks[e.tensor].cpu()) for e in edges if e.tensor is not None}
    size: dict[str, int] = {}
    for e in edges:
        if e.tensor is not None:
            size[e.src], size[e.dst] = conn[e.tensor].shape[1], conn[e.tensor].shape[0]
    forward = {"input": torch.ones(size["input"], dtype=torch.bool)}
    for e in edges:  # forward order: every source is complete before its edges are read
        reach = forward[e.src] if e.tensor is None else (conn[e.tensor] & forward[e.src]).any(1)
        forward[e.dst] = forward.get(e.dst, torch.zeros(size[e.dst], dtype=torch.bool)) | reach
    backward = {"output": torch.ones(size["output"], dtype=torch.bool)}
    for e in reversed(edges):
        reach = backward[e.dst] if e.tensor is None else (conn[e.tensor] & backward[e.dst][:, None]).any(0)
        backward[e.src] = backward.get(e.src, torch.zeros(size[e.src], dtype=torch.bool)) | reach
    counts = {}
    for e in edges:
        if e.tensor is None:
            continue
        mask = masks[e.tensor].cpu().bool()
        live = forward[e.src][None, :] & backward[e.dst][:, None]
        counts[e.tensor] = int((mask & live.view(*live.shape, *([1] * (mask.dim() - 2)))).sum())
        bias = e.tensor.removesuffix("weight") + "bias"
        if bias in masks:
            counts[bias] = int((masks[bias].cpu().bool() & forward[e.dst] & backward[e.dst]).sum())
    return counts


def effective_density(model: nn.Module, masks: dict[str, torch.Tensor]) -> float | None:
    """The fraction of the prunable weights that survive and carry signal; None for an unknown architecture."""
    edges = unit_graph(model)
    if edges is None:
        return None
    counts = effective_counts(edges, masks)
    if set(counts) != set(masks):  # a prunable tensor the graph does not know: no claim
        return None
    return sum(counts.values()) / sum(m.numel() for m in masks.values())
