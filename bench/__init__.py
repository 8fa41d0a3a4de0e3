"""earlyphase-bench: a perturbation benchmark for the early phase of training."""

from importlib.metadata import PackageNotFoundError, version

# first, before anything imports torch: pin the kernels and the thread count the numbers depend on, so a
# result reproduces bit for bit on any x86-64 CPU with AVX2 (docs/reproducibility.md)
from bench import numerics

numerics.pin()
numerics.pin_threads()  # imports torch, after the pins

from bench.hookspecs import hookimpl  # noqa: E402

try:
    __version__ = version("earlyphase-bench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["hookimpl", "__version__"]
