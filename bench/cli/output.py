"""What commands print: consoles, progress bars, numbers, the per-seed table and the JSON envelope."""

from __future__ import annotations

import json
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import click
from rich.console import Console
from rich.table import Table

from bench.batchlog import BatchLog, heartbeat_seconds, stamped
from bench.progress import NO_PROGRESS, Progress, StageProgress
from bench.plugin_guard import markup_safe

if TYPE_CHECKING:  # types only: listing presets or plugins loads neither the training stack nor torch
    from bench.execute import StageEvent
    from bench.experiments.records import Outcome

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def quiet() -> bool:
    """No live bars: under CI or when stderr is not a terminal (a log file), where one line per stage is kept."""
    return bool(os.environ.get("CI")) or not sys.stderr.isatty()


def silenced() -> bool:
    """``bench --quiet`` (or a command's own ``--quiet``): neither bars nor log lines."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().meta.get("bench.quiet"))


class _Bar:
    """One stage's rich bar; a finished bar keeps showing how long its stage took."""

    def __init__(self, bars, task):
        self.bars, self.task = bars, task

    def advance(self, done: int) -> None:
        self.bars.update(self.task, completed=done)

    def done(self, accuracies: Sequence[float], seconds: float) -> None:
        pass  # the bar is full; accuracies are in the table that follows


class _Bars(Progress):
    def __init__(self, bars):
        self.bars = bars

    def start(self, label: str, total: int) -> StageProgress:
        return _Bar(self.bars, self.bars.add_task(label, total=total))


@contextmanager
def progress_bars(enabled: bool) -> Iterator[Progress]:
    """Per-stage progress: rich bars on a terminal, nothing otherwise."""
    if not enabled:
        yield NO_PROGRESS
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    # elapsed and remaining: a finished bar keeps showing how long its stage took
    with RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=err, transient=False) as bars:
        yield _Bars(bars)


def _log(text: str) -> None:
    click.echo(stamped(text), err=True)  # click flushes: each line lands as it happens


@contextmanager
def log_lines(command: str = "bench") -> Iterator[Progress]:
    """The progress of a batch log (bench.batchlog): a header line per experiment, a line when a stage starts
    and when it finishes (with its seconds, and its test accuracy where the stage reports it through
    ``done``), a heartbeat inside long stages and a line while waiting on another process's stage lock."""
    log = BatchLog(_log, command, heartbeat_seconds())
    try:
        yield log
    finally:
        log.flush()


def ui(as_json: bool = False):
    """Live bars on a terminal (on stderr, so also with --json: stdout carries only the JSON), log lines in a
    batch log (a header, stage starts and finishes, heartbeats, lock waits), nothing with --quiet."""
    if silenced():
        return progress_bars(False)
    if quiet():
        ctx = click.get_current_context(silent=True)
        return log_lines((ctx.info_name if ctx else None) or "bench")
    return progress_bars(True)


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g}" if abs(value) >= 1e6 else f"{value:.{digits}f}"  # never hundreds of digits


ACCURACIES = ("dense", "ticket", "perturbed", "pretrained_dense")


def interval_text(summary, key: str = "drop") -> str:
    """The 95% interval, clipped to what the quantity can be: a t-interval over two seeds can reach past
    100% accuracy, and the part outside [0, 100] (or [-100, 100] for a drop) says nothing."""
    if math.isnan(summary.low):
        return "-"
    bound = (0.0, 100.0) if key in ACCURACIES else (-100.0, 100.0)
    return f"[{max(summary.low, bound[0]):.2f}, {min(summary.high, bound[1]):.2f}]"


def echo_json(payload) -> None:
    from bench.report.render import json_safe

    click.echo(json.dumps(json_safe(payload), indent=2, allow_nan=False))


def stage_counts(events: list[StageEvent]) -> dict[str, int]:
    return {"cached": sum(e.kind == "cached" for e in events), "trained": sum(e.kind == "trained" for e in events)}


def say_stages(stages: dict[str, int], root: Path) -> None:
    if stages["trained"] == 0:
        err.print(f"Used the cache: all {stages['cached']} stages were already computed; nothing was trained.")
    else:
        err.print(f"Trained {stages['trained']} stages, reused {stages['cached']} from the cache ({root}).")


SUMMARIZED = ("dense", "ticket", "perturbed", "pretrained_dense", "drop")  # per-seed values with an interval


def outcome_json(outcome: Outcome, stages: dict[str, int], kind: str) -> dict:
    """The `--json` object of a run over seeds; ``kind`` names what was run ("perturbation" or "pretraining")."""
    keys = [k for k in SUMMARIZED if k == "drop" or k in outcome.records[0]["accuracy"]]
    return {"preset": outcome.preset, "config_hash": outcome.records[0]["config_hash"], "level": outcome.level,
            "percent_remaining": outcome.percent_remaining, kind: outcome.name, "plugin": outcome.plugin.name,
            "params": outcome.params, "n": len(outcome.records),
            "summary": {k: outcome.summary(k).as_dict() for k in keys}, "stages": stages,
            "results": outcome.records}


def _where(outcome: Outcome) -> str:
    return f"{outcome.preset}: level {outcome.level}, {outcome.percent_remaining:.1f}% of weights remaining"


