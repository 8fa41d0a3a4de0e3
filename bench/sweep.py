"""``bench sweep``: a grid from a TOML file, expanded into units of the cached stage graph, run by an executor.

A **tickets** unit trains the dense trunk and the IMP levels up to the highest level the sweep needs, for one
experiment and one seed group (the group's seeds train together, as ``bench run`` trains them). A
**branches** unit trains one perturbation (one point of its parameter grid) at one level for the same seed
group and depends on its tickets unit. Keeping a ticket and its branches in one seed group keeps them on
one rounding path, so pairing stays exact (identity drops exactly 0; docs/harness.md).

A unit is a plain dict (picklable, JSON-able) run by :func:`run_unit` in a worker process: a local process
pool (``local``) or a SLURM job through submitit (``slurm``, bench/sweep_slurm.py). Every unit only calls the
existing harness, so a unit whose stages are cached trains nothing, and a killed unit resumes from its
stage checkpoints.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import socket
import time
import tomllib
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import paths
from bench.config import Experiment, config_hash, digest, parse_step
from bench.errors import BenchError, unknown
# the one touch point with the harness: a unit only calls what `bench run` calls
from bench.experiments.perturb import run_perturbations
from bench.experiments.setup import RunOptions, prepare, resolve_device, resolve_level
from bench.pruning import levels_table
from bench.execute import seed_groups

TOP_KEYS = ("presets", "seeds", "levels", "sparsities", "perturbations", "perturbation_seed", "overrides", "run",
            "slurm", "estimate")
RUN_KEYS = ("device", "threads", "group_size", "data_dir")
SLURM_KEYS = ("partition", "time_min", "gpus_per_node", "mem_gb", "cpus_per_task", "array_parallelism",
              "constraint", "additional")
OVERRIDE_SECTIONS = ("data", "model", "train", "prune", "rewind")

# Seconds per replicate-iteration, to estimate a sweep's time in --dry-run (overridable per sweep with
# [estimate] seconds_per_iteration). The CPU figures were measured on this project's 2-core machine with
# `bench sweep` itself (docs/cluster.md); the CIFAR-10 figure is an ASSUMPTION for one modern datacenter
# GPU, not a measurement: this project has no GPU to measure it on.
SECONDS_PER_ITERATION = {
    "smoke": 0.013,  # measured in the worker (2 seeds fused, CPU, busy 2-core machine); excludes process start
    "mnist1d-resnet": 0.018,  # measured: README's 242 s for 3 seeds x 4,485 iterations, CPU, one thread
    "cifar10-resnet20": 0.02,  # assumed: one GPU, one replicate, batch 128 (not measured here)
}


# ------------------------------------------------------------------------------------------ the sweep file


@dataclass
class Sweep:
    path: Path
    presets: list[str]
    seeds: list[int]
    levels: list[int] | None
    sparsities: list[float] | None
    perturbations: list[tuple[str, dict[str, str]]]  # one (name, raw params) per grid point
    perturbation_seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    threads: int = 1
    group_size: int | None = None  # None: each preset's own (bench.presets.Preset.group_size)
    data_dir: str | None = None
    slurm: dict[str, Any] = field(default_factory=dict)
    seconds_per_iteration: float | None = None

    @property
    def name(self) -> str:
        return self.path.stem


def _fail(path: Path, key: str, message: str) -> BenchError:
    return BenchError(f"Sweep file {path}: {key}: {message}")


def _int_list(path: Path, key: str, value: Any, minimum: int = 0) -> list[int]:
    values = value if isinstance(value, list) else [value]
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in values):
        raise _fail(path, key, f"expected whole numbers >= {minimum} (or a list of them), got {value!r}.")
    if len(set(values)) != len(values):
        raise _fail(path, key, f"has duplicates: {value!r}.")
    return values


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file; every problem is one line naming the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"Sweep file {path} does not exist.") from None
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"Sweep file {path} is not valid TOML: {exc}.") from None
    for key in raw:
        if key == "pretraining":
            raise _fail(path, key, "pre-training entries are not supported by bench sweep yet; run them with "
                                   "`bench pretrain`.")
        if key not in TOP_KEYS:
            raise _fail(path, key, str(unknown("key", key, list(TOP_KEYS))))

    from bench.plugins import default_plugins
    from bench.presets import PRESETS, get_preset

    presets = raw.get("presets")
    if presets is None:
        raise _fail(path, "presets", f"missing; name at least one of {', '.join(PRESETS)}.")
    presets = presets if isinstance(presets, list) else [presets]
    if not presets or not all(isinstance(p, str) for p in presets):
        raise _fail(path, "presets", "expected a preset name or a list of them.")
    for name in presets:
        try:
            get_preset(name)
        except BenchError as exc:
            raise _fail(path, "presets", str(exc)) from None

    seeds_raw = raw.get("seeds", 1)
    if isinstance(seeds_raw, int) and not isinstance(seeds_raw, bool):
        if seeds_raw < 1:
            raise _fail(path, "seeds", f"expected a count >= 1 or a list of seeds, got {seeds_raw}.")
        seeds = list(range(seeds_raw))
    else:
        seeds = _int_list(path, "seeds", seeds_raw)

    if "levels" in raw and "sparsities" in raw:
        raise _fail(path, "levels", "give either levels or sparsities, not both.")
    levels = _int_list(path, "levels", raw["levels"]) if "levels" in raw else None
    sparsities = None
    if "sparsities" in raw:
        values = raw["sparsities"] if isinstance(raw["sparsities"], list) else [raw["sparsities"]]
        if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 100
                             for v in values):
            raise _fail(path, "sparsities", f"expected percentages of weights remaining in (0, 100], got "
                                            f"{raw['sparsities']!r}.")
        sparsities = [float(v) for v in values]

    table = raw.get("perturbations")
    if not isinstance(table, dict) or not table:
        raise _fail(path, "perturbations", "missing; add a table such as [perturbations] with "
                                           "identity = {} and gaussian-noise = { scale = [0.5, 1, 2] }.")
    plugins = default_plugins()
    known = plugins.perturbations()
    from bench.perturbation import resolve_params

    grid: list[tuple[str, dict[str, str]]] = []
    for name, params in table.items():
        if name not in known:
            raise _fail(path, f"perturbations.{name}", str(unknown("perturbation", name, list(known))))
        if not isinstance(params, dict):
            raise _fail(path, f"perturbations.{name}", "expected a table of parameters ({} for none).")
        # a list is a grid axis; parameters are passed as strings, exactly as `bench run --param` passes them,
        # so a sweep's results land in the same result files as the equivalent `bench run`
        axes = {k: (v if isinstance(v, list) else [v]) for k, v in params.items()}
        for key, values in axes.items():
            if not values:
                raise _fail(path, f"perturbations.{name}.{key}", "an empty list gives no grid points.")
        for combo in itertools.product(*axes.values()):
            raw_params = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in zip(axes, combo)}
            try:
                resolve_params(known[name].perturbation, raw_params)
            except BenchError as exc:
                raise _fail(path, f"perturbations.{name}", str(exc)) from None
            grid.append((name, raw_params))

    pseed = raw.get("perturbation_seed", 0)
    if isinstance(pseed, bool) or not isinstance(pseed, int) or pseed < 0:
        raise _fail(path, "perturbation_seed", f"expected a whole number >= 0, got {pseed!r}.")

    overrides = raw.get("overrides", {})
    if not isinstance(overrides, dict):
        raise _fail(path, "overrides", "expected a table of experiment sections.")
    for key in overrides:
        if key not in OVERRIDE_SECTIONS:
            raise _fail(path, f"overrides.{key}", str(unknown("section", key, list(OVERRIDE_SECTIONS))))

    sweep = Sweep(path, presets, seeds, levels, sparsities, grid, pseed, overrides)
    run = raw.get("run", {})
    for key, value in run.items():
        if key not in RUN_KEYS:
            raise _fail(path, f"run.{key}", str(unknown("key", key, list(RUN_KEYS))))
    if "device" in run:
        sweep.device = str(run["device"])
    for key in ("threads", "group_size"):
        if key in run:
            if isinstance(run[key], bool) or not isinstance(run[key], int) or run[key] < 1:
                raise _fail(path, f"run.{key}", f"expected a whole number >= 1, got {run[key]!r}.")
            setattr(sweep, key, run[key])
    if "data_dir" in run:
        sweep.data_dir = str(run["data_dir"])
    slurm = raw.get("slurm", {})
    for key in slurm:
        if key not in SLURM_KEYS:
            raise _fail(path, f"slurm.{key}", str(unknown("key", key, list(SLURM_KEYS))))
    sweep.slurm = dict(slurm)
    estimate = raw.get("estimate", {})
    if estimate:
        value = estimate.get("seconds_per_iteration")
        if set(estimate) != {"seconds_per_iteration"} or not isinstance(value, (int, float)) or value <= 0:
            raise _fail(path, "estimate", "expected only seconds_per_iteration = a positive number.")
        sweep.seconds_per_iteration = float(value)
    # resolve every preset's experiment and levels now, so a bad override or level fails before anything runs
    for name in presets:
        experiment_of(sweep, name)
        levels_of(sweep, name)
    return sweep


def experiment_of(sweep: Sweep, preset: str) -> Experiment:
    from bench.presets import get_preset

    exp = get_preset(preset).experiment
    sections = {k: v for k, v in sweep.overrides.items() if k != "rewind"}
    try:
        for name, values in sections.items():
            if not isinstance(values, dict):
                raise _fail(sweep.path, f"overrides.{name}", "expected a table of fields.")
            # TOML arrays become tuples: the experiment's list-valued fields are tuples (the hash sees them so)
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
            exp = exp.with_overrides(**{name: values})
    except TypeError as exc:
        raise _fail(sweep.path, "overrides", f"{exc}.") from None
    if "rewind" in sweep.overrides:
        exp = replace(exp, rewind=str(sweep.overrides["rewind"]))
    parse_step(exp.rewind, 1)  # a bad step string fails here, naming itself
    parse_step(exp.train.steps, 1)
    return exp


def _shape(exp: Experiment) -> tuple[int, int, int]:
    """(input channels, classes, training examples) without loading data: known per dataset."""
    if exp.data.dataset == "cifar10":
        return 3, 10, 50000
    return 1, 10, exp.data.train_examples


def levels_of(sweep: Sweep, preset: str) -> list[int]:
    from bench.presets import get_preset

    exp = experiment_of(sweep, preset)
    in_ch, classes, _ = _shape(exp)
    table = levels_table(exp, in_ch, classes)
    default = min(get_preset(preset).level, exp.prune.levels)
    key = "levels" if sweep.levels is not None else "sparsities"
    try:
        if sweep.levels is not None:
            return sorted({resolve_level(table, lvl, None, default) for lvl in sweep.levels})
        if sweep.sparsities is not None:
            return sorted({resolve_level(table, None, pct, default) for pct in sweep.sparsities})
    except BenchError as exc:
        raise _fail(sweep.path, key, f"{preset}: {exc}") from None
    return [default]


# ------------------------------------------------------------------------------------------ the unit graph


def _stage_dir(cache: Path, chash: str, seed: int, level: int) -> Path:
    return paths.stage_dir(paths.replicate_dir(cache, chash, seed), level)


def _branch_dir(cache: Path, chash: str, seed: int, level: int, name: str, params: dict, pseed: int) -> Path:
    return paths.branch_dir(paths.replicate_dir(cache, chash, seed), level, name, params, pseed)


def _result_file(cache: Path, chash: str, seed: int, level: int, name: str, params: dict, pseed: int) -> Path:
    record = {"config_hash": chash, "level": level, "seed": seed,
              "perturbation": {"name": name, "params": params, "seed": pseed}}
    return paths.result_file(paths.results_dir(cache), record)


def plan(sweep: Sweep, cache: Path) -> list[dict]:
    """Every unit of the sweep, tickets units before their branches, each marked cached or not."""
    from bench.perturbation import resolve_params
    from bench.plugins import default_plugins
    from bench.presets import get_preset

    known = default_plugins().perturbations()
    units: list[dict] = []
    seen: set[str] = set()
    for preset in sweep.presets:
        exp = experiment_of(sweep, preset)
        chash = config_hash(exp)
        levels = levels_of(sweep, preset)
        in_ch, classes, train_size = _shape(exp)
        per_epoch = exp.iterations_per_epoch(train_size)
        T, k = parse_step(exp.train.steps, per_epoch), parse_step(exp.rewind, per_epoch)
        spi = sweep.seconds_per_iteration or SECONDS_PER_ITERATION.get(preset, 0.01)
        size = sweep.group_size or get_preset(preset).group_size  # as bench run groups them: the same numbers
        common = {"preset": preset, "overrides": sweep.overrides, "config_hash": chash, "device": sweep.device,
                  "threads": sweep.threads, "group_size": size, "data_dir": sweep.data_dir,
                  "perturbation_seed": sweep.perturbation_seed}
        for group in seed_groups(sweep.seeds, size):
            top = max(levels)
            tid = f"tickets:{preset}:{chash[:8]}:s{'-'.join(map(str, group))}:L{top}"
            if tid in seen:  # two presets with one configuration share their units
                continue
            seen.add(tid)
            stages = [(s, lvl) for s in group for lvl in range(top + 1)]
            missing = [(s, lvl) for s, lvl in stages if not (_stage_dir(cache, chash, s, lvl) / "done.json").exists()]
            iters = sum(T if lvl == 0 else T - k for _, lvl in missing)
            units.append({**common, "id": tid, "kind": "tickets", "seeds": group, "level": top, "depends": None,
                          "requests": [], "trainings": len(missing), "iterations": iters,
                          "estimate_s": iters * spi, "cached": not missing, "results": []})
            for level in levels:
                for name, raw in sweep.perturbations:
                    params = resolve_params(known[name].perturbation, raw)
                    label = name + ("(" + ",".join(f"{a}={b}" for a, b in raw.items()) + ")" if raw else "")
                    bid = f"branches:{preset}:{chash[:8]}:s{'-'.join(map(str, group))}:L{level}:{label}"
                    branch_missing = [s for s in group if not (_branch_dir(cache, chash, s, level, name, params,
                                                                           sweep.perturbation_seed) / "done.json").exists()]
                    results = [str(_result_file(cache, chash, s, level, name, params, sweep.perturbation_seed))
                               for s in group]
                    cached = not branch_missing and all(Path(r).exists() for r in results)
                    iters = len(branch_missing) * (T - k)
                    units.append({**common, "id": bid, "kind": "branches", "seeds": group, "level": level,
                                  "depends": tid, "requests": [[name, raw]], "trainings": len(branch_missing),
                                  "iterations": iters, "estimate_s": iters * spi, "cached": cached,
                                  "results": results})
    return units


def counts(units: list[dict]) -> dict[str, Any]:
    todo = [u for u in units if not u["cached"]]
    return {"units": len(units), "cached_units": len(units) - len(todo), "units_to_run": len(todo),
            "tickets_units": sum(u["kind"] == "tickets" for u in todo),
            "branches_units": sum(u["kind"] == "branches" for u in todo),
            "trainings": sum(u["trainings"] for u in todo),
            "replicate_iterations": sum(u["iterations"] for u in todo),
            "estimated_hours": round(sum(u["estimate_s"] for u in todo) / 3600, 3)}


# ------------------------------------------------------------------------------------------ the worker


def _check_marker(unit: dict) -> None:
    """The driver wrote a marker with a fresh token into the cache; a worker that cannot read it does not share
    the driver's cache, and whatever it trained would be invisible to the driver and to every other node."""
    marker = Path(unit["marker"])
    try:
        seen = marker.read_text().strip()
    except OSError:
        seen = None
    if seen != unit["token"]:
        raise BenchError(f"Node {socket.gethostname()} cannot see the sweep's cache at {unit['cache']} (marker "
                         f"{marker} {'missing' if seen is None else 'differs'}): the cache must be on a file "
                         f"system shared by the driver and every node; pass --cache-dir on shared storage "
                         f"(docs/cluster.md).")


