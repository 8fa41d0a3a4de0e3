"""`bench instability`'s path walks: two workers (one seed group each, walking their own group's paths)
against one process walking every path, the same records (tests/test_instability.py checks them bit for bit).

The networks are trained once, outside the timing; each round deletes the stored instability records and
walks every path again. Preset from $BENCH_BENCHMARK_PRESET (default: the default preset; `smoke` for a quick
check); 6 seeds (2 groups of 3), the dense network at the preset's k, 30 points, BatchNorm recomputed.
"""

import os
from dataclasses import replace
import shutil
import time

from bench import paths
from bench.experiments.instability import run_instability
from bench.experiments.setup import RunOptions
from bench.presets import DEFAULT_PRESET, get_preset

from conftest import peak_rss_mb


def test_instability_path_walks_two_workers(benchmark, report, tmp_path):
    preset = get_preset(os.environ.get("BENCH_BENCHMARK_PRESET", DEFAULT_PRESET))
    options = RunOptions(cache=tmp_path, device="cpu", group_size=3)

    def walk(workers):
        for folder in paths.results_dir(tmp_path).glob("*/instability"):  # the records only: stages stay cached
            shutil.rmtree(folder)
        return run_instability(preset, replace(options, workers=workers), seeds=6, ks_text=preset.experiment.rewind,
                               ticket=False)

    walk(2)  # trains the networks (and warms the page cache)
    t0 = time.perf_counter()
    alone = walk(1)
    one_process = time.perf_counter() - t0
    side = benchmark.pedantic(lambda: walk(2), rounds=1, iterations=1)
    assert [r["barrier"] for r in side.records] == [r["barrier"] for r in alone.records]
    two = benchmark.stats.stats.median
    benchmark.extra_info.update(one_process_s=one_process, two_workers_s=two, speedup=one_process / two,
                                peak_rss_mb=peak_rss_mb())
    report(f"instability path walks ({preset.name}, 6 seeds, dense at k): two workers {two:.1f} s vs one process "
           f"{one_process:.1f} s -> {one_process / two:.2f}x")
