"""Training iterations per second: the harness's loop against a straightforward eager loop.

The baseline is what OpenLTH and most home-made scripts do: a torch DataLoader over a Dataset that
applies per-sample transforms, a fresh batch collated on the host each step, and a loss read back with
.item(). Ours: the dataset is one tensor on the device, augmentation runs on the whole batch, no host
synchronisation inside the step.
"""

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

from bench import fused, models
from bench.config import TrainConfig
from bench.data import BatchStream, Dataset
from bench.presets import get_preset
from bench.training import Schedule, Trainer

from conftest import peak_rss_mb

STEPS = {"mnist1d": 100, "cifar": 6}  # tiny 1D steps are noisy: more of them


class PerSampleImages(torch.utils.data.Dataset):
    """CIFAR-shaped uint8 images turned into tensors one at a time through PIL, as OpenLTH does."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, augment: bool):
        self.images, self.labels = images, labels
        ops = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if augment else []
        self.transform = transforms.Compose(ops + [transforms.ToTensor(),
                                                   transforms.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


class PerSampleSignals(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i].clone(), int(self.y[i])


def _eager_loop(model, loader, steps):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    it = iter(loader)
    for _ in range(steps):
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(loader)
            x, y = next(it)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()  # the usual per-step logging sync


def _harness_loop(model, data, steps, masks=None):
    trainer = Trainer(model, TrainConfig(batch_size=128), Schedule(0.1, 0.1, ()), masks)
    stream = BatchStream(data, 128, 0)
    for step in range(steps):
        trainer.step(step, *stream.batch(step))


def _time(fn, rounds=3):
    fn()  # warm-up (allocator, kernels)
    best = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t0)
    return float(np.median(best))


def _mnist1d():
    exp = get_preset("mnist1d-resnet").experiment
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8000, 1, 40, generator=g)
    y = torch.randint(0, 10, (8000,), generator=g)
    return exp, Dataset(x, y, x[:100], y[:100], 10)


def _cifar():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2048, 32, 32, 3), dtype=torch.uint8, generator=g).numpy()
    labels = torch.randint(0, 10, (2048,), generator=g).numpy()
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    data = Dataset(x, torch.from_numpy(labels).long(), x[:100], torch.from_numpy(labels[:100]).long(), 10,
                   augment=True)
    return images, labels, data


def test_default_preset_iterations(benchmark, report):
    exp, data = _mnist1d()
    steps = STEPS["mnist1d"]

    def model():
        m = models.build_model(exp.model, 1, 10)
        models.initialize(m, torch.Generator().manual_seed(0))
        return m

    loader = torch.utils.data.DataLoader(PerSampleSignals(data.x_train, data.y_train), batch_size=128, shuffle=True)
    baseline = _time(lambda: _eager_loop(model(), loader, steps))
    ours = benchmark.pedantic(lambda: _harness_loop(model(), data, steps), rounds=3, warmup_rounds=1)
    ours = benchmark.stats.stats.median
    benchmark.extra_info.update(baseline_s_per_it=baseline / steps, harness_s_per_it=ours / steps,
                                speedup=baseline / ours, peak_rss_mb=peak_rss_mb())
    report(f"mnist1d-resnet training: {steps / ours:.1f} it/s vs eager DataLoader loop {steps / baseline:.1f} it/s "
           f"-> {baseline / ours:.2f}x (peak RSS {peak_rss_mb():.0f} MB)")


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_cifar_resnet20_iterations(benchmark, report, layout):
    images, labels, data = _cifar()
    steps = STEPS["cifar"]
    cfg = get_preset("cifar10-resnet20").experiment.model
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format

    def model():
        m = models.build_model(cfg, 3, 10)
        models.initialize(m, torch.Generator().manual_seed(0))
        return m.to(memory_format=fmt)

    loader = torch.utils.data.DataLoader(PerSampleImages(images, labels, augment=True), batch_size=128, shuffle=True)
    baseline = _time(lambda: _eager_loop(models.build_model(cfg, 3, 10), loader, steps), rounds=2)
    if layout == "channels_last":
        data = Dataset(data.x_train.to(memory_format=torch.channels_last), data.y_train, data.x_test, data.y_test,
                       10, augment=True)
    benchmark.pedantic(lambda: _harness_loop(model(), data, steps), rounds=2, warmup_rounds=1)
    ours = benchmark.stats.stats.median
    benchmark.extra_info.update(baseline_s_per_it=baseline / steps, harness_s_per_it=ours / steps,
                                speedup=baseline / ours, peak_rss_mb=peak_rss_mb())
    report(f"cifar ResNet-20 ({layout}) training: {ours / steps:.3f} s/it vs eager per-sample DataLoader loop "
           f"{baseline / steps:.3f} s/it -> {baseline / ours:.2f}x (peak RSS {peak_rss_mb():.0f} MB)")


@pytest.mark.parametrize("replicas", [4])
def test_fused_replicates_step(benchmark, report, replicas):
    """R replicates in one fused step against one replicate's step, same run."""
    exp, data = _mnist1d()
    steps = STEPS["mnist1d"]

    def loop(r):
        _fused_loop(fused.build(exp.model, 1, 10, r), data, steps, r)

    one = _time(lambda: loop(1))
    benchmark.pedantic(lambda: loop(replicas), rounds=3, warmup_rounds=1)
    many = benchmark.stats.stats.median
    benchmark.extra_info.update(one_s=one, fused_s=many, cost_ratio=many / one, peak_rss_mb=peak_rss_mb())
    report(f"{replicas} replicates fused: {many / one:.2f}x the time of one replicate "
           f"({replicas / (many / one):.2f}x the throughput of one at a time)")


