"""earlyphase-bench: a perturbation benchmark for the early phase of training."""

import sys
from importlib.metadata import PackageNotFoundError, version

# first, before anything imports torch: pin the kernels the numbers depend on, so a result reproduces bit for
# bit on any x86-64 CPU with AVX2 (docs/reproducibility.md). Env vars only: importing bench loads no torch and
# leaves the caller's thread count alone; every experiment pins the thread count before it trains.
from bench import numerics

numerics.TORCH_BEFORE_BENCH = "torch" in sys.modules
numerics.pin_env()

from bench.hookspecs import hookimpl  # noqa: E402

try:
    __version__ = version("earlyphase-bench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["hookimpl", "__version__"]
