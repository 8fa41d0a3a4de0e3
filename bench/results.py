"""Reading stored result records: JSON only, validated against the versioned schema in bench/schemas.

Below both the experiments (which validate a record before writing it) and the reports (which read
them), so neither layer imports the other.

A result file is data written by ``bench run`` (or handed in by a contributor). Loading parses it with
``json.loads`` and nothing else, so no file can run code; a file that is not valid, is truncated, breaks
the schema or contradicts itself is reported by path and skipped, or refused when ``strict`` is set.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from jsonschema import Draft202012Validator

from bench.cache import read_capped
from bench.errors import BenchError

SCHEMA_VERSIONS = (1, 2)  # 1: before protocol versions and fingerprints; read, never ranked
INSTABILITY = "instability"  # the kind of a bench instability record: its own schema (schemas/instability-v1.json)
INSTABILITY_VERSIONS = (1,)
STABLE_BELOW = 2.0  # points of test-error barrier under which a network counts as stable (Frankle et al. 2020)
MAX_BYTES = 1 << 20  # a real record is a few KiB; anything far larger is not one and is not parsed
_MESSAGE_CHARS = 300  # hostile files can carry huge strings; keep reports readable
VERIFIED_DIR = "verified"  # verification records (bench.report.verified), kept apart from the result files


@dataclass(frozen=True)
class Result:
    data: dict[str, Any]  # the validated record
    path: Path  # the file as found on disk (for messages to the user)
    source: str  # its path relative to the results folder it came from (for rendered, reproducible output)


@dataclass(frozen=True)
class Problem:
    path: Path
    source: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Loaded:
    results: list[Result] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)

    @property
    def files(self) -> int:
        return len(self.results) + len(self.problems)


@lru_cache(maxsize=None)
def schema(version: int = 1, kind: str = "result") -> dict[str, Any]:
    text = resources.files("bench").joinpath(f"schemas/{kind}-v{version}.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=None)
def _validator(version: int, kind: str = "result") -> Draft202012Validator:
    return Draft202012Validator(schema(version, kind))


def is_instability(record: dict[str, Any]) -> bool:
    return record.get("kind") == INSTABILITY


def barrier(errors: list[float]) -> float:
    """The error barrier of a path: its largest error minus the mean of its two endpoint errors (points)."""
    return max(errors) - (errors[0] + errors[-1]) / 2


def _reject_constant(name: str) -> float:
    # json.loads accepts NaN/Infinity by default; they are not JSON and would slip past numeric bounds
    raise ValueError(f"{name} is not a valid JSON number")


def _short(text: str) -> str:
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 3] + "..."


def parse(raw: bytes) -> Any:
    """Bytes -> JSON value, or ValueError with a one-line reason. Never anything but ``json.loads``."""
    if len(raw) > MAX_BYTES:
        raise ValueError(f"file is {len(raw):,} bytes; a result record is at most {MAX_BYTES:,}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise ValueError("empty file")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON, possibly truncated (line {exc.lineno}, column {exc.colno}: {exc.msg})") \
            from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, or an integer too long to convert
        raise ValueError(f"not valid JSON: {exc}") from None


def validate(record: Any) -> list[str]:
    """Every reason ``record`` is not a usable result (empty when it is)."""
    if not isinstance(record, dict):
        return [f"expected a JSON object, found {type(record).__name__}"]
    version = record.get("schema_version")
    kind, versions = (INSTABILITY, INSTABILITY_VERSIONS) if is_instability(record) else ("result", SCHEMA_VERSIONS)
    if isinstance(version, bool) or version not in versions:
        known = ", ".join(map(str, versions))
        return [f"schema_version {_short(json.dumps(version))} is not one this bench reads for {kind} records "
                f"({known})"]
    errors = sorted(_validator(version, kind).iter_errors(record), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        return [_short(f"{'.'.join(map(str, e.absolute_path)) or '<record>'}: {e.message}") for e in errors[:3]]
    return _instability_consistency(record) if kind == INSTABILITY else _consistency(record)


def _instability_consistency(record: dict[str, Any]) -> list[str]:
    problems = [f"error.{split} has {len(record['error'][split])} points, not points = {record['points']}"
                for split in ("train", "test") if len(record["error"][split]) != record["points"]]
    if len(record["alphas"]) != record["points"]:
        problems.append(f"alphas has {len(record['alphas'])} points, not points = {record['points']}")
    if not problems:
        for split in ("train", "test"):
            expected = barrier(record["error"][split])
            if not math.isclose(record["barrier"][split], expected, abs_tol=1e-6):
                problems.append(f"barrier.{split} {record['barrier'][split]} is not max(error) - mean(endpoints) "
                                f"({expected})")
    return problems + _config_problems(record)


def _consistency(record: dict[str, Any]) -> list[str]:
    """Checks the schema cannot express: the record must agree with itself, so a hand-edited number shows."""
    problems = []
    acc = record["accuracy"]
    if not math.isclose(record["drop"], acc["ticket"] - acc["perturbed"], abs_tol=1e-6):
        problems.append(f"drop {record['drop']} is not accuracy.ticket - accuracy.perturbed "
                        f"({acc['ticket'] - acc['perturbed']})")
    return problems + _config_problems(record)


def _config_problems(record: dict[str, Any]) -> list[str]:
    from bench.config import config_hash, from_dict

    problems = []
    try:
        recomputed = config_hash(from_dict(record["config"]))
    except Exception as exc:  # unknown fields or wrong types: the config is not one this bench can rerun
        problems.append(_short(f"config cannot be read by this version of bench ({type(exc).__name__}: {exc})"))
    else:
        if recomputed != record["config_hash"]:
            problems.append(f"config_hash {record['config_hash']} does not match its config (which hashes to "
                            f"{recomputed})")
    return problems


def _files(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    # sorted so that the order of records, and so every rendered table, is independent of the filesystem
    return sorted((p for p in folder.rglob("*.json") if p.is_file()
                   and VERIFIED_DIR not in p.relative_to(folder).parts[:-1]),
                  key=lambda p: p.relative_to(folder).as_posix())


def load_results(folders: Iterable[str | Path], *, strict: bool = False, missing_ok: bool = False) -> Loaded:
    """Every valid record under ``folders`` (recursively ``*.json``), plus a problem for every other file.

    ``strict`` raises BenchError naming the bad files (the first 20) instead of skipping them. A folder that does not
    exist is an error unless ``missing_ok`` (the default cache folder before the first ``bench run``).
    """
    loaded = Loaded()
    seen: set[Path] = set()
    for given in folders:
        folder = Path(given)
        if not folder.exists():
            if missing_ok:
                continue
            raise BenchError(f"Results folder '{folder}' does not exist.")
        loaded.folders.append(folder)
        for path in _files(folder):
            real = path.resolve()
            if real in seen:  # the same file reached twice (overlapping folders) is one file
                continue
            seen.add(real)
            source = path.name if path == folder else path.relative_to(folder).as_posix()
            try:
                size = path.stat().st_size  # before reading: a huge file is refused without loading it
                if size > MAX_BYTES:
                    raise ValueError(f"file is {size:,} bytes; a result record is at most {MAX_BYTES:,}")
                record = parse(read_capped(path, MAX_BYTES))  # st_size is 0 for /dev/zero: the read is capped
                reasons = validate(record)
            except (OSError, ValueError) as exc:
                reasons = [_short(str(exc))]
            if reasons:
                loaded.problems.append(Problem(path, source, "; ".join(reasons)))
            else:
                loaded.results.append(Result(record, path, source))
    if strict and loaded.problems:
        shown = "; ".join(str(p) for p in loaded.problems[:20])
        more = f" (and {len(loaded.problems) - 20} more)" if len(loaded.problems) > 20 else ""
        raise BenchError(f"{len(loaded.problems)} invalid result file(s), refused because of --strict: {shown}{more}.")
    return loaded