def _as_conv1d(module: torch.nn.Module) -> torch.nn.Module:
    """The plain 1D twin of the harness's 1D network (held as 1 x 3 2D convolutions): Conv1d/BatchNorm1d."""
    for name, child in module.named_children():
        if isinstance(child, torch.nn.Conv2d):
            setattr(module, name, torch.nn.Conv1d(child.in_channels, child.out_channels, child.kernel_size[1],
                                                  stride=child.stride[1], padding=child.padding[1],
                                                  groups=child.groups, bias=child.bias is not None))
        elif isinstance(child, torch.nn.BatchNorm2d):
            setattr(module, name, torch.nn.BatchNorm1d(child.num_features))
        else:
            _as_conv1d(child)
    return module


class _Plain1d(torch.nn.Module):
    """Runs the twin on (N, C, L) directly (the harness's forward adds a height-1 axis)."""

    def __init__(self, net):
        super().__init__()
        self.net = _as_conv1d(net)

    def forward(self, x):
        net = self.net
        out = net.blocks(F.relu(net.bn(net.conv(x))))
        return net.fc(out.mean(-1))


REPLICAS = 5  # replicates fused in the layout and compile benchmarks (docs/performance.md)


def _trainer(model, data, replicas, compile_=False):
    trainer = Trainer(model, TrainConfig(), Schedule(0.1, 0.1, ()), loss=fused.loss, compile=compile_)
    return trainer, fused.FusedStream([BatchStream(data, 128, s) for s in range(replicas)])


def _fused_loop(model, data, steps, replicas=REPLICAS):
    trainer, stream = _trainer(model, data, replicas)
    for step in range(steps):
        trainer.step(step, *stream.batch(step))


