"""A sweep expanded into work units: what each unit trains, what is already cached, how long the rest takes.

Also the :class:`Report` of unit states the executors fill in, and what is read back from it (the summary
rows, the per-seed results).
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from bench import paths
from bench.config import config_hash, digest, parse_step
from bench.datasets import dataset_info
from bench.execute import seed_groups
from bench.sweep.file import Sweep, experiment_of, levels_of

# Seconds per replicate-iteration, to estimate a sweep's time in --dry-run (overridable per sweep with
# [estimate] seconds_per_iteration). The CPU figures were measured on this project's 2-core machine with
# `bench sweep` itself (docs/cluster.md); the CIFAR-10 figure is an ASSUMPTION for one modern datacenter
# GPU, not a measurement: this project has no GPU to measure it on.
SECONDS_PER_ITERATION = {
    "smoke": 0.013,  # measured in the worker (2 seeds fused, CPU, busy 2-core machine); excludes process start
    "mnist1d-resnet": 0.018,  # measured: README's 242 s for 3 seeds x 4,485 iterations, CPU, one thread
    "cifar10-resnet20": 0.02,  # assumed: one GPU, one replicate, batch 128 (not measured here)
}


@dataclass(frozen=True)
class Placement:
    """Where a unit's worker finds what it shares with the driver, for one driver run (:func:`prepare_units`)."""

    cache: str  # the cache root, absolute: workers may start in another directory
    sweep: str  # the sweep file, named in errors
    marker: str  # a file in the cache holding ``token``: a worker that cannot read it does not share the cache
    token: str
    status_dir: str
    log: str


@dataclass(frozen=True)
class Unit:
    """One unit of work. Picklable: it crosses into a worker process or a SLURM job as it is."""

    id: str
    kind: Literal["tickets", "branches"]
    preset: str
    config_hash: str
    seeds: tuple[int, ...]  # one seed group: trained together, fused, as `bench run` trains them
    level: int  # tickets: the highest IMP level trained; branches: the level the branches start from
    depends: str | None  # a branches unit's tickets unit
    requests: tuple[tuple[str, dict[str, str]], ...]  # branches: one (perturbation, raw params); tickets: none
    trainings: int  # stages still to train
    iterations: int  # replicate-iterations still to train
    estimate_s: float
    cached: bool  # nothing left to train or write
    results: tuple[str, ...]  # the per-seed result files a branches unit writes
    # how the worker runs it: the sweep's overrides and [run] table
    overrides: dict[str, Any]
    device: str
    threads: int
    group_size: int
    data_dir: str | None
    perturbation_seed: int
    placement: Placement | None = None  # set by prepare_units, before any executor runs the unit


def _stage_done(cache: Path, chash: str, seed: int, level: int) -> bool:
    return (paths.stage_dir(paths.replicate_dir(cache, chash, seed), level) / paths.DONE).exists()


def _level0_done(cache: Path, chash: str, seed: int, k: int) -> bool:
    """The level-0 ticket (W_k retrained k -> T): trained before level 1 when level 1 prunes it."""
    return (paths.ticket_dir(paths.replicate_dir(cache, chash, seed), 0, k, k) / paths.DONE).exists()


def _branch_done(cache: Path, chash: str, seed: int, level: int, name: str, params: dict, pseed: int) -> bool:
    folder = paths.branch_dir(paths.replicate_dir(cache, chash, seed), level, name, params, pseed)
    return (folder / paths.DONE).exists()


def _result_file(cache: Path, chash: str, seed: int, level: int, name: str, params: dict, pseed: int) -> Path:
    record = {"config_hash": chash, "level": level, "seed": seed,
              "perturbation": {"name": name, "params": params, "seed": pseed}}
    return paths.result_file(paths.results_dir(cache), record)


