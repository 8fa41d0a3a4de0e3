"""Verification records: what a recorded ``bench verify --record`` re-proved, which the leaderboard marks.

A verification record is a small JSON file in a ``verified/`` folder under a results folder, written next to
the result files it is about (``<the folder the result was loaded from>/verified/``). It names the result file,
the sha256 of its bytes, the verdict, the code that re-ran it, when, and on which kernel class. The leaderboard
reads every ``verified/*.json`` under the folders it is given (never as results) and counts, per row, the
files whose current bytes have an ``exact`` verification: an edited file loses its mark. Like a result file,
a verification record is a claim in a file: it is evidence because anyone can re-run ``bench verify`` on the
same file and CI re-runs a sample (tests/test_committed_results.py).
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any, Iterable

from bench.results import MAX_BYTES, VERIFIED_DIR, Problem, parse

VERSION = 1
STATUSES = ("exact", "within tolerance", "mismatch")
_SHA = re.compile(r"^[0-9a-f]{64}$")


def sha256_of(path: Path) -> str:
    """The sha256 of a result file's bytes (read with the result files' size cap)."""
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read(MAX_BYTES + 1)).hexdigest()


def _problems(record: Any) -> list[str]:
    if not isinstance(record, dict):
        return [f"expected a JSON object, found {type(record).__name__}"]
    if record.get("verification_version") != VERSION:
        return [f"verification_version must be {VERSION}"]
    out = []
    for key in ("file", "hardware", "created"):
        if not isinstance(record.get(key), str):
            out.append(f"{key} must be a string")
    if not isinstance(record.get("sha256"), str) or not _SHA.match(record["sha256"]):
        out.append("sha256 must be 64 lowercase hex digits")
    if record.get("status") not in STATUSES:
        out.append(f"status must be one of {', '.join(STATUSES)}")
    if not isinstance(record.get("code"), dict):
        out.append("code must be an object")
    return out


def _records(folder: Path) -> list[Path]:
    if folder.is_file():
        return []
    return sorted((p for p in folder.rglob(f"{VERIFIED_DIR}/*.json") if p.is_file()),
                  key=lambda p: p.relative_to(folder).as_posix())


def read(folders: Iterable[Path]) -> tuple[frozenset[str], list[Problem]]:
    """The sha256 digests of the result files re-proved exactly, and a problem for every unreadable record."""
    exact: set[str] = set()
    problems: list[Problem] = []
    for folder in folders:
        for path in _records(folder):
            source = path.relative_to(folder).as_posix()
            try:
                if path.stat().st_size > MAX_BYTES:
                    raise ValueError(f"file is over {MAX_BYTES:,} bytes; a verification record is a few hundred")
                record = parse(path.read_bytes())
                reasons = _problems(record)
            except (OSError, ValueError) as exc:
                reasons = [str(exc)]
            if reasons:
                problems.append(Problem(path, source, "not a valid verification record: " + "; ".join(reasons)))
            elif record["status"] == "exact":
                exact.add(record["sha256"])
    return frozenset(exact), problems


def root_of(path: Path, source: str) -> Path:
    """The folder a result was loaded from (its ``source`` is relative to it; a file named alone: its folder)."""
    return path.parents[len(Path(source).parts) - 1]


def write(path: Path, source: str, verdict: dict[str, Any], hardware: str, recorded_hardware: str,
          tolerance: float) -> Path:
    """Record that ``bench verify`` re-ran the result at ``path`` (loaded as ``source``), with its verdict."""
    from bench.cache import save_json
    from bench.config import digest
    from bench.provenance import code_version

    sha = sha256_of(path)
    out = root_of(path, source) / VERIFIED_DIR / f"{sha[:16]}-{digest(hardware, 8)}.json"
    save_json(out, {
        "verification_version": VERSION, "file": source, "sha256": sha, "status": verdict["status"],
        "largest_accuracy_difference": verdict["largest_accuracy_difference"],
        "first_differing_stage": verdict["first_differing_stage"], "tolerance": tolerance,
        "hardware": hardware, "recorded_hardware": recorded_hardware, "code": code_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    return out