def _check_hardware(unit: dict, here: str) -> None:
    """Refuse to train on top of stages from another hardware class (bench.provenance.hardware_class says why)."""
    cache, chash = Path(unit["cache"]), unit["config_hash"]
    levels = range(unit["level"] + 1)
    for seed in unit["seeds"]:
        for lvl in levels:
            done = _stage_dir(cache, chash, seed, lvl) / "done.json"
            if not done.exists():
                continue
            there = json.loads(done.read_text()).get("hardware")
            if there is not None and there != here:  # None: a stage from before hardware was recorded
                what = "trunk" if lvl == 0 else f"level {lvl}"
                raise BenchError(f"Unit {unit['id']}: refusing to train on {here}: its {what} (seed {seed}) was "
                                 f"trained on {there}, and a branch must train on its ticket's hardware class; pin "
                                 f"the sweep to one class (slurm constraint) or use another cache.")


def _write_status(unit: dict, **fields: Any) -> None:
    from bench.cache import save_json

    path = Path(unit["status_dir"]) / f"{digest(unit['id'])}.json"
    save_json(path, {"id": unit["id"], "node": socket.gethostname(), "pid": os.getpid(), **fields})


def run_unit(unit: dict) -> dict:
    """Run one unit in this process (a pool worker or a SLURM job) and return what it did."""
    import torch

    from bench.provenance import hardware_class
    from bench.presets import get_preset
    from bench.stages import Replicate, train_chain

    # a fixed thread count: kernels may split reductions per thread, and the local and slurm executors must
    # follow the same numerical path (their results are compared exactly)
    torch.set_num_threads(unit["threads"])
    t0 = time.perf_counter()
    log_path = Path(unit["log"])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log:
        log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {unit['id']} on {socket.gethostname()} "
                  f"pid {os.getpid()}\n")
        log.flush()
        try:
            _check_marker(unit)
            _write_status(unit, state="running")
            here = hardware_class(resolve_device(unit["device"]))
            cache = Path(unit["cache"])
            preset = get_preset(unit["preset"])
            sweep = Sweep(Path(unit["sweep"]), [unit["preset"]], unit["seeds"], None, None, [],
                          overrides=unit["overrides"])
            exp = experiment_of(sweep, unit["preset"])
            data_dir = Path(unit["data_dir"]) if unit["data_dir"] else None
            _check_hardware(unit, here)
            options = RunOptions(cache=cache, device=unit["device"], data_dir=data_dir, group_size=unit["group_size"])
            if unit["kind"] == "tickets":
                setup = prepare(preset, options, seeds=unit["seeds"], level=unit["level"], experiment=exp)
                reps = [Replicate(exp, s, setup.env) for s in setup.seeds]
                train_chain(reps, unit["level"], setup.env)  # stage by stage, the group's seeds fused, as bench run does
                events = setup.env.events
            else:
                outcomes = run_perturbations(preset, [tuple(r) for r in unit["requests"]], options,
                                             seeds=unit["seeds"], level=unit["level"], experiment=exp,
                                             perturbation_seed=unit["perturbation_seed"])
                events = outcomes[0].events
            for e in events:
                log.write(f"{e.kind}: {e.stage} seed {e.seed}\n")
            trained = sum(e.kind == "trained" for e in events)
            out = {"id": unit["id"], "state": "done", "node": socket.gethostname(), "hardware": here,
                   "trained": trained, "cached": sum(e.kind == "cached" for e in events),
                   "seconds": round(time.perf_counter() - t0, 2)}
            _write_status(unit, **{k: v for k, v in out.items() if k not in ("id", "node")})
            log.write(f"done: trained {trained} stages\n")
            return out
        except BaseException as exc:
            message = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
            log.write(traceback.format_exc())
            try:
                _write_status(unit, state="failed", error=message)
            except OSError:
                pass  # the cache itself may be what is missing
            raise


