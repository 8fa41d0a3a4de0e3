"""Options every command shares, each defined once, and the one place where run options are built."""

from __future__ import annotations

import functools
import os
import math
from pathlib import Path
from typing import Any, Callable

import click

from bench.cache import cache_root
from bench.errors import BenchError
from bench.config import DEFAULT_GROUP_SIZE, MAX_SEEDS
from bench.presets import DEFAULT_PRESET


def _stack(command: Callable, options: list[Callable]) -> Callable:
    for option in reversed(options):
        command = option(command)
    return command


def complete_presets(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from bench.presets import PRESETS

    return [name for name in PRESETS if name.startswith(incomplete)]


def complete_perturbations(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of registered perturbation names (it loads the plugins, so torch: about 2 s)."""
    from bench.plugins import default_plugins

    try:
        names = list(default_plugins().perturbations())
    except Exception:  # a broken plugin must not break the user's shell
        return []
    return [name for name in names if name.startswith(incomplete)]


def preset_option(command: Callable) -> Callable:
    return click.option("--preset", default=DEFAULT_PRESET, show_default=True, shell_complete=complete_presets,
                        help="Experiment preset (see `bench presets`).")(command)


class Seeds(click.ParamType):
    """``N`` (seeds 0..N-1), ``A-B`` (A..B inclusive) or ``A,B,C``."""

    name = "seeds"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, list)):
            return value
        text = str(value).strip()
        try:
            if "," in text:
                seeds = [int(part) for part in text.split(",") if part.strip()]
                self._bound(len(seeds), text, param, ctx)
                return seeds
            if "-" in text.lstrip("-"):
                low, high = (int(part) for part in text.split("-", 1))
                if high < low:
                    self.fail(f"'{text}' is an empty range; write the lower seed first, e.g. 10-14.", param, ctx)
                self._bound(high - low + 1, text, param, ctx)  # before building the list
                return list(range(low, high + 1))
            count = int(text)
        except ValueError:
            self.fail(f"'{text}' is not a seed count (3), range (10-14) or list (3,7,9).", param, ctx)
        if count < 1:
            self.fail(f"{count} seeds: give at least 1 (a count), or a range or list of seeds.", param, ctx)
        self._bound(count, text, param, ctx)
        return count

    def _bound(self, count: int, text: str, param, ctx) -> None:
        if count > MAX_SEEDS:
            self.fail(f"'{text[:40]}' names {count:,} seeds, more than the {MAX_SEEDS} one command trains.", param, ctx)


def seeds_option(default: int | None = None) -> Callable:
    help_ = ("Replicate seeds: a count N (seeds 0..N-1), a range 10-14 or a list 3,7,9."
             + ("" if default else " Default: the preset's."))
    return click.option("--seeds", type=Seeds(), default=default, show_default=default is not None, help=help_)


class Finite(click.ParamType):
    """A finite number of at least ``low`` (NaN fails every comparison, so click's FloatRange lets it through)."""

    name = "number"

    def __init__(self, low: float = 0.0):
        self.low = low

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"'{value}' is not a number.", param, ctx)
        if not math.isfinite(number) or number < self.low:
            self.fail(f"{value} is not a finite number of at least {self.low:g}.", param, ctx)
        return number


class Percent(click.ParamType):
    """A finite number in [0, 100] (NaN and infinities are refused, not silently matched to a level)."""

    name = "pct"

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"'{value}' is not a number.", param, ctx)
        if not math.isfinite(number) or not 0 <= number <= 100:
            self.fail(f"{value} is not a percentage between 0 and 100.", param, ctx)
        return number


class Seconds(click.ParamType):
    """A finite number of seconds above 0 (click's FloatRange lets NaN through: NaN fails every comparison).
    With ``off``, '0' or 'none' means no limit (None)."""

    name = "seconds"

    def __init__(self, off: bool = False):
        self.off = off

    def convert(self, value, param, ctx):
        if value is None or (self.off and str(value).strip().lower() in ("0", "none")):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"'{value}' is not a number.", param, ctx)
        if not math.isfinite(number) or not 0 < number <= 1e6:
            self.fail(f"{value} is not a number of seconds above 0.", param, ctx)
        return number


def level_options(command: Callable) -> Callable:
    return _stack(command, [
        click.option("--sparsity", type=Percent(), default=None, metavar="PCT",
                     help="Percent of prunable weights remaining."),
        click.option("--level", type=click.IntRange(min=0), default=None,
                     help="IMP level (0 = dense). Default: the preset's."),
    ])


def levels_options(command: Callable) -> Callable:
    """``--sparsity`` and a repeatable ``--level`` that also takes 'all' (``bench run`` only: it runs level by
    level; the other commands report one level)."""
    return _stack(command, [
        click.option("--sparsity", type=Percent(), default=None, metavar="PCT",
                     help="Percent of prunable weights remaining."),
        click.option("--level", "levels", multiple=True, metavar="N|all",
                     help="IMP level (0 = dense); repeat it, or give 'all' (levels 0..N), to run several in "
                          "ascending order. Default: the preset's."),
    ])


