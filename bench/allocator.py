"""Keep freed memory in the process instead of handing it back to the OS after every training step.

glibc's malloc serves the step's activation-sized blocks (hundreds of kB) from fresh pages and returns
them when they are freed: measured on the default preset's fused step, about 1,500 page faults a step,
and every kernel that writes a new tensor (ReLU, additions, BatchNorm) pays for touching fresh memory.
Raising the trim and mmap thresholds lets malloc reuse the same pages step after step (about 15 faults a
step). Where memory lives does not change any arithmetic (PyTorch aligns every tensor to 64 bytes either
way), so results are bit-identical; docs/performance.md has the measurement.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
# glibc refuses an mmap threshold above 32 MiB on 64-bit; a CIFAR activation of batch 128 is 8 MiB
_MMAP_THRESHOLD = 32 * 1024 * 1024
_TRIM_THRESHOLD = 256 * 1024 * 1024

_done = False


def keep_freed_memory() -> bool:
    """Set the thresholds once per process; False where the C library is not glibc (nothing changes)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    return _done
