"""Interleaved rounds on one machine: the Conv1d twin, the harness layout (1 x 3 Conv2d, channels_last) eager,
and the same compiled (torch.compile, inductor); 5 fused replicates, 100 steps per round, 5 rounds, medians.
Interleaving puts every variant under the same background load, which single pytest-benchmark runs on a shared
VM do not (docs/performance.md).  .venv/bin/python scripts/layout_compile_rounds.py"""
import sys, time, statistics
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parent.parent / 'benchmarks'))
import bench, torch
bench.numerics.pin_threads()  # one thread, as every experiment trains (import bench leaves the count alone)
from test_training_speed import _mnist1d, _Plain1d, _trainer, REPLICAS
from bench import fused
exp, data = _mnist1d()
def mk(kind):
    m = fused.build(exp.model, 1, 10, REPLICAS)
    if kind == "conv1d": m = _Plain1d(m)
    return _trainer(m, data, REPLICAS, compile_=(kind == "compiled"))
runs = {k: mk(k) for k in ("conv1d", "2d", "compiled")}
for k, (t, s) in runs.items():
    for i in range(5): t.step(i, *s.batch(i))  # warm (compiles)
res = {k: [] for k in runs}
for r in range(5):
    for k, (t, s) in runs.items():
        t0 = time.perf_counter()
        for i in range(100): t.step(i, *s.batch(i))
        res[k].append((time.perf_counter() - t0) / 100 * 1000)
for k, v in res.items(): print(k, "median ms/it", round(statistics.median(v), 1), [round(x, 1) for x in v])
