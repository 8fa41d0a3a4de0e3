"""Pin what a CPU training run's numbers depend on, and describe it for result files.

Measured on torch 2.14.1 (MKL 2024.2, oneDNN 3.12) on an AMD EPYC (AVX2); see docs/reproducibility.md.
One fused training step of the default model runs three libraries, and each picks kernels by itself:

* oneDNN (every convolution, forward and both backwards): picks its JIT ISA from the CPU
  (AVX-512 on an AVX-512 Xeon); ``ONEDNN_MAX_CPU_ISA`` caps it. Its backward-weights reduction is
  split by thread count, so results also change with ``torch.get_num_threads()``.
* MKL (the grouped classifier's einsum -> batched SGEMM): picks a code path per CPU;
  ``MKL_CBWR`` fixes it (it changes numbers even on this AVX2 machine versus ``AUTO``).
* ATen native kernels (BatchNorm, mean, cross-entropy, the SGD update): vectorised per
  ``ATEN_CPU_CAPABILITY``, chosen at startup (AVX-512 where the CPU and build have it).

``pin()`` caps all three at AVX2 and fixes the thread count. The env vars are read by the libraries
at their first use, not at ``import torch`` (measured), but ``pin_env()`` is meant to run before torch is
imported, from ``bench/__init__.py``, so no code path can run an op first. A value the user already
set in the environment wins (``setdefault``); ``describe()`` records what was in effect.

The thread count needs torch, so ``import bench`` leaves it alone (listing presets or reading results
never loads torch): every experiment pins it before it trains (``experiments/setup.prepare``), and
``pinned()`` pins both for one block and puts back what it changed (the Python API, ``bench/api.py``).
"""

from __future__ import annotations

import contextlib
import os
import platform
from typing import Iterator

#: the thread count every run uses; results differ between thread counts (see module docstring)
THREADS = 1
#: env var -> pinned value
PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2",
}
THREADS_ENV = "BENCH_NUM_THREADS"
OFF_ENV = "BENCH_NO_PIN"  # set to 1 to leave every library at its own choice (not reproducible)


def _pinning() -> bool:
    return os.environ.get(OFF_ENV, "") in ("", "0")


#: the env vars bench set in this process (not the user's own), which ``pinned()`` removes again
_SET_BY_BENCH: set[str] = set()
#: whether torch was already loaded when bench was first imported: its kernels may then be unpinned ones
TORCH_BEFORE_BENCH = False


def pin_env() -> list[str]:
    """Set the pinned env vars that are not set yet, without importing torch; return the ones it set."""
    if not _pinning():
        return []
    added = [key for key in (*PINS, THREADS_ENV) if key not in os.environ]
    for key, value in PINS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault(THREADS_ENV, str(THREADS))
    _SET_BY_BENCH.update(added)
    return added


def pin() -> None:
    """Set the pinned env vars (unless already set) and, if torch is imported, the thread count.

    Safe to call more than once. Call it before ``import torch``; ``pin_threads()`` must also run
    once torch is imported (``pin()`` does it when torch is already loaded).
    """
    if not _pinning():
        return
    pin_env()
    import sys

    if "torch" in sys.modules:
        pin_threads()


def thread_count() -> int:
    return int(os.environ.get(THREADS_ENV, THREADS))


def pin_threads() -> None:
    """Fix torch's intra-op thread count (also used by oneDNN and MKL)."""
    if not _pinning():
        return
    import torch

    n = thread_count()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


@contextlib.contextmanager
def pinned() -> Iterator[None]:
    """The pins in effect for the block (env vars and torch's thread count), then put back as they were
    before bench was imported (the env vars bench set are removed; the user's own are never touched).

    What cannot be put back: each library fixes its kernel choice at its first use in the process (oneDNN's
    ISA, MKL's code path, ATen's capability), so once something trained here, later torch work in this
    process keeps the AVX2 kernels whatever the env vars say afterwards.
    """
    pin_env()
    import torch

    threads = torch.get_num_threads()
    pin_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        for key in sorted(_SET_BY_BENCH):  # those import bench set too: the caller's env as it was before bench
            os.environ.pop(key, None)
        _SET_BY_BENCH.clear()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> dict:
    """What to record in every result file to judge whether two runs can be bit-identical."""
    import torch

    env = {k: os.environ.get(k) for k in (*PINS, "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
                                          "MKL_DEBUG_CPU_TYPE", THREADS_ENV, OFF_ENV)}
    return {
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_model": cpu_model(),
        "machine": platform.machine(),
        "pinned": _pinning(),
        "env": env,
        "threads": torch.get_num_threads(),
        "mkldnn": bool(torch.backends.mkldnn.enabled),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }
