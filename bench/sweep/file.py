"""Reading and validating a sweep file (TOML): the grid it names, checked before anything runs.

Every problem is one line naming the key (docs/cluster.md lists the keys). A preset's experiment under the
sweep's overrides and the IMP levels the sweep asks of it are resolved here too, so a bad override or
level fails when the file is read.
"""

from __future__ import annotations

import itertools
import math
import os
import stat
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.config import Experiment, parse_step
from bench.datasets import dataset_info
from bench.errors import BenchError, unknown
from bench.experiments.setup import resolve_level
from bench.pruning import levels_table

TOP_KEYS = ("presets", "seeds", "levels", "sparsities", "perturbations", "perturbation_seed", "overrides", "run",
            "slurm", "estimate")
RUN_KEYS = ("device", "threads", "group_size", "data_dir")
SLURM_KEYS = ("partition", "time_min", "gpus_per_node", "mem_gb", "cpus_per_task", "array_parallelism",
              "constraint", "additional")
OVERRIDE_SECTIONS = ("data", "model", "train", "prune", "rewind")
MAX_BYTES = 1 << 20  # a sweep file is a few hundred bytes; anything far larger is not one and is not read whole
MAX_SECONDS_PER_ITERATION = 3600.0  # [estimate]: an hour per replicate-iteration is beyond any preset here


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


def _finite(path: Path, key: str, value: Any) -> None:
    """Refuse NaN and infinities anywhere in ``value`` (TOML has both): a NaN learning rate trains NaN
    weights that are then cached as done."""
    if isinstance(value, dict):
        for k, v in value.items():
            _finite(path, f"{key}.{k}", v)
    elif isinstance(value, list):
        for v in value:
            _finite(path, key, v)
    elif isinstance(value, float) and not math.isfinite(value):
        raise _fail(path, key, f"expected a finite number, got {value}.")


def _read(path: Path) -> str:
    """The file's text, read with a size cap: a symlink to /dev/zero or a huge file is refused, not read whole."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise BenchError(f"Sweep file {path} is not a regular file: give the path of a .toml file.")
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise BenchError(f"Sweep file {path} does not exist.") from None
    except OSError as exc:
        raise BenchError(f"Sweep file {path} cannot be read: {exc.strerror or exc}.") from None
    if len(raw) > MAX_BYTES:
        raise BenchError(f"Sweep file {path} is over {MAX_BYTES:,} bytes; a sweep file is a short TOML grid.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BenchError(f"Sweep file {path} is not UTF-8 text (byte {exc.start}).") from None


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file; every problem is one line naming the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(_read(path))
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
        _finite(path, f"perturbations.{name}", params)
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
    _finite(path, "overrides", overrides)

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
        if (set(estimate) != {"seconds_per_iteration"} or isinstance(value, bool) or not isinstance(value, (int, float))
                or not 0 < value <= MAX_SECONDS_PER_ITERATION):  # NaN fails the comparison too
            raise _fail(path, "estimate", f"expected only seconds_per_iteration = a number in (0, "
                                          f"{MAX_SECONDS_PER_ITERATION:g}], got {value!r}.")
        sweep.seconds_per_iteration = float(value)
    # resolve every preset's experiment and levels now, so a bad override or level fails before anything runs
    for name in presets:
        experiment_of(sweep, name)
        levels_of(sweep, name)
    return sweep


def experiment_of(sweep: Sweep, preset: str) -> Experiment:
    return preset_experiment(preset, sweep.overrides, sweep.path)


def preset_experiment(preset: str, overrides: dict[str, Any], path: Path) -> Experiment:
    """``preset``'s experiment under a sweep's [overrides] (``path``: the sweep file, named in errors)."""
    from bench.presets import get_preset

    exp = get_preset(preset).experiment
    sections = {k: v for k, v in overrides.items() if k != "rewind"}
    try:
        for name, values in sections.items():
            if not isinstance(values, dict):
                raise _fail(path, f"overrides.{name}", "expected a table of fields.")
            # TOML arrays become tuples: the experiment's list-valued fields are tuples (the hash sees them so)
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
            exp = exp.with_overrides(**{name: values})
    except TypeError as exc:
        raise _fail(path, "overrides", f"{exc}.") from None
    if "rewind" in overrides:
        exp = replace(exp, rewind=str(overrides["rewind"]))
    parse_step(exp.rewind, 1)  # a bad step string fails here, naming itself
    parse_step(exp.train.steps, 1)
    try:
        dataset_info(exp.data.dataset)
    except BenchError as exc:
        raise _fail(path, "overrides.data", str(exc)) from None
    return exp


def levels_of(sweep: Sweep, preset: str) -> list[int]:
    from bench.presets import get_preset

    exp = experiment_of(sweep, preset)
    info = dataset_info(exp.data.dataset)
    table = levels_table(exp, info.in_channels, info.num_classes)
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

