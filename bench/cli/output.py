"""What commands print: consoles, progress bars, numbers, the per-seed table and the JSON envelope."""

from __future__ import annotations

import json
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click
from rich.console import Console
from rich.table import Table

from bench.experiments.records import Outcome
from bench.report.render import json_safe
from bench.stages import StageEvent

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def quiet() -> bool:
    return bool(os.environ.get("CI")) or not sys.stderr.isatty()


@contextmanager
def progress_bars(enabled: bool) -> Iterator:
    """A factory of per-stage progress callbacks; rich bars on a terminal, nothing otherwise."""
    if not enabled:
        yield lambda description, total: (lambda step: None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=False) as progress:
        def factory(description: str, total: int):
            task = progress.add_task(description, total=total)
            return lambda done: progress.update(task, completed=done)

        yield factory


def ui(as_json: bool):
    """Progress bars unless the output is for a machine or not on a terminal."""
    return progress_bars(not as_json and not quiet())


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g}" if abs(value) >= 1e6 else f"{value:.{digits}f}"  # never hundreds of digits


def interval_text(summary) -> str:
    if math.isnan(summary.low):
        return "n=1, no interval"
    return f"[{summary.low:.2f}, {summary.high:.2f}]"


def echo_json(payload) -> None:
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


def seed_table(outcome: Outcome, columns: tuple[tuple[str, str], ...]) -> Table:
    """One row per seed, then the mean and 95% interval of every column that has one."""
    params_text = ", ".join(f"{k}={v}" for k, v in outcome.params.items())
    table = Table(title=f"{outcome.name}{' (' + params_text + ')' if params_text else ''} on {outcome.preset}: "
                        f"level {outcome.level}, {outcome.percent_remaining:.1f}% of weights remaining")
    table.add_column("seed", justify="right")
    for header, _ in columns:
        table.add_column(header, justify="right")

    def value(record: dict, key: str) -> str:
        if key == "effective_std":
            return fmt(record[key], 4)
        return fmt(record[key] if key == "drop" else record["accuracy"][key])

    for r in outcome.records:
        table.add_row(str(r["seed"]), *(value(r, key) for _, key in columns))
    summaries = {key: outcome.summary(key) for _, key in columns if key in SUMMARIZED}
    table.add_section()
    table.add_row("mean", *(fmt(summaries[k].mean) if k in summaries else "" for _, k in columns))
    table.add_row("95% CI", *(interval_text(summaries[k]) if k in summaries else "" for _, k in columns))
    return table


def registry_row(name: str, item, plugin, params=None, **extra) -> dict:
    """One registered perturbation or pre-training, as `bench perturbations --json` lists it."""
    params = getattr(item, "params", ()) if params is None else params
    return {"name": name, **extra, "description": item.description,
            "params": [{"name": p.name, "type": p.type.__name__, "default": p.default, "help": p.help}
                       for p in params],
            "plugin": plugin.name, "distribution": plugin.dist, "version": plugin.version}


def show_registry(title: str, rows: list[dict], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=title)
    for column in ("name", "description", "parameters", "plugin"):
        table.add_column(column)
    for r in rows:
        params = ", ".join(f"{x['name']}: {x['type']} = {x['default']}" for x in r["params"])
        table.add_row(r["name"], r["description"], params or "-", f"{r['plugin']} ({r['distribution']} {r['version']})")
    out.print(table)