# ------------------------------------------------------------------------------------------ the driver


@dataclass
class Report:
    """What happened to every unit, for the live view, the summary and --json."""

    units: list[dict]
    state: dict[str, str] = field(default_factory=dict)  # id -> queued | running | done | failed | cached
    info: dict[str, dict] = field(default_factory=dict)  # id -> node, trained, seconds, error, log

    def __post_init__(self) -> None:
        for u in self.units:
            self.state[u["id"]] = "cached" if u["cached"] else "queued"

    def tally(self) -> dict[str, int]:
        out = {k: 0 for k in ("cached", "queued", "running", "done", "failed")}
        for s in self.state.values():
            out[s] += 1
        return out

    def fail(self, unit: dict, error: str, node: str | None, log: str | None) -> None:
        self.state[unit["id"]] = "failed"
        self.info[unit["id"]] = {"error": error, "node": node, "log": log}


def sweep_dir(cache: Path, sweep: Sweep) -> Path:
    return cache / "sweeps" / f"{sweep.name}-{digest([sweep.presets, sweep.seeds, sweep.overrides], 8)}"


def prepare_units(sweep: Sweep, units: list[dict], cache: Path) -> Path:
    """Write the shared-cache marker and give every unit what its worker needs to find things."""
    folder = sweep_dir(cache, sweep)
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    from bench.cache import _atomic

    # one marker per driver run, so two drivers on one cache never overwrite each other's token
    marker = folder / "markers" / token
    _atomic(marker, lambda h: h.write(token.encode()))
    for u in units:
        u.update(cache=str(cache), sweep=str(sweep.path), marker=str(marker), token=token,
                 status_dir=str(folder / "status"), log=str(folder / "logs" / f"{_slug(u['id'])}.log"))
    return folder


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:120] + "-" + digest(text, 6)