def _label(outcome: Outcome) -> str:
    """The name and parameters, as rich markup: a value (a plugin's default, a --param string) is shown as text."""
    params_text = ", ".join(f"{k}={v}" for k, v in outcome.params.items())
    return markup_safe(f"{outcome.name}{' (' + params_text + ')' if params_text else ''}")


def seed_table(outcome: Outcome, columns: tuple[tuple[str, str], ...], title: str | None = None) -> Table:
    """One row per seed, then (from two seeds on) the mean and 95% interval of every column that has one."""
    table = Table(title=title or f"{_label(outcome)} on {_where(outcome)}")
    table.add_column("seed", justify="right")
    for header, _ in columns:
        table.add_column(header, justify="right")

    def value(record: dict, key: str) -> str:
        if key == "effective_std":
            return fmt(record[key], 4)
        return fmt(record[key] if key == "drop" else record["accuracy"][key])

    for r in outcome.records:
        table.add_row(str(r["seed"]), *(value(r, key) for _, key in columns))
    if len(outcome.records) < 2:
        return table  # one seed: its row is the mean, and there is no interval
    summaries = {key: outcome.summary(key) for _, key in columns if key in SUMMARIZED}
    table.add_section()
    table.add_row("mean", *(fmt(summaries[k].mean) if k in summaries else "" for _, k in columns))
    table.add_row("95% CI", *(interval_text(summaries[k], k) if k in summaries else "" for _, k in columns))
    return table


def comparison_table(outcomes: list[Outcome]) -> Table:
    """Several perturbations of the same seeds and level: one row each (the dense and ticket numbers they
    share are printed once, by seed_table)."""
    n = len(outcomes[0].records)
    table = Table(title=f"{len(outcomes)} perturbations on {_where(outcomes[0])}, {n} seed{'s' if n != 1 else ''}")
    table.add_column("perturbation")
    headers = ("mean drop", "95% CI", "drop per seed", "perturbed %") if n >= 2 else ("drop (pts)", "perturbed %")
    for header in headers:
        table.add_column(header, justify="right")
    for o in outcomes:
        drop, perturbed = o.summary("drop"), o.summary("perturbed")
        if n >= 2:
            table.add_row(_label(o), fmt(drop.mean), interval_text(drop), ", ".join(fmt(v) for v in drop.values),
                          fmt(perturbed.mean))
        else:
            table.add_row(_label(o), fmt(drop.mean), fmt(perturbed.mean))
    return table


def level_table(outcomes: list[Outcome]) -> Table:
    """One level of a run over several levels: a row per perturbation, means over seeds, titled with the level.
    No vertical rules and no per-seed column, so it fits 80 columns (--json has every seed)."""
    from rich import box

    first = outcomes[0]
    n = len(first.records)
    table = Table(title=f"{first.preset}, level {first.level}: {first.percent_remaining:.1f}% of weights remaining, "
                        f"{n} seed{'s' if n != 1 else ''}", caption="accuracy in %, drop in points",
                  box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("perturbation", no_wrap=True)  # a name is typed back: never split it
    headers = ("ticket", "perturbed", "drop") + (("95% CI",) if n >= 2 else ())
    for header in headers:
        table.add_column(header, justify="right", no_wrap=True)
    for o in outcomes:
        drop = o.summary("drop")
        cells = [fmt(o.summary("ticket").mean), fmt(o.summary("perturbed").mean), fmt(drop.mean)]
        table.add_row(_label(o), *cells, *((interval_text(drop),) if n >= 2 else ()))
    return table


def say_next(cache: Path, files: int, preset: str, levels: int = 1) -> None:
    """Where the result files went and what to run next: the end of a run's output."""
    from bench import paths

    # several levels are what the accuracy-against-sparsity figure draws
    figure = "--vs-sparsity --output accuracy.png" if levels > 1 else "--output drops.png"
    err.print(f"Wrote {files} result file{'s' if files != 1 else ''} under {paths.results_dir(cache)}.")
    err.print(f"Next: bench leaderboard --cache-dir {cache}\n"
              f"      bench plot --cache-dir {cache} --preset {preset} {figure}", soft_wrap=True)


def registry_row(name: str, item, plugin, params=None, **extra) -> dict:
    """One registered perturbation or pre-training, as `bench perturbations --json` lists it."""
    params = getattr(item, "params", ()) if params is None else params
    return {"name": name, **extra, "description": item.description,
            "params": [{"name": p.name, "type": p.type.__name__, "default": p.default, "help": p.help}
                       for p in params],
            "plugin": plugin.name, "distribution": plugin.dist, "version": plugin.version}


def show_registry(title: str, rows: list[dict], as_json: bool) -> None:
    if as_json:  # a default that is not JSON is shown as text, never an invalid document
        click.echo(json.dumps(rows, indent=2, allow_nan=False, default=str))
        return
    table = Table(title=title)
    table.add_column("name", no_wrap=True)  # a name is typed back: never split it
    table.add_column("description")
    table.add_column("parameters")
    table.add_column("plugin", no_wrap=True)  # its distribution is in `bench plugins`
    for r in rows:  # every string is the plugin's: shown as text, never as markup or escape sequences
        params = ", ".join(f"{x['name']}: {x['type']} = {x['default']}" for x in r["params"])
        table.add_row(*(markup_safe(text) for text in (r["name"], r["description"], params or "-",
                                                       f"{r['plugin']} {r['version']}")))
    from bench.report.fitting import fit

    out.print(fit(table, out.width))  # no word cut: narrower terminals get one block per entry
