"""``bench instability``: linear mode connectivity of the early phase; draws its figure (report/figures.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click
from rich.table import Table

from bench.cli.options import json_option, level_options, parse_params, preset_option, run_options, seeds_option
from bench.cli.output import echo_json, err, fmt, out, ui
from bench.interpolation import BN_MODES, DEFAULT_BN, DEFAULT_POINTS
from bench.errors import BenchError
from bench.presets import get_preset


@click.command("instability")
@preset_option
@click.option("--k", "ks", default=None, metavar="K1,K2,...",
              help="Start iterations for the dense network and the ticket (numbers or step strings like 2ep). "
                   "Default: 0 and k/4 .. 8k of the preset's k.")
@seeds_option()
@level_options
@click.option("--perturbation", "-p", "perturbations", multiple=True,
              help="Also a registered perturbation at the preset's k and the level (repeatable).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Parameter of the one --perturbation given (repeatable).")
@click.option("--perturbation-seed", type=int, default=0, show_default=True,
              help="Seed of the perturbation's own randomness (as in bench run).")
@click.option("--no-dense", is_flag=True, help="Leave out the dense network's curve.")
@click.option("--no-ticket", is_flag=True, help="Leave out the ticket's curve.")
@click.option("--points", type=click.IntRange(2, 1000), default=DEFAULT_POINTS, show_default=True,
              help="Evenly spaced points on the path between the two copies, ends included.")
@click.option("--bn", type=click.Choice(BN_MODES), default=DEFAULT_BN, show_default=True,
              help="BatchNorm statistics along the path: interpolate them, keep the nearer endpoint's, or "
                   "recompute them on training batches at each point (docs/early-phase.md).")
@click.option("--bn-batches", type=click.IntRange(min=1), default=None,
              help="Training batches to recompute the statistics on (--bn recompute). Default: 50, at most an epoch.")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="Figure file (PNG). Default: instability.png in the results folder of the configuration.")
@run_options
@json_option("Print the barriers and paths as JSON.")
def instability_command(preset, ks, seeds, level, sparsity, perturbations, params, perturbation_seed, no_dense,
                        no_ticket, points, bn, bn_batches, output, options, as_json):
    """Instability to SGD noise: two copies from one state at step k, trained with different data orders; the
    error barrier on the straight line between them (stable below 2 points).

    \b
    Examples:
      bench instability --preset smoke --seeds 2
      bench instability --k 0,24,96,384 --seeds 3 --bn interpolate
      bench instability --no-dense --no-ticket -p shuffle-layer -p gaussian-noise
    """
    from bench import paths
    from bench.experiments.instability import run_instability
    from bench.report.figures import draw_instability

    raw = parse_params(params)
    if raw and len(perturbations) != 1:
        raise BenchError("--param applies to one perturbation: give exactly one --perturbation with it.")
    chosen = get_preset(preset)
    with ui(as_json) as progress:
        result = run_instability(chosen, replace(options, progress=progress),
                                 seeds=chosen.seeds if seeds is None else seeds, ks_text=ks, level=level,
                                 sparsity=sparsity, dense=not no_dense, ticket=not no_ticket,
                                 perturbations=[(name, raw) for name in dict.fromkeys(perturbations)],
                                 perturbation_seed=perturbation_seed, points=points, bn=bn, bn_batches=bn_batches)
    data = result.as_dict()
    png = Path(output) if output else (paths.results_dir(options.cache) / data["config_hash"] / "instability"
                                       / f"level-{result.level}-{bn}-n{points}.png")
    draw_instability(data, png)
    if as_json:
        echo_json({**data, "files": {"plot": str(png)}})
        return
    err.print(f"{len(result.records)} instability record(s) under {paths.results_dir(options.cache)}; wrote {png}.")
    table = Table(title=f"Instability on {result.preset}: test-error barrier (points) between two copies trained "
                        f"with different data orders; level {result.level} ({result.percent_remaining:.1f}% "
                        f"remaining), {points} points, BatchNorm {bn}; stable below {data['stable_below']:g}")
    for column in ("subject", "k", "mean barrier", "95% CI", "per seed", "stable"):
        table.add_column(column, justify="right")
    for c in data["curves"]:
        ci = "-" if c["ci_low"] is None else f"[{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]"
        per_seed = ", ".join(f"{s}: {fmt(b)}" for s, b in zip(c["seeds"], c["barrier"]))
        name = c["name"] + (f" {c['params']}" if c["params"] else "")
        table.add_row(name, str(c["k"]) + (" (preset)" if c["k"] == result.preset_k else ""), fmt(c["mean"]), ci,
                      per_seed, "yes" if c["stable"] else "no")
    out.print(table)


COMMANDS = (instability_command,)