def test_1d_network_as_2d_channels_last(benchmark, report):
    """The harness's layout (1 x 3 Conv2d, channels_last) against plain Conv1d, 5 replicates fused."""
    exp, data = _mnist1d()
    steps = STEPS["mnist1d"]

    def ours():
        return fused.build(exp.model, 1, 10, REPLICAS).to(memory_format=torch.channels_last)

    baseline = _time(lambda: _fused_loop(_Plain1d(fused.build(exp.model, 1, 10, REPLICAS)), data, steps))
    benchmark.pedantic(lambda: _fused_loop(ours(), data, steps), rounds=3, warmup_rounds=1)
    harness = benchmark.stats.stats.median
    benchmark.extra_info.update(conv1d_s_per_it=baseline / steps, harness_s_per_it=harness / steps,
                                speedup=baseline / harness, peak_rss_mb=peak_rss_mb())
    report(f"1D network, {REPLICAS} replicates fused: 1x3 Conv2d channels_last {harness / steps * 1000:.1f} ms/it vs "
           f"Conv1d {baseline / steps * 1000:.1f} ms/it -> {baseline / harness:.2f}x")


def test_compile_on_cpu(benchmark, report):
    """torch.compile (inductor) against eager for the default model on CPU: steady-state steps after compiling."""
    exp, data = _mnist1d()
    steps = STEPS["mnist1d"]

    def model():
        return fused.build(exp.model, 1, 10, REPLICAS).to(memory_format=torch.channels_last)

    eager = _time(lambda: _fused_loop(model(), data, steps))
    trainer, stream = _trainer(model(), data, REPLICAS, compile_=True)
    start = time.perf_counter()
    trainer.step(0, *stream.batch(0))  # the first step compiles the forward
    compile_s = time.perf_counter() - start

    def loop():
        for step in range(steps):
            trainer.step(step, *stream.batch(step))

    benchmark.pedantic(loop, rounds=3, warmup_rounds=1)
    ours = benchmark.stats.stats.median
    benchmark.extra_info.update(eager_s_per_it=eager / steps, compiled_s_per_it=ours / steps, compile_s=compile_s,
                                speedup=eager / ours, peak_rss_mb=peak_rss_mb())
    report(f"torch.compile on CPU, default model, {REPLICAS} fused: {ours / steps * 1000:.1f} ms/it vs eager "
           f"{eager / steps * 1000:.1f} ms/it -> {eager / ours:.2f}x, after {compile_s:.0f} s compiling")


def _out_of_place_forward(net, x):
    """models.ResNet.forward before issue 22 (1D): a fresh tensor for every ReLU and residual sum."""
    out = F.relu(net.bn(net.conv(x.unsqueeze(2).contiguous(memory_format=torch.channels_last))))
    for b in net.blocks:
        out = F.relu(b.bn2(b.conv2(F.relu(b.bn1(b.conv1(out))))) + b.shortcut(out))
    return net.fc(out.flatten(2).mean(-1))


def test_default_group_step_issue22(benchmark, report):
    """The default preset's fused group of 3: today's step against the same step with the ReLUs and the residual
    sum out of place (the forward before issue 22), the same bits (tests/test_step_speed.py), in one process
    whose malloc settings both share. The allocator's part (bench/allocator.py) shows only across fresh
    processes: scripts/step_processes.py times the code before and after that way (docs/performance.md)."""
    import types
    exp, data = _mnist1d()
    steps, replicas = STEPS["mnist1d"], 3

    def before():
        model = fused.build(exp.model, 1, 10, replicas)
        model.forward = types.MethodType(_out_of_place_forward, model)
        _fused_loop(model, data, steps, replicas)

    baseline = _time(before)
    benchmark.pedantic(lambda: _fused_loop(fused.build(exp.model, 1, 10, replicas), data, steps, replicas),
                       rounds=3, warmup_rounds=1)
    ours = benchmark.stats.stats.median
    benchmark.extra_info.update(before_ms_per_replicate_step=baseline / steps / replicas * 1000,
                                ms_per_replicate_step=ours / steps / replicas * 1000, speedup=baseline / ours,
                                peak_rss_mb=peak_rss_mb())
    report(f"default group of 3 (issue 22, in-place ReLU and add): {ours / steps / replicas * 1000:.2f} ms per "
           f"replicate-step vs {baseline / steps / replicas * 1000:.2f} out of place -> {baseline / ours:.2f}x")
