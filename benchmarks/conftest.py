"""Benchmarks: each measured figure is paired with a plain baseline measured in the same run.

Run: .venv/bin/pytest benchmarks --benchmark-only   (not part of the test suite)
Each test stores its ratio and peak memory in benchmark.extra_info, printed at the end and kept in the
JSON report (--benchmark-json FILE).
"""

import resource

import pytest

from bench import numerics

numerics.pin_threads()  # one thread, as every experiment trains (import bench leaves the count alone)

RATIOS: list[str] = []


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux: the process's peak resident memory so far
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture
def report():
    def add(line: str) -> None:
        RATIOS.append(line)
    return add


def pytest_terminal_summary(terminalreporter):
    if RATIOS:
        terminalreporter.section("ratios against the baseline measured in the same run")
        for line in RATIOS:
            terminalreporter.write_line(line)
