"""``bench pretrain``, ``bench pretrainings``, ``bench rewind-curve`` and ``bench trace``: the paper's
experiments beyond perturbations (Sections 3 and 5). See docs/early-phase.md."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click
from rich.table import Table

from bench.cli.options import json_option, level_options, parse_params, preset_option, run_options, seeds_option
from bench.cli.output import echo_json, err, fmt, out, outcome_json, registry_row, say_next, say_stages, seed_table, \
    show_registry, stage_counts, ui
from bench.plugins import default_plugins
from bench.presets import get_preset


@click.command("pretrainings")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def pretrainings_command(as_json):
    """List the registered pre-training tasks.

    \b
    Example: bench pretrainings
    """
    from bench.pretraining import declared_params

    rows = [registry_row(name, reg.pretraining, reg.plugin, declared_params(reg.pretraining), ranks_as=reg.label)
            for name, reg in default_plugins().pretrainings().items()]
    show_registry("Pre-training tasks", rows, as_json)


@click.command("pretrain")
@click.option("--task", "task", required=True, help="Pre-training task (see `bench pretrainings`).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Task parameter (repeatable), e.g. steps=200it or factor=4.")
@preset_option
@seeds_option()
@level_options
@click.option("--pretraining-seed", type=int, default=0, show_default=True,
              help="Seed of the task's own randomness (random labels, rotations); recorded in the result.")
@run_options
@json_option()
def pretrain_command(task, params, preset, seeds, level, sparsity, pretraining_seed, options, as_json):
    """Pre-train on a changed task to make the rewind point; report the ticket's drop against the normal one.

    \b
    Examples:
      bench pretrain --task blur
      bench pretrain --task rotation --param steps=60it --seeds 3
    """
    from bench.experiments.pretrain import run_pretraining

    chosen = get_preset(preset)
    with ui(as_json) as progress:
        outcome = run_pretraining(chosen, task, parse_params(params), replace(options, progress=progress),
                                  seeds=chosen.seeds if seeds is None else seeds, level=level, sparsity=sparsity,
                                  pretrain_seed=pretraining_seed)
    stages = stage_counts(outcome.events)
    if as_json:
        echo_json(outcome_json(outcome, stages, "pretraining"))
        return
    say_stages(stages, options.cache)
    columns = (("dense %", "dense"), ("ticket %", "ticket"), ("pre-trained dense %", "pretrained_dense"),
               ("pre-trained ticket %", "perturbed"), ("drop (pts)", "drop"))
    out.print(seed_table(outcome, columns))
    say_next(options.cache, len(outcome.records), chosen.name)


@click.command("rewind-curve")
@preset_option
@click.option("--k", "ks", default=None, metavar="K1,K2,...",
              help="Rewind iterations (numbers or step strings like 2ep). Default: 0 and k/4 .. 8k of the preset's k.")
@seeds_option()
@level_options
@click.option("--chain", type=click.Choice(["per-k", "one-mask"]), default="per-k", show_default=True,
              help="per-k: IMP's own pruning chain per rewind point (the paper's way); one-mask: the preset's "
                   "mask at every k (one training per k).")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="Plot file (PNG). Default: rewind-curve/level-L.png beside the run in the cache.")
@run_options
@json_option("Print the curve as JSON.")
def rewind_curve_command(preset, ks, seeds, level, sparsity, chain, output, options, as_json):
    """Ticket accuracy against the rewind iteration k at one sparsity, from one dense trunk per seed.

    \b
    Examples:
      bench rewind-curve --k 0,20,60,200 --output curve.png
      bench rewind-curve --chain one-mask --seeds 3
    """
    from bench.experiments.rewind_curve import run_rewind_curve, save_curve
    from bench.report.figures import draw_curve
    from bench.stats import summarize  # scipy: here, so listing the pre-training tasks loads none

    chosen = get_preset(preset)
    with ui(as_json) as progress:
        curve = run_rewind_curve(chosen, ks, replace(options, progress=progress), seeds=chosen.seeds if seeds is None else seeds,
                                 level=level, sparsity=sparsity, chain=chain)
    json_path, png = save_curve(curve, Path(output) if output else None, options.cache)
    data = curve.as_dict()
    draw_curve(data, png)
    if as_json:
        echo_json({**data, "files": {"json": str(json_path), "plot": str(png)}})
        return
    err.print(f"{curve.trunks_trained} dense trunk(s) trained, {curve.iterations_replayed} iterations replayed; "
              f"wrote {json_path} and {png}.")
    how = "a pruning chain per k" if curve.chain == "per-k" else "the preset's mask for every k"
    table = Table(title=f"Rewind curve on {curve.preset}: level {curve.level}, {curve.percent_remaining:.1f}% "
                        f"of weights remaining (preset k = {curve.preset_k}; {how})")
    for column in ("k", "mean accuracy %", "95% CI", "per seed"):
        table.add_column(column, justify="right")
    for p in data["points"]:
        ci = "-" if p["ci_low"] is None else f"[{p['ci_low']:.2f}, {p['ci_high']:.2f}]"
        table.add_row(str(p["k"]) + (" (preset)" if p["k"] == curve.preset_k else ""), fmt(p["mean"]), ci,
                      ", ".join(fmt(a) for a in p["accuracy"]))
    table.add_section()
    dense = summarize(curve.dense)
    table.add_row("dense", fmt(dense.mean), "", ", ".join(fmt(a) for a in curve.dense))
    out.print(table)


@click.command("trace")
@preset_option
@click.option("--iterations", type=int, default=None, help="Trace the first N iterations. Default: the whole run (T).")
@click.option("--every", type=int, default=None,
              help="Record every M iterations (powers of two are always recorded). Default: N/100.")
@seeds_option(default=1)
@click.option("--output-dir", "output", type=click.Path(file_okay=False), default=None,
              help="Folder for trace.png, trace.csv, trace.json. Default: trace/N<N>-every<M>/ beside the run.")
@run_options
@json_option("Print the trace as JSON.")
def trace_command(preset, iterations, every, seeds, output, options, as_json):
    """Record test accuracy, loss, weights and gradients during dense training; draw a Figure-1 timeline.

    \b
    Example: bench trace --iterations 200 --output-dir trace/
    """
    from bench.experiments.trace import default_output, run_trace, save_trace
    from bench.report.figures import draw_trace

    chosen = get_preset(preset)
    with ui(as_json) as progress:
        trace = run_trace(chosen, replace(options, progress=progress), iterations=iterations, every=every,
                          seeds=seeds)
    paths = save_trace(trace, Path(output) if output else default_output(options.cache, trace))
    draw_trace(trace.as_dict(), paths["png"])
    if as_json:
        echo_json({**trace.as_dict(), "files": {k: str(v) for k, v in paths.items()}})
        return
    err.print(f"Wrote {paths['png']}, {paths['csv']} and {paths['json']}; per-seed CSV/JSON beside each run.")
    for seed, checks in trace.checks.items():
        if checks:
            err.print(f"seed {seed}: traced run vs cached trunk, largest weight difference "
                      + ", ".join(f"{k.split('_')[0]} {v:.2e}" for k, v in checks.items()))
    rows = trace.rows[min(trace.rows)]
    shown = [r for r in rows if r["iteration"] in _milestones(rows, trace.preset_k)]
    table = Table(title=f"Trace of seed {min(trace.rows)} on {trace.preset} (selected iterations; all in the CSV)")
    for column in ("iteration", "test acc %", "test loss", "grad norm", "mean |w|", "sign flips %", "dist W_0",
                   "dist final", "cos W_0", "cos final"):
        table.add_column(column, justify="right")
    for r in shown:
        table.add_row(str(r["iteration"]), fmt(r["test_accuracy"]), fmt(r["test_loss"], 3),
                      fmt(r["grad_norm"], 3), fmt(r["mean_abs_weight"], 4), fmt(100 * r["sign_flip_fraction"]),
                      fmt(r["distance_from_init"], 3), fmt(r["distance_from_final"], 3),
                      fmt(r["cosine_to_init"], 3), fmt(r["cosine_to_final"], 3))
    out.print(table)


def _milestones(rows, k: int) -> set[int]:
    """About a dozen iterations spread on a log scale, plus k and the end, for the terminal table."""
    its = [r["iteration"] for r in rows]
    chosen = {its[0], its[-1]}
    if k in its:
        chosen.add(k)
    target = 1
    while target <= its[-1]:
        chosen.add(min(its, key=lambda i: abs(i - target)))
        target *= 4
    return chosen


COMMANDS = (pretrain_command, pretrainings_command, rewind_curve_command, trace_command)
