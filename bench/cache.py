"""Where things are stored, and atomic writes so an interrupted run never leaves a half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import platformdirs
import torch

ENV_CACHE = "BENCH_CACHE_DIR"


def cache_root(explicit: str | os.PathLike | None = None) -> Path:
    """``--cache-dir``, else ``$BENCH_CACHE_DIR``, else the platform's user cache folder."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    return Path(platformdirs.user_cache_dir("earlyphase-bench"))


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_json(path: Path, data: Any) -> None:
    _atomic(path, lambda h: h.write((json.dumps(data, indent=2, sort_keys=True) + "\n").encode()))


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def save_tensors(path: Path, data: Any) -> None:
    _atomic(path, lambda h: torch.save(data, h))


def load_tensors(path: Path, device: str | torch.device = "cpu") -> Any:
    # weights_only: a checkpoint is data and must never run code when loaded
    return torch.load(path, map_location=device, weights_only=True)
