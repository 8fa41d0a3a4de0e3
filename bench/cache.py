"""Where things are stored, and atomic writes so an interrupted run never leaves a half-written file."""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from bench.errors import BenchError

if TYPE_CHECKING:
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


# the most bytes a JSON file of the cache is read to: a stage record is a few hundred bytes, so anything larger
# is not one (a symlink to /dev/zero would otherwise be read until memory runs out)
MAX_JSON_BYTES = 1 << 20


def read_capped(path: Path, limit: int = MAX_JSON_BYTES) -> bytes:
    """The bytes of ``path``, or ValueError when it holds more than ``limit`` (never reading past it)."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} holds more than {limit:,} bytes, far more than any file of this kind")
    return data


def load_json(path: Path) -> Any:
    try:
        return json.loads(read_capped(path))
    except ValueError as exc:
        if "more than" not in str(exc):
            raise  # malformed JSON: the callers that tolerate it catch ValueError
        raise BenchError(f"{exc}: it is not a bench file; delete it.") from None


def save_tensors(path: Path, data: Any) -> None:
    import torch  # here: reading results and listing the cache never load torch

    _atomic(path, lambda h: torch.save(data, h))


def load_tensors(path: Path, device: str | torch.device = "cpu") -> Any:
    import torch

    # weights_only: a checkpoint is data and must never run code when loaded
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        # only the type: torch's own message advises weights_only=False, wrong advice for a file that may be hostile
        raise BenchError(f"{path} cannot be read ({type(exc).__name__}): it is corrupt or not a bench file; "
                         f"delete it or run `bench cache doctor --fix`.") from None


def record_problem(record: Any) -> str | None:
    """Why a stage's done.json content cannot be trusted, or None: a hand-edited or damaged accuracy would
    otherwise become a silently wrong drop."""
    if not isinstance(record, dict):
        return f"expected a JSON object, found {type(record).__name__}"
    acc = record.get("accuracy")
    if record.get("test_evaluated") is False:  # a validation-only search stage: no test number, a validation one
        if acc is not None or record.get("ticket_accuracy") is not None:
            return "a stage trained without test evaluation carries a test accuracy"
        if not _number(record.get("val_accuracy")):
            return "a stage trained without test evaluation has no numeric 'val_accuracy'"
        return _field_problem({k: v for k, v in record.items() if k != "ticket_accuracy"}, without_test=True)
    if "test_evaluated" in record and record["test_evaluated"] is not True:
        return f"'test_evaluated' is {record['test_evaluated']!r}, not false (or absent)"
    if isinstance(acc, bool) or not isinstance(acc, (int, float)):
        return "no numeric 'accuracy'"
    if not math.isfinite(acc) or not 0 <= acc <= 100:
        return f"accuracy {acc} is not a percentage in [0, 100]"
    return _field_problem(record)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# what a stage of each kind writes (bench.stages.Replicate.finisher): a record without one of them is not one
_REQUIRED = {"trunk": ("seconds",), "level": ("seconds",), "rewind": ("seconds",),
             "branch": ("seconds", "ticket_accuracy", "generator_seed", "effective_std", "relative_change")}


def _field_problem(record: dict, without_test: bool = False) -> str | None:
    """Why a stage record's other fields cannot be trusted: each reaches a result (a drop, a timing, a group)."""
    for name in _REQUIRED.get(record.get("stage"), ()):  # type: ignore[arg-type]
        if name not in record and not (without_test and name == "ticket_accuracy"):
            return f"no '{name}'"
    checks = {
        "seconds": lambda v: _number(v) and v >= 0,
        "val_accuracy": lambda v: v is None or (_number(v) and 0 <= v <= 100),
        "ticket_accuracy": lambda v: _number(v) and 0 <= v <= 100,
        "effective_std": lambda v: v is None or (_number(v) and v >= 0),
        "relative_change": lambda v: v is None or (_number(v) and v >= 0),
        "generator_seed": _integer, "seed": lambda v: _integer(v) and v >= 0,
        "replicas_trained_together": lambda v: _integer(v) and v >= 1,
        "trained_with_seeds": lambda v: (isinstance(v, list) and bool(v) and all(_integer(s) and s >= 0 for s in v)
                                         and len(set(v)) == len(v)),
        "hardware": lambda v: v is None or isinstance(v, str),
        "sparsity": lambda v: isinstance(v, dict) and _number(v.get("density")) and 0 <= v["density"] <= 1,
        "files": lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(f, str) for k, f in v.items()),
        "inputs": lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(f, str) for k, f in v.items()),
    }
    for name, ok in checks.items():
        if name in record and not ok(record[name]):
            return f"invalid '{name}': {str(record[name])[:40]!r}"
    seeds, seed = record.get("trained_with_seeds"), record.get("seed")
    if seeds is not None and seed is not None and seed not in seeds:
        return f"'trained_with_seeds' {seeds} does not hold its own seed {seed}"
    return None


def read_record(path: Path) -> tuple[Any, str | None]:
    """A done.json's content and why it is unusable (None when it is usable)."""
    try:
        record = json.loads(read_capped(path))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        if "more than" in str(exc):  # read_capped: a huge file (or /dev/zero) is no record
            return None, f"larger than {MAX_JSON_BYTES:,} bytes"
        return None, f"not readable JSON ({type(exc).__name__})"
    return record, record_problem(record)


def move_aside(path: Path, why: str) -> Path:
    """Rename a bad file to ``<name>.corrupt-<UTC time>`` (kept for inspection, no longer used) and say so."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.replace(path, target)
    warnings.warn(f"{path}: {why}; moved aside to {target.name}, recomputing.", stacklevel=2)
    return target
