"""Checks across result records, so that a forged or mixed-up file is refused by name instead of ranked.

A record checked alone (bench.results) can still lie consistently: an edited ticket accuracy with its
drop edited to match, a copied record renamed to a seed nobody ran, a second file for the same replicate.
Every record of one replicate (configuration, protocol, kernel class, seed) states the same trunk, and every
record of one of its levels the same ticket, so they are checked against each other:

* **Agreement.** The trunk fields (dense accuracy, W_0 and W_k fingerprints, the trunk's seed group) must be
  equal in every record of the replicate, at every level; the level fields (ticket accuracy, mask and ticket
  fingerprints, the ticket's seed group) in every record of the replicate at that level. A replicate that
  disagrees is refused whole: every one of its files is named, none ranked (which of them is right cannot be
  told from the files).
* **Seeds.** A record's seed must be in the seed groups it says it was trained in, and no two seeds of one
  configuration can share a W_0 (each is a seeded draw). With ``recompute_w0`` (``--strict`` and
  ``python -m bench.report``) W_0 is drawn again from the initialiser for every (configuration, seed) and its
  fingerprint compared with the record's: a few milliseconds per seed for these models, no training.
* **Duplicates.** Two different files for one replicate, perturbation, parameters and perturbation seed are
  both refused: neither is preferred (a `created` date is as easy to edit as a number). The same record
  reached twice (an identical copy in another folder) is one file.

What no file can show is a branch's own accuracy edited together with its drop: only re-running it can
(``bench verify``; the leaderboard marks the rows a recorded verification re-proved).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from bench.provenance import record_class
from bench.results import Problem, Result

# (section, key) of the fields every record of one replicate must share; the trunk is the same at every level
TRUNK_FIELDS = (("accuracy", "dense"), ("fingerprints", "w0"), ("fingerprints", "wk"), ("trained_with_seeds", "trunk"))
LEVEL_FIELDS = (("accuracy", "ticket"), ("fingerprints", "mask"), ("fingerprints", "ticket"),
                ("trained_with_seeds", "ticket"))
_ABSENT = object()


@dataclass
class Checked:
    kept: list[Result]  # the records that passed every check
    problems: list[Problem] = field(default_factory=list)  # one per refused file (duplicates apart)
    duplicates: list[list[Result]] = field(default_factory=list)  # files claiming one branch, all refused


def _get(record: dict[str, Any], section: str, key: str) -> Any:
    part = record.get(section)
    return part.get(key, _ABSENT) if isinstance(part, dict) else _ABSENT


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _protocol(record: dict[str, Any]) -> int:
    return record.get("protocol_version", 0)


def replicate(record: dict[str, Any]) -> tuple:
    """The replicate a record belongs to: another kernel class or protocol computes other numbers legitimately."""
    return record["config_hash"], _protocol(record), record_class(record), record["seed"]


def branch(record: dict[str, Any]) -> tuple:
    """What one file claims: one replicate's branch (the key of a duplicate)."""
    pert = record["perturbation"]
    return (record["preset"], *replicate(record), record["level"], pert["name"], _text(pert["params"]), pert["seed"])


def _names(members: Iterable[Result]) -> str:
    return ", ".join(sorted(m.source for m in members))


def _unique(results: Sequence[Result]) -> list[Result]:
    """The same record reached twice (an identical copy in another folder) counts once: the copy with the first
    source, so the choice does not depend on the order the folders were given in."""
    by_content: dict[str, Result] = {}
    for res in sorted(results, key=lambda r: (r.source, str(r.path))):
        by_content.setdefault(_text(res.data), res)
    kept = set(map(id, by_content.values()))
    return [r for r in results if id(r) in kept]


def _short(value: str) -> str:
    return value if len(value) <= 20 else value[:16] + "...\""


def _id(res: Result) -> str:
    """A file's identity here: its path (two folders can hold the same relative source)."""
    return str(res.path)


def _outside_its_groups(record: dict[str, Any]) -> str | None:
    groups = record.get("trained_with_seeds") or {}
    for stage in ("trunk", "ticket", "branch"):
        group = groups.get(stage)
        if isinstance(group, list) and record["seed"] not in group:
            return (f"seed {record['seed']} is not among the seeds it says it was trained with "
                    f"(trained_with_seeds.{stage} {group}): a record of another seed with its seed changed?")
    return None


def _disagreements(results: Sequence[Result], keyof: Callable[[dict], tuple], fields: Sequence[tuple[str, str]],
                   where: Callable[[tuple], str]) -> dict[str, str]:
    claims: dict[tuple, list[Result]] = {}
    for res in results:
        claims.setdefault(keyof(res.data), []).append(res)
    out: dict[str, str] = {}
    for key, members in claims.items():
        differing = [f"{section}.{name}" for section, name in fields
                     if len({_text(v) for m in members
                             if (v := _get(m.data, section, name)) is not _ABSENT}) > 1]
        if not differing:
            continue
        section, name = differing[0].split(".")
        values: dict[str, list[Result]] = {}
        for m in members:
            values.setdefault(_text(_get(m.data, section, name)), []).append(m)
        shown = "; ".join(f"{_short(value)} in {_names(ms)}" for value, ms in sorted(values.items()))
        message = (f"{where(key)}: {len(members)} files that claim one replicate disagree on {', '.join(differing)} "
                   f"({differing[0]}: {shown}), so their drops would not be paired; all are refused: rerun them "
                   f"in one cache")
        for m in members:
            out[_id(m)] = message if _id(m) not in out else f"{out[_id(m)]}; {message}"
    return out