def plan(sweep: Sweep, cache: Path) -> list[Unit]:
    """Every unit of the sweep, tickets units before their branches, each marked cached or not."""
    from bench.perturbation import resolve_params
    from bench.plugins import default_plugins
    from bench.presets import get_preset

    known = default_plugins().perturbations()
    units: list[Unit] = []
    seen: set[str] = set()
    for preset in sweep.presets:
        exp = experiment_of(sweep, preset)
        chash = config_hash(exp)
        levels = levels_of(sweep, preset)
        per_epoch = exp.iterations_per_epoch(dataset_info(exp.data.dataset).train_size(exp.data))
        T, k = parse_step(exp.train.steps, per_epoch), parse_step(exp.rewind, per_epoch)
        spi = sweep.seconds_per_iteration or SECONDS_PER_ITERATION.get(preset, 0.01)
        size = sweep.group_size or get_preset(preset).group_size  # as bench run groups them: the same numbers
        common = dict(preset=preset, overrides=sweep.overrides, config_hash=chash, device=sweep.device,
                      threads=sweep.threads, group_size=size, data_dir=sweep.data_dir,
                      perturbation_seed=sweep.perturbation_seed)
        for group in seed_groups(sweep.seeds, size):
            top = max(levels)
            tid = f"tickets:{preset}:{chash[:8]}:s{'-'.join(map(str, group))}:L{top}"
            if tid in seen:  # two presets with one configuration share their units
                continue
            seen.add(tid)
            missing = [(s, lvl) for s in group for lvl in range(top + 1) if not _stage_done(cache, chash, s, lvl)]
            if top >= 1 and k > 0 and exp.prune.level1_prunes == "level-0":  # level 1 prunes the level-0 ticket
                missing += [(s, -1) for s in group if not _level0_done(cache, chash, s, k)]  # -1: trained k -> T
            iters = sum(T if lvl == 0 else T - k for _, lvl in missing)
            units.append(Unit(id=tid, kind="tickets", seeds=tuple(group), level=top, depends=None, requests=(),
                              trainings=len(missing), iterations=iters, estimate_s=iters * spi,
                              cached=not missing, results=(), **common))
            for level in levels:
                for name, raw in sweep.perturbations:
                    params = resolve_params(known[name].perturbation, raw)
                    label = name + ("(" + ",".join(f"{a}={b}" for a, b in raw.items()) + ")" if raw else "")
                    bid = f"branches:{preset}:{chash[:8]}:s{'-'.join(map(str, group))}:L{level}:{label}"
                    pseed = sweep.perturbation_seed
                    branch_missing = [s for s in group if not _branch_done(cache, chash, s, level, name, params, pseed)]
                    results = tuple(str(_result_file(cache, chash, s, level, name, params, pseed)) for s in group)
                    cached = not branch_missing and all(Path(r).exists() for r in results)
                    iters = len(branch_missing) * (T - k)
                    units.append(Unit(id=bid, kind="branches", seeds=tuple(group), level=level, depends=tid,
                                      requests=((name, raw),), trainings=len(branch_missing), iterations=iters,
                                      estimate_s=iters * spi, cached=cached, results=results, **common))
    return units


def counts(units: list[Unit]) -> dict[str, Any]:
    todo = [u for u in units if not u.cached]
    hours = sum(u.estimate_s for u in todo) / 3600
    return {"units": len(units), "cached_units": len(units) - len(todo), "units_to_run": len(todo),
            "tickets_units": sum(u.kind == "tickets" for u in todo),
            "branches_units": sum(u.kind == "branches" for u in todo),
            "trainings": sum(u.trainings for u in todo),
            "replicate_iterations": sum(u.iterations for u in todo),
            "estimated_hours": round(hours, 3) if math.isfinite(hours) else None}  # None: not estimable


def fmt_hours(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:,.1f} h"


# ------------------------------------------------------------------------------------------ one driver run


def sweep_dir(cache: Path, sweep: Sweep) -> Path:
    return cache / "sweeps" / f"{sweep.name}-{digest([sweep.presets, sweep.seeds, sweep.overrides], 8)}"


def prepare_units(sweep: Sweep, units: list[Unit], cache: Path) -> tuple[list[Unit], Path]:
    """Write the shared-cache marker; return the units placed (each told what its worker needs to find
    things) and the sweep's folder in the cache."""
    folder = sweep_dir(cache, sweep)
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    from bench.cache import _atomic

    # one marker per driver run, so two drivers on one cache never overwrite each other's token
    marker = folder / "markers" / token
    _atomic(marker, lambda h: h.write(token.encode()))
    placed = [replace(u, placement=Placement(cache=str(cache), sweep=str(sweep.path), marker=str(marker),
                                             token=token, status_dir=str(folder / "status"),
                                             log=str(folder / "logs" / f"{_slug(u.id)}.log")))
              for u in units]
    return placed, folder


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:120] + "-" + digest(text, 6)


@dataclass
class Report:
    """What happened to every unit, for the live view, the summary and --json."""

    units: list[Unit]
    state: dict[str, str] = field(default_factory=dict)  # id -> queued | running | done | failed | cached
    info: dict[str, dict] = field(default_factory=dict)  # id -> node, trained, seconds, error, log

    def __post_init__(self) -> None:
        for u in self.units:
            self.state[u.id] = "cached" if u.cached else "queued"

    def tally(self) -> dict[str, int]:
        out = {k: 0 for k in ("cached", "queued", "running", "done", "failed")}
        for s in self.state.values():
            out[s] += 1
        return out

    def fail(self, unit: Unit, error: str, node: str | None, log: str | None) -> None:
        self.state[unit.id] = "failed"
        self.info[unit.id] = {"error": error, "node": node, "log": log}


def summary(report: Report) -> list[dict]:
    rows = []
    for u in report.units:
        info = report.info.get(u.id, {})
        rows.append({"id": u.id, "kind": u.kind, "state": report.state[u.id],
                     "trainings_planned": u.trainings, "trained": info.get("trained", 0),
                     "node": info.get("node"), "seconds": info.get("seconds"), "error": info.get("error"),
                     "log": info.get("log")})
    return rows


def results_of(units: list[Unit]) -> list[dict]:
    """The per-seed results the sweep's branches units produced (or found cached), in plan order."""
    out = []
    for u in units:
        for path in u.results:
            p = Path(path)
            if p.exists():
                r = json.loads(p.read_text())
                out.append({"preset": r["preset"], "config_hash": r["config_hash"], "level": r["level"],
                            "perturbation": r["perturbation"]["name"], "params": r["perturbation"]["params"],
                            "seed": r["seed"], "accuracy": r["accuracy"], "drop": r["drop"],
                            "trained_with_seeds": r.get("trained_with_seeds"), "file": str(p)})
    return out
