"""The training step's speed-ups of issue 22 are numerics-neutral: the same bits as before them.

The committed results (tests/test_committed_results.py) prove it end to end on a machine of their kernel
class; these tests prove it anywhere, step by step, against the forward as it was written before."""

import platform
import sys
import types

import pytest
import torch
import torch.nn.functional as F

from bench import allocator, fused, models
from bench.config import ModelConfig, TrainConfig
from bench.data import BatchStream, Dataset
from bench.training import Schedule, Trainer


def _out_of_place_forward(net, x):
    """models.ResNet.forward before issue 22: a fresh tensor for every ReLU and residual sum."""
    def block(b, x):
        out = F.relu(b.bn1(b.conv1(x)))
        out = b.bn2(b.conv2(out))
        return F.relu(out + b.shortcut(x))

    if net.dims == 1:
        x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    out = F.relu(net.bn(net.conv(x)))
    for b in net.blocks:
        out = block(b, out)
    return net.fc(out.flatten(2).mean(-1))


def _train(dims, replicas, reference, steps=6):
    g = torch.Generator().manual_seed(0)
    shape = (256, 1, 40) if dims == 1 else (256, 3, 8, 8)
    data = Dataset(torch.randn(*shape, generator=g), torch.randint(0, 10, (256,), generator=g),
                   torch.randn(16, *shape[1:], generator=g), torch.randint(0, 10, (16,), generator=g), 10)
    cfg = ModelConfig("resnet1d" if dims == 1 else "cifar_resnet", (4, 8), 1)
    model = fused.build(cfg, shape[1], 10, replicas)
    models.initialize(model, torch.Generator().manual_seed(1))
    if reference:
        model.forward = types.MethodType(_out_of_place_forward, model)
    names = models.prunable_names(model)
    params = dict(model.named_parameters())
    masks = {n: (torch.rand(params[n].shape, generator=g) > 0.5).float() for n in names}
    trainer = Trainer(model, TrainConfig(batch_size=32, lr=0.8, momentum=0.9, weight_decay=1e-4),
                      Schedule(0.8, 0.1, ()), masks, loss=fused.loss)
    stream = fused.FusedStream([BatchStream(data, 32, s) for s in range(replicas)])
    losses, grads = [], []
    for step in range(steps):
        losses.append(trainer.step(step, *stream.batch(step)))
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    return torch.stack(losses), grads, model.state_dict()


@pytest.mark.parametrize("dims,replicas", [(1, 3), (1, 1), (2, 2)])
def test_in_place_forward_is_bit_identical_to_the_out_of_place_one(dims, replicas):
    """In-place ReLU and residual add: the same losses, gradients, weights and BatchNorm statistics, bit for bit."""
    new_losses, new_grads, new_state = _train(dims, replicas, reference=False)
    old_losses, old_grads, old_state = _train(dims, replicas, reference=True)
    assert torch.equal(new_losses, old_losses)
    for new, old in zip(new_grads, old_grads):
        assert new.keys() == old.keys() and all(torch.equal(new[n], old[n]) for n in new)
    assert new_state.keys() == old_state.keys() and all(torch.equal(new_state[n], old_state[n]) for n in new_state)


def test_allocator_thresholds_are_set_once_where_glibc_allows():
    """A Trainer raises glibc's malloc thresholds (True on Linux/glibc); asking again changes nothing."""
    first = allocator.keep_freed_memory()
    assert allocator.keep_freed_memory() == first
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert first
