"""``bench pretrain``, ``bench pretrainings``, ``bench rewind-curve`` and ``bench trace``: the paper's
experiments beyond perturbations (Sections 3 and 5). See docs/early-phase.md."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bench.cache import cache_root
from bench.presets import DEFAULT_PRESET, get_preset


def _where(command):
    """Options every command here shares: where to run and where the cache and data are."""
    options = [
        click.option("--preset", default=DEFAULT_PRESET, show_default=True, help="Experiment preset (see `bench presets`)."),
        click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto."),
        click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
                     help="Cache root. Default: $BENCH_CACHE_DIR, else the user cache folder."),
        click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                     help="Where datasets live. Default: <cache>/data."),
        click.option("--download", is_flag=True, help="Download CIFAR-10 if it is missing (needs internet)."),
        click.option("--checkpoint-every", type=int, default=None, help="Checkpoint every N steps (default: each epoch)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _level(command):
    command = click.option("--level", type=int, default=None, help="IMP level (0 = dense). Default: the preset's.")(command)
    return click.option("--sparsity", type=float, default=None, metavar="PCT",
                        help="Percent of prunable weights remaining.")(command)


def _ui(as_json: bool):
    from bench.cli import _quiet, progress_factory

    return progress_factory(not as_json and not _quiet())


def _data_dir(data_dir):
    return Path(data_dir) if data_dir else None


@click.command("pretrainings")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def pretrainings_command(as_json):
    """List the registered pre-training tasks."""
    from bench.cli import registry_row, show_registry
    from bench.plugins import default_plugins
    from bench.pretraining import declared_params, pretrainings

    rows = [registry_row(name, reg.pretraining, reg.plugin, declared_params(reg.pretraining), ranks_as=reg.label)
            for name, reg in pretrainings(default_plugins()).items()]
    show_registry("Pre-training tasks", rows, as_json)


@click.command("pretrain")
@click.option("--task", "task", required=True, help="Pre-training task (see `bench pretrainings`).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Task parameter (repeatable), e.g. steps=200it or factor=4.")
@_where
@click.option("--seeds", type=int, default=None, help="Number of replicate seeds (0..N-1). Default: the preset's.")
@_level
@click.option("--pretraining-seed", type=int, default=0, show_default=True,
              help="Seed of the task's own randomness (random labels, rotations); recorded in the result.")
@click.option("--group-size", type=int, default=None, help="Most replicates trained together as one fused model.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def pretrain_command(task, params, preset, device, cache_dir, data_dir, download, checkpoint_every, seeds, level,
                     sparsity, pretraining_seed, group_size, as_json):
    """Pre-train on a changed task to make the rewind point; report the ticket's drop against the normal one."""
    from bench.cli import echo_json, out, outcome_json, parse_params, say_stages, seed_table, stage_counts
    from bench.pretrain_run import run_pretraining

    chosen = get_preset(preset)
    root = cache_root(cache_dir)
    with _ui(as_json) as progress:
        outcome = run_pretraining(
            chosen, task, parse_params(params), seeds=seeds or chosen.seeds, level=level, sparsity=sparsity,
            device=device, cache=root, data_dir=_data_dir(data_dir), download=download,
            pretrain_seed=pretraining_seed, progress=progress, checkpoint_every=checkpoint_every,
            group_size=group_size)
    stages = stage_counts(outcome.log)
    label = outcome.registered.label
    if as_json:
        echo_json(outcome_json(outcome, stages, pretraining=label, plugin=outcome.registered.plugin.name))
        return
    say_stages(stages, root)
    columns = (("dense %", "dense"), ("ticket %", "ticket"), ("pre-trained dense %", "pretrained_dense"),
               ("pre-trained ticket %", "perturbed"), ("drop (pts)", "drop"))
    out.print(seed_table(outcome, label, columns))


@click.command("rewind-curve")
@_where
@click.option("--k", "ks", default=None, metavar="K1,K2,...",
              help="Rewind iterations (numbers or step strings like 2ep). Default: 0 and k/4 .. 8k of the preset's k.")
