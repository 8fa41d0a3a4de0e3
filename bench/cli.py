"""The ``bench`` command line."""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click
from rich.console import Console
from rich.table import Table

from bench.cache import cache_root
from bench.errors import BenchError
from bench.plugins import default_plugins
from bench.presets import DEFAULT_PRESET, PRESETS, get_preset

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


class BenchGroup(click.Group):
    """Shows BenchError (and anything unexpected) as one line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(os.environ.get("BENCH_DEBUG"))
        try:
            return super().invoke(ctx)
        except BenchError as exc:
            if debug:
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("Interrupted. Finished stages and checkpoints are saved: rerun the same command to resume.",
                       err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if debug:
                raise
            click.echo(f"Error: unexpected {type(exc).__name__}: {exc} (set BENCH_DEBUG=1 to see the traceback).",
                       err=True)
            ctx.exit(1)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"Warning: {message}", err=True)


@click.group(cls=BenchGroup)
@click.version_option(package_name="earlyphase-bench")
def cli() -> None:
    """Perturbation benchmark for the early phase of neural network training."""
    warnings.showwarning = _show_warning


def _quiet() -> bool:
    return bool(os.environ.get("CI")) or not sys.stderr.isatty()


@contextmanager
def progress_factory(enabled: bool) -> Iterator:
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


def _fmt(value: float, digits: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _interval(summary) -> str:
    if math.isnan(summary.low):
        return "n=1, no interval"
    return f"[{summary.low:.2f}, {summary.high:.2f}]"


def parse_params(values: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for item in values:
        if "=" not in item:
            raise BenchError(f"--param expects key=value, got '{item}'.")
        key, value = item.split("=", 1)
        params[key.strip()] = value.strip()
    return params


@cli.command()
@click.option("--perturbation", "-p", "perturbations", multiple=True, default=("identity",), show_default=True,
              help="Registered perturbation name; repeat to run several at one level, trained together.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Perturbation parameter (repeatable).")
@click.option("--preset", default=DEFAULT_PRESET, show_default=True, help="Experiment preset (see `bench presets`).")
@click.option("--seeds", type=int, default=None, help="Number of replicate seeds (0..N-1). Default: the preset's.")
@click.option("--sparsity", type=float, default=None, metavar="PCT", help="Percent of prunable weights remaining.")
@click.option("--level", type=int, default=None, help="IMP level (0 = dense).")
@click.option("--perturbation-seed", type=int, default=0, show_default=True,
              help="Seed of the perturbation's own randomness (recorded in the result).")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Cache root. Default: $BENCH_CACHE_DIR, else the user cache folder.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where datasets live. Default: <cache>/data.")
@click.option("--download", is_flag=True, help="Download CIFAR-10 if it is missing (needs internet).")
@click.option("--checkpoint-every", type=int, default=None, help="Checkpoint every N steps (default: each epoch).")
@click.option("--group-size", type=int, default=16, show_default=True,
              help="Most replicates trained together as one fused model (1 = one at a time).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (worth it on long GPU runs).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object instead of a table ({'runs': [...]} for several perturbations).")
def run(perturbations, params, preset, seeds, sparsity, level, perturbation_seed, device, cache_dir, data_dir,
        download, checkpoint_every, group_size, compile_, as_json):
    """Train (or reuse) the trunk and IMP levels, perturb the rewound weights, retrain, report the drop."""
    from bench.runner import run_perturbations

    chosen = get_preset(preset)
    root = cache_root(cache_dir)
    raw = parse_params(params)
    if raw and len(perturbations) > 1:
        raise BenchError("--param applies to one perturbation: run perturbations with parameters one at a time.")
    with progress_factory(not as_json and not _quiet()) as progress:
        outcomes = run_perturbations(
            chosen, [(name, raw) for name in dict.fromkeys(perturbations)], seeds=seeds or chosen.seeds, level=level,
            sparsity=sparsity, device=device, cache=root, data_dir=Path(data_dir) if data_dir else None,
            download=download, perturbation_seed=perturbation_seed, progress=progress,
            checkpoint_every=checkpoint_every, group_size=group_size, compile=compile_)
    stages = stage_counts(outcomes[0].log)
    if as_json:
        objects = [outcome_json(o, stages, perturbation=o.perturbation.perturbation.name,
                                plugin=o.perturbation.plugin.name) for o in outcomes]
        echo_json(objects[0] if len(objects) == 1 else {"runs": objects})
        return
    say_stages(stages, root)
    for o in outcomes:
        out.print(seed_table(o, o.perturbation.perturbation.name, RUN_COLUMNS))


RUN_COLUMNS = (("dense %", "dense"), ("ticket %", "ticket"), ("perturbed %", "perturbed"), ("drop (pts)", "drop"),
               ("effective std", "effective_std"))
SUMMARIZED = ("dense", "ticket", "perturbed", "pretrained_dense", "drop")  # per-seed values with an interval


def stage_counts(log: list[str]) -> dict[str, int]:
    return {"cached": sum(line.startswith("cached") for line in log),
            "trained": sum(line.startswith("trained") for line in log)}


def say_stages(stages: dict[str, int], root: Path) -> None:
    if stages["trained"] == 0:
        err.print(f"Used the cache: all {stages['cached']} stages were already computed; nothing was trained.")
    else:
        err.print(f"Trained {stages['trained']} stages, reused {stages['cached']} from the cache ({root}).")


def echo_json(payload) -> None:
    click.echo(json.dumps(_json_safe(payload), indent=2, allow_nan=False))


def outcome_json(outcome, stages: dict[str, int], **what) -> dict:
    """The `--json` object of a run over seeds; ``what`` names what was run (perturbation or pre-training)."""
    keys = [k for k in SUMMARIZED if k == "drop" or k in outcome.records[0]["accuracy"]]
    return {"preset": outcome.preset, "config_hash": outcome.records[0]["config_hash"], "level": outcome.level,
            "percent_remaining": outcome.density, **what, "params": outcome.params, "n": len(outcome.records),
            "summary": {k: outcome.summary(k).as_dict() for k in keys}, "stages": stages,
            "results": outcome.records}


def seed_table(outcome, name: str, columns: tuple[tuple[str, str], ...]) -> Table:
    """One row per seed, then the mean and 95% interval of every column that has one."""
    params_text = ", ".join(f"{k}={v}" for k, v in outcome.params.items())
    table = Table(title=f"{name}{' (' + params_text + ')' if params_text else ''} on {outcome.preset}: "
                        f"level {outcome.level}, {outcome.density:.1f}% of weights remaining")
    table.add_column("seed", justify="right")
    for header, _ in columns:
        table.add_column(header, justify="right")

    def value(record: dict, key: str) -> str:
        if key == "effective_std":
            return _fmt(record[key], 4)
        return _fmt(record[key] if key == "drop" else record["accuracy"][key])

    for r in outcome.records:
        table.add_row(str(r["seed"]), *(value(r, key) for _, key in columns))
    summaries = {key: outcome.summary(key) for _, key in columns if key in SUMMARIZED}
    table.add_section()
    table.add_row("mean", *(_fmt(summaries[k].mean) if k in summaries else "" for _, k in columns))
    table.add_row("95% CI", *(_interval(summaries[k]) if k in summaries else "" for _, k in columns))
    return table


def _json_safe(value):
    """NaN is not JSON: an interval that cannot be estimated (n = 1) is written as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def presets(as_json):
    """List the experiment presets."""
    from bench.runner import levels_table
    from bench import models
    from bench.config import canonical, parse_step

    rows = []
    for preset in PRESETS.values():
        exp = preset.experiment
        in_ch = 3 if exp.data.dataset == "cifar10" else 1
        train_size = 50000 if exp.data.dataset == "cifar10" else exp.data.train_examples
        per_epoch = exp.iterations_per_epoch(train_size)
        model = models.build_model(exp.model, in_ch, 10)
        params = dict(model.named_parameters())
        table = levels_table(exp, in_ch, 10)
        rows.append({
            "name": preset.name, "description": preset.description, "dataset": exp.data.dataset,
            "model": exp.model.name, "parameters": sum(p.numel() for p in params.values()),
            "prunable": sum(params[n].numel() for n in models.prunable_names(model)),
            "train_examples": train_size, "iterations_per_epoch": per_epoch,
            "iterations": parse_step(exp.train.steps, per_epoch), "rewind_iteration": parse_step(exp.rewind, per_epoch),
            "prune_fraction": exp.prune.fraction, "levels": exp.prune.levels, "default_level": preset.level,
            "default_percent_remaining": round(table[preset.level][1], 2), "default_seeds": preset.seeds,
            "config": canonical(exp),
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Presets")
    for column in ("name", "dataset", "model", "params", "prunable", "T (it)", "k (it)", "prune/level", "levels",
                   "default % left"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["name"], r["dataset"], r["model"], f"{r['parameters']:,}", f"{r['prunable']:,}",
                      f"{r['iterations']:,}", str(r["rewind_iteration"]), f"{r['prune_fraction']:.0%}",
                      str(r["levels"]), f"{r['default_percent_remaining']:.1f}% (level {r['default_level']})")
    out.print(table)


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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def perturbations(as_json):
    """List the registered perturbations."""
    rows = [registry_row(name, reg.perturbation, reg.plugin) for name, reg in default_plugins().perturbations().items()]
    show_registry("Perturbations", rows, as_json)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(as_json):
    """List the loaded plugins, their hooks, and any that failed to load."""
    loaded = default_plugins()
    data = {
        "loaded": [{"name": p.name, "distribution": p.dist, "version": p.version, "module": p.module,
                    "hooks": list(p.hooks)} for p in loaded.loaded],
        "failed": loaded.failed,
        "skipped": loaded.skipped,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    table = Table(title="Plugins")
    for column in ("name", "distribution", "version", "hooks"):
        table.add_column(column)
    for p in data["loaded"]:
        table.add_row(p["name"], p["distribution"], p["version"], ", ".join(p["hooks"]))
    for f in data["failed"]:
        table.add_row(f["name"], f["dist"], "-", f"[red]failed: {f['error']}[/red]")
    out.print(table)


def main() -> None:
    cli(prog_name="bench")


from bench.report_cli import leaderboard, plot  # noqa: E402

cli.add_command(leaderboard)
cli.add_command(plot)

from bench.early_cli import (pretrain_command, pretrainings_command, rewind_curve_command,  # noqa: E402
                             trace_command)

cli.add_command(pretrain_command)
cli.add_command(pretrainings_command)
cli.add_command(rewind_curve_command)
cli.add_command(trace_command)

from bench.sweep_cli import sweep_command  # noqa: E402

cli.add_command(sweep_command)
