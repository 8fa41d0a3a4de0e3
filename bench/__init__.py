"""earlyphase-bench: a perturbation benchmark for the early phase of training."""

from __future__ import annotations

import sys
from typing import Any

# first, before anything imports torch: pin the kernels the numbers depend on, so a result reproduces bit for
# bit on machines of its kernel class, the same CPU model (docs/reproducibility.md). Env vars only: importing
# bench loads no torch and leaves the caller's thread count alone; every experiment pins the thread count
# before it trains.
from bench import numerics

numerics.TORCH_BEFORE_BENCH = "torch" in sys.modules
numerics.pin_env()

__all__ = ["hookimpl", "__version__"]


def __getattr__(name: str) -> Any:
    # looked up on first use (`from bench import hookimpl` in a plugin, bench.__version__): importing bench
    # itself stays at the pins, so `bench --help` starts in a tenth of a second and Ctrl-C finds the CLI sooner
    if name == "hookimpl":
        from bench.hookspecs import hookimpl

        return hookimpl
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("earlyphase-bench")
        except PackageNotFoundError:  # running from a source tree that is not installed
            return "0+unknown"
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
