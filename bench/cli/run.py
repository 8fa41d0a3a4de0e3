"""``bench run`` and the listings: ``bench presets``, ``bench perturbations``, ``bench plugins``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from bench.cli.options import Seconds, complete_perturbations, json_option, levels_options, logger_options, \
    parse_levels, parse_params, preset_option, run_options, seeds_option
from bench.cli.output import comparison_table, echo_json, err, level_table, out, outcome_json, registry_row, \
    say_next, say_stages, seed_table, show_registry, stage_counts, ui
from bench.errors import BenchError
from bench.plugin_guard import DEFAULT_APPLY_TIMEOUT, markup_safe
from bench.plugins import default_plugins
from bench.presets import PRESETS, describe, get_preset
from bench.report.fitting import fit

if TYPE_CHECKING:
    from bench.experiments.records import Outcome
    from bench.experiments.setup import RunOptions
    from bench.experiments.tracking import Tracking


RUN_COLUMNS = (("dense %", "dense"), ("ticket %", "ticket"), ("perturbed %", "perturbed"), ("drop (pts)", "drop"),
               ("effective std", "effective_std"))
SHARED_COLUMNS = (("dense %", "dense"), ("ticket %", "ticket"))


@click.command()
@click.option("--perturbation", "-p", "perturbations", multiple=True, default=("identity",), show_default=True,
              shell_complete=complete_perturbations,
              help="Registered perturbation name; repeat to run several at one level, trained together.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Perturbation parameter (repeatable).")
@preset_option
@seeds_option()
@levels_options
@click.option("--perturbation-seed", type=int, default=0, show_default=True,
              help="Seed of the perturbation's own randomness (recorded in the result).")
@click.option("--apply-timeout", type=Seconds(off=True), default=DEFAULT_APPLY_TIMEOUT, show_default=True,
              metavar="SECONDS", help="Fail, naming the plugin, when a perturbation's apply() runs longer than this; "
                                      "0 or none: no limit.")
@click.option("--pruning", default=None, metavar="NAME",
              help="Pruning strategy making each IMP level's mask (bench pruning-strategies); default: the preset's.")
@click.option("--pruning-param", "pruning_params", multiple=True, metavar="KEY=VALUE",
              help="Parameter of the pruning strategy (repeatable), e.g. dense=fc or rates=fc=0.5.")
@run_options
@logger_options
@json_option("Print one JSON object instead of a table ({'runs': [...]} for several perturbations, "
             "{'levels': [...]} for several levels).")
def run(perturbations, params, preset, seeds, sparsity, levels, perturbation_seed, apply_timeout, pruning,
        pruning_params, options, loggers, log_dir, tracking_uri, as_json):
    """Train (or reuse) the trunk and IMP levels, perturb the rewound weights, retrain, report the drop.

    \b
    Examples:
      bench run -p shuffle-layer
      bench run -p gaussian-noise --param scale=2 --seeds 10-14
      bench run -p identity -p reinit --level 2 --json
      bench run -p identity -p imp-rewind-0 --level all --seeds 3
      bench run -p imp-rewind-0 --level 1 --level 2
      bench run -p identity --logger tensorboard --logger mlflow
      bench run --pruning random-layerwise --level all --seeds 2
    """
    from bench.experiments.perturb import run_perturbations
    from bench.experiments.tracking import tracked
    from bench.pruning import with_strategy

    chosen = get_preset(preset)
    if pruning is not None or pruning_params:
        raw_pruning = parse_params(pruning_params, "--pruning-param")
        chosen = replace(chosen, experiment=with_strategy(chosen.experiment, pruning, raw_pruning))
    raw = parse_params(params)
    if raw and len(perturbations) > 1:
        raise BenchError("--param applies to one perturbation: run perturbations with parameters one at a time.")
    chosen_levels = parse_levels(levels, chosen.experiment.prune.levels)
    if chosen_levels and sparsity is not None:
        raise BenchError("Give either --level or --sparsity, not both.")
    requests = [(name, raw) for name in dict.fromkeys(perturbations)]
    tracking = _open_tracking(loggers, log_dir, tracking_uri, options, chosen.name, requests, chosen_levels)
    with tracked(tracking), ui(as_json) as progress:
        # ascending, one level at a time: each level's chain is cached, so a later level trains only its own stages
        runs = [run_perturbations(chosen, requests, replace(options, progress=progress, apply_timeout=apply_timeout,
                                                            tracking=tracking),
                                  seeds=chosen.seeds if seeds is None else seeds, level=lvl, sparsity=sparsity,
                                  perturbation_seed=perturbation_seed)
                for lvl in chosen_levels or [None]]
    for logger in tracking.loggers if tracking else []:
        err.print(f"Logged to {logger.name}: {getattr(logger, 'location', logger.version)}", soft_wrap=True)
    say_group_seeds(runs)
    if as_json:
        objects = [_level_json(outcomes) for outcomes in runs]
        echo_json(objects[0] if len(objects) == 1 else {"levels": objects})
        return
    stages = {key: sum(stage_counts(o[0].events)[key] for o in runs) for key in ("cached", "trained")}
    say_stages(stages, options.cache)
    if len(runs) == 1:
        _show_level(runs[0])
    else:
        for outcomes in runs:
            out.print(fit(level_table(outcomes), out.width), "")
    say_next(options.cache, sum(len(o.records) for outcomes in runs for o in outcomes), chosen.name, len(runs))


def _open_tracking(loggers: tuple[str, ...], log_dir: str | None, tracking_uri: str | None, options: RunOptions,
                   preset: str, requests: list[tuple[str, dict[str, str]]], levels: list[int]) -> Tracking | None:
    """A run in each chosen tracker (None without any), once the names it would log are known to be valid."""
    from bench.experiments.tracking import logger_names, open_tracking, run_name

    names = logger_names(loggers)
    if not names:
        return None
    for name, _ in requests:  # a misspelt perturbation is refused before a tracker records a failed run
        default_plugins().perturbation(name)
    perturbations = [name for name, _ in requests]
    return open_tracking(names, log_dir=Path(log_dir) if log_dir else options.cache / "logs",
                         run_name=run_name(preset, perturbations), tracking_uri=tracking_uri, levels=levels,
                         tags={"preset": preset, "perturbation": ",".join(perturbations)})


def say_group_seeds(runs: list[list[Outcome]]) -> None:
    """One line when more seeds trained than the run reports: a requested seed's ticket trained in one seed group
    with others (an earlier run's), and its branch trains in that group again, so the others' come along."""
    reported = {r["seed"] for outcomes in runs for o in outcomes for r in o.records}
    extra = sorted({e.seed for outcomes in runs for e in outcomes[0].events if e.kind == "trained"} - reported)
    if extra:
        listed = ", ".join(map(str, extra[:8])) + (", ..." if len(extra) > 8 else "")
        every = sorted(reported | set(extra))
        err.print(f"Also trained seed{'s' if len(extra) > 1 else ''} {listed}, not reported: {len(reported)} seed"
                  f"{'s' if len(reported) > 1 else ''} asked for, {len(every)} trained, because an earlier run "
                  f"trained them in one seed group (--seeds {','.join(map(str, every))} reports them all, from the "
                  f"cache).", soft_wrap=True)


def _level_json(outcomes: list[Outcome]) -> dict:
    """What --json prints for one level: the run, or {'runs': [...]} for several perturbations."""
    stages = stage_counts(outcomes[0].events)
    objects = [outcome_json(o, stages, "perturbation") for o in outcomes]
    return objects[0] if len(objects) == 1 else {"runs": objects}


def _show_level(outcomes: list[Outcome]) -> None:
    if len(outcomes) == 1:
        out.print(fit(seed_table(outcomes[0], RUN_COLUMNS), out.width))
    else:  # one table to compare them, after the numbers every perturbation shares
        # fitted to the terminal: a table too wide for it becomes one block per row instead of being cropped
        out.print(fit(seed_table(outcomes[0], SHARED_COLUMNS, title="Shared by every perturbation: dense network "
                                                                     "and ticket of the same seeds"), out.width))
        out.print(fit(comparison_table(outcomes), out.width))


@click.command()
@json_option("Print JSON.")
def presets(as_json):
    """List the experiment presets.

    \b
    Example: bench presets --json
    """
    rows = [describe(preset) for preset in PRESETS.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    # names never wrap; the description wraps at spaces, so the table fits 80 columns
    table = Table(title="Presets (bench presets --json for every detail)")
    table.add_column("name", no_wrap=True)
    table.add_column("description")
    table.add_column("model", width=max(len(r["model"]) + 1 for r in rows))  # fixed: the description wraps
    table.add_column("default", width=13)
    for r in rows:
        table.add_row(r["name"], r["description"], f"{r['dataset']} {r['model']}, {r['parameters']:,} weights",
                      f"{r['default_seeds']} seed{'s' if r['default_seeds'] != 1 else ''}, "
                      f"{r['default_percent_remaining']:.1f}% left (level {r['default_level']})")
    out.print(table)


@click.command()
@json_option("Print JSON.")
def perturbations(as_json):
    """List the registered perturbations.

    \b
    Example: bench perturbations
    """
    rows = [registry_row(name, reg.perturbation, reg.plugin) for name, reg in default_plugins().perturbations().items()]
    show_registry("Perturbations", rows, as_json)


@click.command("pruning-strategies")
@json_option("Print JSON.")
def pruning_strategies(as_json):
    """List the pruning strategies and their parameters.

    \b
    Example: bench pruning-strategies --json
    """
    rows = [registry_row(name, reg.strategy, reg.plugin)
            for name, reg in default_plugins().pruning_strategies().items()]
    show_registry("Pruning strategies", rows, as_json)


@click.command()
@json_option("Print JSON.")
def plugins(as_json):
    """List the loaded plugins, their hooks, and any that failed to load.

    \b
    Example: BENCH_LOAD_PLUGINS=my-plugin bench plugins --json
    """
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
    for p in data["loaded"]:  # names, versions and errors come from the plugins: text, never markup
        table.add_row(*(markup_safe(text) for text in (p["name"], p["distribution"], p["version"],
                                                       ", ".join(p["hooks"]))))
    for f in data["failed"]:
        table.add_row(markup_safe(f["name"]), markup_safe(f["dist"]), "-",
                      f"[red]failed: {markup_safe(f['error'])}[/red]")
    out.print(table)


COMMANDS = (run, presets, perturbations, pruning_strategies, plugins)