def parse_levels(values: tuple[str, ...], last: int) -> list[int]:
    """``--level`` values as ascending levels without repeats: numbers, and 'all' for 0..``last``."""
    levels: set[int] = set()
    for value in values:
        text = value.strip().lower()
        if text == "all":
            levels.update(range(last + 1))
        elif text.isascii() and text.isdigit():
            levels.add(int(text))
        else:
            raise BenchError(f"--level takes a level number 0..{last} or 'all', got '{value}'.")
    # several levels are checked before the first one trains; one level keeps prepare()'s message, which
    # lists every level's sparsity
    if len(levels) > 1 and max(levels) > last:
        raise BenchError(f"--level takes a level number 0..{last} or 'all', got '{max(levels)}'.")
    return sorted(levels)


def json_option(help_: str = "Print one JSON object instead of a table.") -> Callable:
    return click.option("--json", "as_json", is_flag=True, help=help_)


_RUN_KEYS = ("device", "cache_dir", "data_dir", "download", "checkpoint_every", "group_size", "compile_", "workers")


def run_options(command: Callable | None = None, *, workers: bool = True) -> Callable:
    """Where and how to train, the same for every training command; the command receives ``options``
    (a RunOptions without progress: the command adds its progress bars). ``workers=False`` leaves out
    ``--workers``, for a command that cannot train seed groups side by side (it then runs one worker)."""
    if command is None:
        return functools.partial(run_options, workers=workers)

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        from bench.experiments.setup import RunOptions  # loads torch: only once a training command runs

        values = {key: kwargs.pop(key, None) for key in _RUN_KEYS}
        options = RunOptions(
            cache=cache_root(values["cache_dir"]), device=values["device"],
            data_dir=Path(values["data_dir"]) if values["data_dir"] else None, download=values["download"],
            checkpoint_every=values["checkpoint_every"], group_size=values["group_size"], compile=values["compile_"],
            workers=(values["workers"] or default_workers()) if workers else 1)
        return command(options=options, **kwargs)

    return _stack(wrapper, [
        click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto."),
        cache_dir_option("Cache root. Default: $BENCH_CACHE_DIR, else the user cache folder."),
        click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                     help="Where datasets live. Default: <cache>/data."),
        click.option("--download", is_flag=True, help="Download CIFAR-10 if it is missing (needs internet)."),
        click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
                     help="Checkpoint every N steps (default: each epoch)."),
        click.option("--group-size", type=click.IntRange(min=1), default=None,
                     help=f"Most replicates trained together as one fused model (1 = one at a time). "
                          f"Default: the preset's ({DEFAULT_GROUP_SIZE} unless it says otherwise)."),
        *([click.option("--workers", type=click.IntRange(min=1), default=None,
                        help="Seed groups trained at once, one process each (CPU). Default: one per CPU core. "
                             "Never changes a number.")] if workers else []),
        click.option("--compile", "compile_", is_flag=True,
                     help="torch.compile the model (worth it on long GPU runs)."),
    ])


def default_workers() -> int:
    """One worker per core this process may use: each trains with one thread (docs/reproducibility.md)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def logger_options(command: Callable) -> Callable:
    """``--logger`` (repeatable), ``--log-dir`` and ``--tracking-uri``: the experiment trackers a run logs to
    (bench.experiments.tracking); the command receives ``loggers``, ``log_dir`` and ``tracking_uri``."""
    return _stack(command, [
        click.option("--logger", "loggers", multiple=True, metavar="NAME",
                     help="Log the run to this experiment tracker (tensorboard, mlflow, or a plugin's); repeat for "
                          "several. Default: $BENCH_LOGGERS (comma-separated). Never changes a number."),
        click.option("--log-dir", type=click.Path(file_okay=False), default=None, envvar="BENCH_LOG_DIR",
                     help="Where loggers write, one folder per logger. Default: $BENCH_LOG_DIR, else <cache>/logs."),
        click.option("--tracking-uri", default=None, envvar="BENCH_TRACKING_URI", metavar="URI",
                     help="The tracking store of a logger that has one (MLflow). Default: $BENCH_TRACKING_URI, "
                          "else $MLFLOW_TRACKING_URI, else SQLite under the log folder."),
    ])


def cache_dir_option(help_: str) -> Callable:
    return click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help=help_)


def parse_params(values: tuple[str, ...], option: str = "--param") -> dict[str, str]:
    """``--param key=value`` options (or another ``option``'s) as a dict."""
    params = {}
    for item in values:
        if "=" not in item:
            raise BenchError(f"{option} expects key=value, got '{item}'.")
        key, value = (part.strip() for part in item.split("=", 1))
        if not key:
            raise BenchError(f"{option} expects key=value, got '{item}' (no key).")
        if key in params:
            raise BenchError(f"{option} {key} is given twice ({params[key]!r} and {value!r}); give it once.")
        params[key] = value
    return params