@click.option("--seeds", type=int, default=None, help="Number of replicate seeds (0..N-1). Default: the preset's.")
@_level
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="Plot file (PNG). Default: rewind-curve/level-L.png beside the run in the cache.")
@click.option("--group-size", type=int, default=None, help="Most replicates trained together as one fused model.")
@click.option("--json", "as_json", is_flag=True, help="Print the curve as JSON.")
def rewind_curve_command(preset, device, cache_dir, data_dir, download, checkpoint_every, ks, seeds, level, sparsity,
                         output, group_size, as_json):
    """Ticket accuracy against the rewind iteration k at one sparsity, from one dense trunk per seed."""
    from rich.table import Table

    from bench.cli import _fmt, _json_safe, err, out
    from bench.rewind_curve import run_rewind_curve, save_curve
    from bench.stats import summarize

    chosen = get_preset(preset)
    root = cache_root(cache_dir)
    with _ui(as_json) as progress:
        curve = run_rewind_curve(chosen, ks, seeds=seeds or chosen.seeds, level=level, sparsity=sparsity,
                                 device=device, cache=root, data_dir=_data_dir(data_dir), download=download,
                                 progress=progress, checkpoint_every=checkpoint_every, group_size=group_size)
    json_path, png = save_curve(curve, Path(output) if output else None, root)
    data = curve.as_dict()
    if as_json:
        click.echo(json.dumps(_json_safe({**data, "files": {"json": str(json_path), "plot": str(png)}}), indent=2,
                              allow_nan=False))
        return
    err.print(f"{curve.trunks_trained} dense trunk(s) trained, {curve.iterations_replayed} iterations replayed; "
              f"wrote {json_path} and {png}.")
    table = Table(title=f"Rewind curve on {curve.preset}: level {curve.level}, {curve.percent_remaining:.1f}% "
                        f"of weights remaining (preset k = {curve.preset_k})")
    for column in ("k", "mean accuracy %", "95% CI", "per seed"):
        table.add_column(column, justify="right")
    for p in data["points"]:
        ci = "-" if p["ci_low"] is None else f"[{p['ci_low']:.2f}, {p['ci_high']:.2f}]"
        table.add_row(str(p["k"]) + (" (preset)" if p["k"] == curve.preset_k else ""), _fmt(p["mean"]), ci,
                      ", ".join(_fmt(a) for a in p["accuracy"]))
    table.add_section()
    dense = summarize(curve.dense)
    table.add_row("dense", _fmt(dense.mean), "", ", ".join(_fmt(a) for a in curve.dense))
    out.print(table)


@click.command("trace")
@_where
@click.option("--iterations", type=int, default=None, help="Trace the first N iterations. Default: the whole run (T).")
@click.option("--every", type=int, default=None,
              help="Record every M iterations (powers of two are always recorded). Default: N/100.")
@click.option("--seeds", type=int, default=1, show_default=True, help="Number of replicate seeds (0..N-1).")
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="Folder for trace.png, trace.csv, trace.json. Default: trace/N<N>-every<M>/ beside the run.")
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
def trace_command(preset, device, cache_dir, data_dir, download, checkpoint_every, iterations, every, seeds, output,
                  as_json):
    """Record test accuracy, loss, weights and gradients during dense training; draw a Figure-1 timeline."""
    from rich.table import Table

    from bench.cli import _fmt, _json_safe, err, out
    from bench.trace import default_output, run_trace, save_trace

    chosen = get_preset(preset)
    root = cache_root(cache_dir)
    with _ui(as_json) as progress:
        trace = run_trace(chosen, iterations=iterations, every=every, seeds=seeds, device=device, cache=root,
                          data_dir=_data_dir(data_dir), download=download, progress=progress,
                          checkpoint_every=checkpoint_every)
    paths = save_trace(trace, Path(output) if output else default_output(root, trace))
    if as_json:
        click.echo(json.dumps(_json_safe({**trace.as_dict(), "files": {k: str(v) for k, v in paths.items()}}),
                              indent=2, allow_nan=False))
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
        table.add_row(str(r["iteration"]), _fmt(r["test_accuracy"]), _fmt(r["test_loss"], 3),
                      _fmt(r["grad_norm"], 3), _fmt(r["mean_abs_weight"], 4), _fmt(100 * r["sign_flip_fraction"]),
                      _fmt(r["distance_from_init"], 3), _fmt(r["distance_from_final"], 3),
                      _fmt(r["cosine_to_init"], 3), _fmt(r["cosine_to_final"], 3))
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