def _shared_w0(results: Sequence[Result]) -> dict[str, str]:
    seeds: dict[tuple, dict[int, list[Result]]] = {}
    for res in results:
        w0 = _get(res.data, "fingerprints", "w0")
        if isinstance(w0, str):
            seeds.setdefault((res.data["config_hash"], w0), {}).setdefault(res.data["seed"], []).append(res)
    out: dict[str, str] = {}
    for (config, _), by_seed in seeds.items():
        if len(by_seed) > 1:
            members = [m for ms in by_seed.values() for m in ms]
            message = (f"config {config}: seeds {', '.join(map(str, sorted(by_seed)))} claim the same W_0 "
                       f"fingerprint, but every seed draws its own W_0 (a record copied to an invented seed?); the "
                       f"files {_names(members)} are refused")
            for m in members:
                out[_id(m)] = message
    return out


def check(results: Iterable[Result], *, recompute_w0: bool = False) -> Checked:
    """Every record that passes the checks across records, and a named problem for every one that does not."""
    results = _unique(list(results))
    refused: dict[str, tuple[Result, str]] = {}
    for res in results:
        reason = _outside_its_groups(res.data)
        if reason:
            refused[_id(res)] = (res, reason)
    alive = [r for r in results if _id(r) not in refused]

    by_branch: dict[tuple, list[Result]] = {}
    for res in alive:
        by_branch.setdefault(branch(res.data), []).append(res)
    duplicates = [sorted(ms, key=lambda r: r.source) for _, ms in sorted(by_branch.items()) if len(ms) > 1]
    doubled = {_id(m) for ms in duplicates for m in ms}
    alive = [r for r in alive if _id(r) not in doubled]

    by_id = {_id(r): r for r in alive}
    found = _disagreements(alive, replicate, TRUNK_FIELDS,
                           lambda k: f"config {k[0]}, seed {k[3]} ({k[2]})")
    for key, message in _disagreements(alive, lambda d: (*replicate(d), d["level"]), LEVEL_FIELDS,
                                       lambda k: f"config {k[0]}, level {k[4]}, seed {k[3]} ({k[2]})").items():
        found[key] = f"{found[key]}; {message}" if key in found else message
    for key, message in _shared_w0(alive).items():
        found.setdefault(key, message)
    if recompute_w0:
        found.update(w0_mismatches([r for r in alive if _id(r) not in found]))
    for key, message in found.items():
        refused[key] = (by_id[key], message)
    kept = [r for r in alive if _id(r) not in found]
    problems = [Problem(res.path, res.source, message)
                for res, message in sorted(refused.values(), key=lambda p: (p[0].source, str(p[0].path)))]
    return Checked(kept, problems, duplicates)


def _comparable(record: dict[str, Any], here: str) -> bool:
    """Whether this machine draws the record's W_0 as its machine did: the initialiser's sampler is vectorised
    per CPU capability (records trained on CUDA drew W_0 on a CPU pinned to AVX2, bench.numerics)."""
    env = record.get("environment", {})
    return env.get("cpu_capability", "AVX2") == here


def w0_mismatches(results: Sequence[Result]) -> dict[str, str]:
    """path -> problem for every record whose W_0 fingerprint is not what its seed's initialiser draws.

    Imports torch (this is the one check here that computes): used by ``--strict`` and ``python -m bench.report``
    only. Not checked: records of another CPU capability than this machine's (they would differ here), and
    records whose configuration ``bench verify`` would not re-run either (bench.submission: a forged 10^9-channel
    model is not built here to draw its W_0)."""
    import torch

    from bench import models
    from bench.config import from_dict
    from bench.datasets import dataset_info
    from bench.errors import BenchError
    from bench.provenance import fingerprint
    from bench.seeding import generator
    from bench.submission import check_experiment

    here = torch.backends.cpu.get_cpu_capability()
    drawn: dict[tuple[str, int], str] = {}
    out: dict[str, str] = {}
    for res in results:
        d = res.data
        claimed = _get(d, "fingerprints", "w0")
        if not isinstance(claimed, str) or not _comparable(d, here):
            continue
        key = (_text(d["config"]), d["seed"])
        if key not in drawn:
            try:
                exp = from_dict(d["config"])
                check_experiment(d["preset"], exp, d["level"])
            except BenchError:
                continue  # beyond what the bench re-runs: not ranked unless --any-config, and not drawn here
            try:
                info = dataset_info(exp.data.dataset)
                model = models.build_model(exp.model, info.in_channels, info.num_classes)
                models.initialize(model, generator(d["seed"], "init"), exp.model)
                drawn[key] = fingerprint(model.state_dict())
            except Exception as exc:  # a config the initialiser cannot build: nothing here can stand behind it
                drawn[key] = f"not computable ({type(exc).__name__}: {exc})"
        if drawn[key] != claimed:
            out[_id(res)] = (f"fingerprints.w0 is not the W_0 that seed {d['seed']}'s initialiser draws for this "
                               f"config ({drawn[key][:16]}..., recomputed here), so this is not seed {d['seed']}'s "
                               f"replicate: an invented or edited seed?")
    return out
