"""A full `bench run` (trunk, IMP levels, one perturbation) with 3 seeds: fused against one seed at a time.

Both start from an empty cache (the dataset is generated once, outside the timing). Preset from
$BENCH_BENCHMARK_PRESET (default: the default preset; `smoke` for a quick check).
"""

import os
import time

import torch

from bench.data import load_dataset
from bench.presets import DEFAULT_PRESET, get_preset
from bench.experiments.perturb import run_perturbation
from bench.experiments.setup import RunOptions

from conftest import peak_rss_mb


def test_full_run_three_seeds(benchmark, report, tmp_path):
    preset = get_preset(os.environ.get("BENCH_BENCHMARK_PRESET", DEFAULT_PRESET))
    data_dir = tmp_path / "data"
    load_dataset(preset.experiment.data, data_dir, torch.device("cpu"))
    runs = iter(range(100))

    def go(group_size):
        cache = tmp_path / f"cache-{next(runs)}"
        options = RunOptions(cache=cache, device="cpu", data_dir=data_dir, group_size=group_size)
        return run_perturbation(preset, "shuffle-layer", {}, options, seeds=3)

    t0 = time.perf_counter()
    go(1)
    one_at_a_time = time.perf_counter() - t0
    benchmark.pedantic(lambda: go(3), rounds=1, iterations=1)
    fused = benchmark.stats.stats.median
    benchmark.extra_info.update(one_at_a_time_s=one_at_a_time, fused_s=fused, speedup=one_at_a_time / fused,
                                peak_rss_mb=peak_rss_mb())
    report(f"full `bench run` ({preset.name}, 3 seeds): fused {fused:.0f} s vs one seed at a time "
           f"{one_at_a_time:.0f} s -> {one_at_a_time / fused:.2f}x (peak RSS {peak_rss_mb():.0f} MB)")
