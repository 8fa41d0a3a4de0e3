"""What makes a finished stage trustworthy: its files are the ones it wrote, it was built on the stages that are
there now, and it was trained in this process's numerics class.

A stage's record (``done.json``) names the sha256 fingerprint of every file the stage wrote (``files``) and of
every file of another stage it was built from (``inputs``, paths relative to the replicate's folder). A file
that was damaged, deleted or swapped, or a stage whose inputs were retrained since, makes the stage invalid: it
is recomputed in its seed group (bench.execute.run_stage). Records written before these fields: their files
must exist, their contents are trusted as before.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

from bench import paths
from bench.cache import load_tensors, move_aside, read_record
from bench.errors import BenchError
from bench.provenance import fingerprint, same_class

# files of a stage folder that are resume points, not part of what the stage produced
_NOT_PRODUCTS = (paths.CHECKPOINT, paths.PRETRAIN_CHECKPOINT)
# a file's fingerprint, kept while the file is unchanged (a stage is read several times in one run)
_KNOWN: dict[tuple[str, int, int], str] = {}


def file_fingerprint(path: Path) -> str:
    """The sha256 fingerprint of a tensor file's tensors (bench.provenance.fingerprint), or BenchError."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _KNOWN:
        _KNOWN[key] = fingerprint(load_tensors(path))
    return _KNOWN[key]


def product_files(folder: Path) -> list[Path]:
    """The tensor files a stage wrote into its folder (not its checkpoints, not subfolders)."""
    return sorted(p for p in folder.glob("*.pt") if p.name not in _NOT_PRODUCTS and p.is_file())


def stage_files(folder: Path) -> dict[str, str]:
    """``files`` of a finishing stage's record: the fingerprint of every tensor file it leaves."""
    return {p.name: file_fingerprint(p) for p in product_files(folder)}


def recorded_fingerprint(path: Path) -> str | None:
    """The fingerprint the record of the stage that made ``path`` gives it (None: no such record or field)."""
    record, problem = read_record(path.parent / paths.DONE) if (path.parent / paths.DONE).is_file() else (None, "")
    if problem is not None or not isinstance(record.get("files"), dict):
        return None
    return record["files"].get(path.name)


def inputs(root: Path, files: list[Path]) -> dict[str, str]:
    """``inputs`` of a stage built from ``files`` (under the replicate folder ``root``): their recorded
    fingerprints; files whose stage recorded none are left out (trusted, as before fingerprints)."""
    found = {}
    for path in files:
        fp = recorded_fingerprint(path)
        if fp is not None:
            found[path.relative_to(root).as_posix()] = fp
    return found


def expected_files(record: dict, folder: Path) -> list[str]:
    """The files a finished stage must still have (what later stages load from it)."""
    if isinstance(record.get("files"), dict):
        return sorted(record["files"])
    # a record from before ``files``: the trunk's and the tickets' files by their stage
    if record.get("stage") == "trunk":
        return [paths.W0, paths.WK, paths.FINAL]
    if record.get("stage") == "level":
        return [paths.MASK, paths.FINAL] if record.get("level") else [paths.FINAL]
    return []


def files_problem(record: dict, folder: Path, root: Path | None = None) -> str | None:
    """Why a finished stage's files or inputs are not those its record names, or None."""
    for name in expected_files(record, folder):
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        want = record.get("files", {}).get(name)
        if want is not None:
            try:
                got = file_fingerprint(path)
            except BenchError:
                return f"{name} cannot be read"
            if got != want:
                return f"{name} is not the file this stage wrote (fingerprint {got[:12]}, recorded {want[:12]})"
    for key, want in (record.get("inputs") or {}).items():
        if root is None:
            break
        now = recorded_fingerprint(root / key)
        if now is not None and now != want:
            return f"it was built on {key}, which was retrained since"
    return None


def check_class(record: dict, here: str, folder: Path) -> None:
    """Refuse to work on top of a stage trained in another numerics class: a drop would measure the kernels."""
    there = record.get("hardware")
    if not same_class(there, here):
        raise BenchError(f"{folder} was trained in numerics class {there}, this process runs in {here}: one cache "
                         f"holds one class; use another --cache-dir for this class, or unset BENCH_NO_PIN and "
                         f"BENCH_NUM_THREADS to run in the cache's class.")


def invalidate(folder: Path, why: str, keep_record: bool = False) -> None:
    """Make a stage recompute: its record moved aside (kept for inspection) or removed, its files removed (a
    snapshot is never rewritten over an existing file, so a bad one would survive the retraining)."""
    done = folder / paths.DONE
    if done.exists() and keep_record:
        move_aside(done, why)
    else:
        done.unlink(missing_ok=True)
        warnings.warn(f"{folder}: {why}; recomputing it.", stacklevel=2)
    for path in product_files(folder):
        path.unlink(missing_ok=True)
    states = folder / "states"  # the trunk's replayed states: retraced again from the new trunk when needed
    if states.is_dir() and not states.is_symlink():
        shutil.rmtree(states, ignore_errors=True)


def group_of(folder: Path, base: Path, seed: int) -> list[int] | None:
    """The seed group a sibling's record of the same stage names for ``seed`` (None when none does);
    ``base`` is the experiment's folder, holding one ``seed-<s>`` folder per replicate."""
    try:
        relative = folder.relative_to(base / f"seed-{seed}")
        siblings = sorted(e.name for e in os.scandir(base) if e.name.startswith("seed-") and e.is_dir())
    except (OSError, ValueError):  # ValueError: a stage outside the replicate's folder has no siblings
        return None
    for name in siblings:
        done = base / name / relative / paths.DONE
        if name == f"seed-{seed}" or not done.is_file():
            continue
        record, problem = read_record(done)
        group = record.get("trained_with_seeds") if problem is None else None
        if isinstance(group, list) and seed in group and len(group) > 1:
            return group
    return None
