"""Standalone prototypes against the default preset's fused training step (issue 22): each variant
trains the same fused group from the same weights on the same batches; timed in interleaved rounds
(every variant in turn, medians, one thread, kernels pinned) and compared bit for bit with the
forward as it was before issue 22 ("before") after --check steps (every parameter, BatchNorm buffer and loss).  Nothing here is used by
the harness.

  .venv/bin/python scripts/step_alternatives.py [--rounds 7] [--steps 30] [--check 20] [--only a,b]
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import resource
import statistics
import time
import types

import bench  # noqa: F401  (pins the kernels' env vars before torch loads)
import torch
import torch.nn.functional as F

from bench import fused, models, numerics, training
from bench.data import BatchStream, Dataset
from bench.presets import get_preset
from bench.training import Schedule, Trainer

EXP = get_preset("mnist1d-resnet").experiment


def data() -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 1, 40, generator=g)
    y = torch.randint(0, 10, (4000,), generator=g)
    return Dataset(x, y, x[:100], y[:100], 10)


def base_model(replicas: int):
    m = fused.build(EXP.model, 1, 10, replicas)
    models.initialize(m, torch.Generator().manual_seed(0))
    return m


# ---- forward variants (the same function as models.ResNet/Block, written differently) ----

def conv_im2col(conv, x):
    """A grouped 1 x k convolution as unfold + one batched matmul over the replicate groups."""
    n, c, _, length = x.shape
    r = conv.groups
    k, s, p = conv.kernel_size[1], conv.stride[1], conv.padding[1]
    cin = c // r
    xs = x.squeeze(2)
    if p:
        xs = F.pad(xs, (p, p))
    u = xs.unfold(-1, k, s)  # (N, C, Lout, k)
    lout = u.shape[2]
    u = u.reshape(n, r, cin, lout, k).permute(1, 0, 3, 2, 4).reshape(r, n * lout, cin * k)
    w = conv.weight.reshape(r, -1, cin * k)  # (R, Cout, Cin*k)
    out = torch.bmm(u, w.transpose(1, 2))  # (R, N*Lout, Cout)
    cout = out.shape[-1]
    out = out.view(r, n, lout, cout).permute(1, 2, 0, 3).reshape(n, lout, r * cout)
    return out.permute(0, 2, 1).unsqueeze(2)  # (N, C, 1, L), channels_last memory


def bn_2d(bn, x):
    """Training-mode BatchNorm on the (N*L, C) view of a channels_last (N, C, 1, L) tensor."""
    n, c, _, length = x.shape
    flat = x.permute(0, 2, 3, 1).reshape(n * length, c)
    bn.num_batches_tracked.add_(1)
    out = F.batch_norm(flat, bn.running_mean, bn.running_var, bn.weight, bn.bias, True, bn.momentum, bn.eps)
    return out.view(n, 1, length, c).permute(0, 3, 1, 2)


def make_forward(conv=None, bn=None, inplace=False):
    conv = conv or (lambda m, x: m(x))
    bn = bn or (lambda m, x: m(x))

    def block(b, x):
        out = bn(b.bn1, conv(b.conv1, x))
        out = F.relu_(out) if inplace else F.relu(out)
        out = bn(b.bn2, conv(b.conv2, out))
        sc = bn(b.shortcut[1], conv(b.shortcut[0], x)) if len(b.shortcut) else x
        if inplace:
            out += sc
            return F.relu_(out)
        return F.relu(out + sc)

    def forward(net, x):
        x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        out = bn(net.bn, conv(net.conv, x))
        out = F.relu_(out) if inplace else F.relu(out)
        for b in net.blocks:
            out = block(b, out)
        return net.fc(out.flatten(2).mean(-1))
    return forward


def contiguous_forward(net, x):
    x = x.unsqueeze(2)
    out = net.blocks(F.relu(net.bn(net.conv(x))))
    return net.fc(out.flatten(2).mean(-1))


VARIANTS = {
    # name: (replicas, model transform, forward or None, optimizer kwargs)
    # "before": the forward as committed before issue 22 (out-of-place ReLU and residual add): the reference
    # every variant is compared with, bit for bit and in time
    "before": (3, None, make_forward(), {}),
    "current": (3, None, None, {}),  # the harness as it is now: bench/models.py and bench/allocator.py
    "relu-inplace": (3, None, make_forward(inplace=True), {}),
    "keep-freed-memory": (3, None, make_forward(), {}),
    "current+sgd-foreach": (3, None, None, {"foreach": True}),
    "sgd-foreach": (3, None, None, {"foreach": True}),
    "sgd-fused": (3, None, None, {"fused": True}),
    "bn-on-2d-view": (3, None, make_forward(bn=bn_2d), {}),
    "conv-im2col-bmm": (3, None, make_forward(conv=conv_im2col), {}),
    "contiguous-layout": (3, lambda m: m.to(memory_format=torch.contiguous_format), contiguous_forward, {}),
    "group-1": (1, None, None, {}),
    "group-2": (2, None, None, {}),
    "group-4": (4, None, None, {}),
    "group-6": (6, None, None, {}),
}


# variants run with bench.allocator's raised malloc thresholds; every other one with glibc's initial ones
KEPT = {"current", "keep-freed-memory", "current+sgd-foreach"}
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def set_allocator(name: str) -> None:
    """Before each variant runs: its thresholds. glibc's defaults are 128 KiB for both, raised dynamically as
    large blocks are freed; setting them by hand turns that adjustment off, so "before" runs at 128 KiB."""
    kept = name in KEPT
    _LIBC.mallopt(_M_MMAP_THRESHOLD, 32 << 20 if kept else 128 << 10)
    _LIBC.mallopt(_M_TRIM_THRESHOLD, 256 << 20 if kept else 128 << 10)


def build(name: str, d: Dataset):
    replicas, transform, forward, opt = VARIANTS[name]
    m = base_model(replicas)
    if transform:
        m = transform(m)
    if forward:
        m.forward = types.MethodType(forward, m)
    t = Trainer(m, EXP.train, Schedule(EXP.train.lr, 0.1, ()), loss=fused.loss)
    if opt:
        t.optimizer = torch.optim.SGD(m.parameters(), lr=EXP.train.lr, momentum=EXP.train.momentum,
                                      weight_decay=EXP.train.weight_decay, **opt)
    stream = fused.FusedStream([BatchStream(d, EXP.train.batch_size, s) for s in range(replicas)])
    return t, stream, replicas


def fingerprint(name: str, d: Dataset, steps: int):
    set_allocator(name)
    t, s, _ = build(name, d)
    losses = [t.step(i, *s.batch(i)) for i in range(steps)]
    return torch.stack(losses), {k: v.clone() for k, v in t.model.state_dict().items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--check", type=int, default=20)
    ap.add_argument("--only", default="", help="comma-separated variants (before is always run)")
    args = ap.parse_args()
    numerics.pin_threads()
    d = data()
    names = [n for n in VARIANTS if not args.only or n in args.only.split(",") or n == "before"]
    training.keep_freed_memory = lambda: False  # this script sets the thresholds per variant
    ref_loss, ref_state = fingerprint("before", d, args.check)
    same = {}
    for n in names:
        if VARIANTS[n][0] != 3:
            same[n] = "n/a (other group)"
            continue
        loss, state = fingerprint(n, d, args.check)
        exact = torch.equal(loss, ref_loss) and all(torch.equal(state[k], ref_state[k]) for k in ref_state)
        diff = max(float((state[k].float() - ref_state[k].float()).abs().max()) for k in ref_state)
        same[n] = "yes" if exact else f"no (max |param diff| {diff:.1e} after {args.check} steps)"
    runs = {n: build(n, d) for n in names}
    batches = {n: [s.batch(i) for i in range(args.steps)] for n, (t, s, r) in runs.items()}
    for n, (t, s, r) in runs.items():
        for i in range(5):
            t.step(i, *batches[n][i])
    res = {n: [] for n in names}
    faults = {n: [] for n in names}
    for _ in range(args.rounds):
        for n, (t, s, r) in runs.items():
            set_allocator(n)
            t.step(0, *batches[n][0])  # settle the allocator under this variant's thresholds
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.perf_counter()
            for i in range(args.steps):
                t.step(i, *batches[n][i])
            res[n].append((time.perf_counter() - t0) / args.steps * 1000 / r)
            faults[n].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / args.steps)
    base = statistics.median(res["before"])
    print(f"{'variant':24s} {'ms/rep-step':>11s} {'range':>13s} {'vs before':>10s} {'faults/step':>11s}  bit-identical")
    for n in names:
        med = statistics.median(res[n])
        print(f"{n:24s} {med:11.2f} {min(res[n]):6.2f}-{max(res[n]):5.2f} {base / med:9.2f}x "
              f"{statistics.median(faults[n]):11.0f}  {same[n]}")


if __name__ == "__main__":
    main()
