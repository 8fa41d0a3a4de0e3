"""What makes a result reproducible and checkable: the code, the protocol, the machine, the fingerprints.

PROTOCOL_VERSION is bumped whenever the harness's numerics change on purpose (a new initialiser, a new data
layout, a new kernel setting): results of another protocol are not comparable and the leaderboard shows them
apart. Fingerprints are sha256 digests of tensors, so two results that claim the same W_k or mask can be
checked without the tensors themselves.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import bench

if TYPE_CHECKING:  # torch is imported where a function needs it: the leaderboard reads records without it
    import torch

PROTOCOL_VERSION = 2


def fingerprint(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes, in name order: equal iff the tensors are bit-identical."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


@lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """The package version and, when bench runs from a git checkout, the commit and whether it was dirty."""
    out: dict[str, Any] = {"bench_version": bench.__version__}
    root = Path(bench.__file__).resolve().parent.parent
    if (root / ".git").exists():
        try:
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                    timeout=10).stdout.strip()
            status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10).stdout
            if commit:
                out.update(git_commit=commit, git_dirty=bool(status.strip()))
        except (OSError, subprocess.SubprocessError):
            pass  # no git here: the package version is all there is to say
    return out


def hardware(device: torch.device) -> dict[str, Any]:
    """The machine as far as rounding is concerned: on CPU its model, the kernel capability torch dispatches
    (AVX2, AVX512, ...), the thread count and the pinned library settings; on CUDA the GPU model."""
    import torch

    from bench import numerics

    if device.type == "cuda":
        return {"device": str(device), "device_name": torch.cuda.get_device_name(device),
                "cuda_version": torch.version.cuda}
    info = numerics.describe()
    settings = {k.lower(): v for k, v in info.pop("env").items() if v is not None}
    info.pop("torch", None)  # recorded as torch_version
    return {"device": str(device), "device_name": info.pop("cpu_model"), **info, **settings}


def hardware_class(device: torch.device | str) -> str:
    """One string per class of machine whose kernels round alike (docs/reproducibility.md): on CPU the kernel
    capability torch dispatches (AVX2, AVX512, ...), on CUDA the GPU model. A branch must train in its
    ticket's class: early training amplifies rounding, so across classes a drop would measure the hardware."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    from bench.numerics import cpu_model

    # oneDNN splits its reductions by thread count, so the count is part of the class; and the same pinned
    # AVX2 kernels round differently on another CPU model (measured: an Intel AVX-512 Xeon's W_k differs from
    # an AMD EPYC's after 10 smoke iterations, W_0 equal), so the model is part of it too
    return cpu_class(torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(), cpu_model())


def cpu_class(capability: str, threads: int | str | None, model: str | None) -> str:
    """The CPU kernel class string; records written before the CPU model was part of it have no model."""
    base = f"cpu:{capability}:threads={threads}"
    return f"{base}:{model}" if model else base


def record_class(record: Mapping[str, Any]) -> str:
    """The kernel class a stored result was trained on, from its recorded environment."""
    env = record.get("environment", {})
    if str(env.get("device", "")).startswith("cuda"):
        return f"cuda:{env.get('device_name')}"
    if "cpu_capability" not in env:
        return "cpu:unrecorded"  # records before provenance was recorded
    return cpu_class(env["cpu_capability"], env.get("threads"), env.get("device_name"))


def same_class(recorded: str | None, here: str) -> bool:
    """Whether a stage trained in class ``recorded`` can be paired with work in class ``here``. A class
    recorded before the CPU model was part of it matches any model with the same capability and threads."""
    if recorded is None or recorded == here:
        return True
    return recorded.startswith("cpu:") and recorded.count(":") == 2 and here.startswith(recorded + ":")


def environment(device: torch.device) -> dict[str, Any]:
    """Versions and hardware, stored with every result."""
    import torch

    return {**code_version(), "protocol_version": PROTOCOL_VERSION, "torch_version": torch.__version__,
            "python_version": platform.python_version(), "platform": sys.platform, **hardware(device)}
