"""Per-op fingerprints on fixed inputs: which op's numbers move with a knob.

Prints one JSON line {op: sha256[:12]} for forward and backward of each op the default model's
training step runs (fused, 3 replicates, batch 128, length 40). Knobs come from the environment
and --threads / --no-mkldnn.
"""
import argparse, hashlib, json
ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=0)
ap.add_argument("--no-mkldnn", action="store_true")
ap.add_argument("--set-env-after-import", nargs="*", default=[])
args = ap.parse_args()
import os
import torch
import torch.nn.functional as F
for kv in args.set_env_after_import:
    k, v = kv.split("=", 1)
    os.environ[k] = v
if args.threads:
    torch.set_num_threads(args.threads)
if args.no_mkldnn:
    torch.backends.mkldnn.enabled = False
g = torch.Generator().manual_seed(0)
R, N, L = 3, 128, 40

def h(*ts):
    d = hashlib.sha256()
    for t in ts:
        d.update(t.detach().contiguous().numpy().tobytes())
    return d.hexdigest()[:12]

out = {}
def conv(name, cin, cout, k, stride, pad, length):
    x = torch.randn(N, cin * R, 1, length, generator=g).squeeze(2).requires_grad_()
    w = (torch.randn(cout * R, cin, k, generator=g) * 0.3).requires_grad_()
    y = F.conv1d(x, w, stride=stride, padding=pad, groups=R)
    gy = torch.randn(y.shape, generator=g)
    gx, gw = torch.autograd.grad(y, (x, w), gy)
    out[name + ".fwd"], out[name + ".dx"], out[name + ".dw"] = h(y), h(gx), h(gw)
conv("conv_stem", 1, 8, 3, 1, 1, 40)
conv("conv8", 8, 8, 3, 1, 1, 40)
conv("conv8to16_s2", 8, 16, 3, 2, 1, 40)
conv("conv16", 16, 16, 3, 1, 1, 20)
conv("short1x1_s2", 8, 16, 1, 2, 0, 40)
conv("conv32", 32, 32, 3, 1, 1, 10)

x = torch.randn(N, 16 * R, 20, generator=g).requires_grad_()
w = torch.ones(16 * R, requires_grad=True); b = torch.zeros(16 * R, requires_grad=True)
rm, rv = torch.zeros(16 * R), torch.ones(16 * R)
y = F.batch_norm(x, rm, rv, w, b, training=True)
gy = torch.randn(y.shape, generator=g)
gx, gw, gb = torch.autograd.grad(y, (x, w, b), gy)
out["bn.fwd"], out["bn.running"], out["bn.dx"], out["bn.dwb"] = h(y), h(rm, rv), h(gx), h(gw, gb)

x = torch.randn(N, 32 * R, 10, generator=g).requires_grad_()
m = x.flatten(2).mean(-1)
out["mean.fwd"] = h(m)
W = torch.randn(R * 10, 32, generator=g).requires_grad_()
o = torch.einsum("nri,roi->nro", m.view(N, R, -1), W.view(R, 10, -1)).reshape(N, -1)
yl = torch.randint(0, 10, (N, R), generator=g)
loss = F.cross_entropy(o.view(N, R, -1).permute(0, 2, 1), yl, reduction="sum") / N
gx, gW = torch.autograd.grad(loss, (x, W))
out["einsum.fwd"], out["loss"], out["einsum.dW"], out["mean+einsum.dx"] = h(o), h(loss), h(gW), h(gx)

p = torch.randn(10000, generator=g); gp = torch.randn(10000, generator=g)
opt = torch.optim.SGD([p.requires_grad_()], lr=0.1, momentum=0.9, weight_decay=1e-4)
for _ in range(3):
    p.grad = gp.clone(); opt.step()
out["sgd"] = h(p)
print(json.dumps(out))
