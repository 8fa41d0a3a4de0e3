"""The CPU kernel settings a training run's rounding depends on, recorded with every result."""

from __future__ import annotations

import os
from typing import Any

import torch

# environment variables that select which kernels torch, oneDNN and MKL run
KNOBS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS")


def describe() -> dict[str, Any]:
    """What to record beside a CPU result: the kernel capability torch dispatches, threads, library knobs."""
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "mkldnn": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
            **{k.lower(): os.environ[k] for k in KNOBS if k in os.environ}}