def read_status(unit: dict) -> dict:
    path = Path(unit["status_dir"]) / f"{digest(unit['id'])}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run_local(units: list[dict], report: Report, jobs: int, on_change=lambda: None) -> None:
    """Up to ``jobs`` units at once in spawned worker processes, a branches unit only after its tickets unit."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    todo = [u for u in units if not u["cached"]]
    by_id = {u["id"]: u for u in units}
    # spawn, not fork: a forked copy of a parent that already ran torch threads can deadlock
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        running: dict[Any, dict] = {}
        while todo or running:
            for u in list(todo):
                dep = by_id.get(u["depends"]) if u["depends"] else None
                dep_state = report.state[dep["id"]] if dep else "done"
                if dep_state == "failed":
                    todo.remove(u)
                    report.fail(u, f"not run: its tickets unit {dep['id']} failed", None, None)
                elif dep_state in ("done", "cached") and len(running) < max(1, jobs):
                    todo.remove(u)
                    running[pool.submit(run_unit, u)] = u
                    report.state[u["id"]] = "running"
            on_change()
            if not running:
                continue
            finished, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in finished:
                u = running.pop(fut)
                try:
                    report.info[u["id"]] = fut.result()
                    report.state[u["id"]] = "done"
                except BaseException as exc:
                    message = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
                    report.fail(u, message, read_status(u).get("node", socket.gethostname()), u["log"])
            on_change()


def summary(report: Report) -> list[dict]:
    rows = []
    for u in report.units:
        info = report.info.get(u["id"], {})
        rows.append({"id": u["id"], "kind": u["kind"], "state": report.state[u["id"]],
                     "trainings_planned": u["trainings"], "trained": info.get("trained", 0),
                     "node": info.get("node"), "seconds": info.get("seconds"), "error": info.get("error"),
                     "log": info.get("log")})
    return rows


def results_of(units: list[dict]) -> list[dict]:
    """The per-seed results the sweep's branches units produced (or found cached), in plan order."""
    out = []
    for u in units:
        for path in u["results"]:
            p = Path(path)
            if p.exists():
                r = json.loads(p.read_text())
                out.append({"preset": r["preset"], "config_hash": r["config_hash"], "level": r["level"],
                            "perturbation": r["perturbation"]["name"], "params": r["perturbation"]["params"],
                            "seed": r["seed"], "accuracy": r["accuracy"], "drop": r["drop"],
                            "trained_with_seeds": r.get("trained_with_seeds"), "file": str(p)})
    return out


def fmt_hours(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:,.1f} h"


__all__ = ["Sweep", "load_sweep", "plan", "counts", "run_unit", "run_local", "Report", "prepare_units",
           "summary", "results_of", "SECONDS_PER_ITERATION"]
