"""earlyphase-bench: a perturbation benchmark for the early phase of training."""

from importlib.metadata import PackageNotFoundError, version

from bench.hookspecs import hookimpl

try:
    __version__ = version("earlyphase-bench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["hookimpl", "__version__"]
