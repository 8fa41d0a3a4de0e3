"""``bench sweep FILE``: run a grid from a sweep file locally or on SLURM (bench/sweep/, docs/cluster.md)."""

from __future__ import annotations

import json
import math
import os
import sys
from typing import TYPE_CHECKING

import click
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from bench.cache import cache_root
from bench.errors import BenchError

if TYPE_CHECKING:
    from bench.sweep import Unit

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def _units_table(units: list[Unit], title: str) -> Table:
    table = Table(title=title)
    for col in ("unit", "after", "trainings", "replicate-it", "est."):
        table.add_column(col, justify="right" if col in ("trainings", "replicate-it", "est.") else "left",
                         overflow="fold")
    from bench.sweep import fmt_hours

    for u in units:
        table.add_row(Text(u.id), Text(u.depends or "-"),
                      "cached" if u.cached else str(u.trainings),
                      "-" if u.cached else f"{u.iterations:,}", "-" if u.cached else fmt_hours(u.estimate_s))
    return table


def _finite_or_none(value):
    """None in place of NaN or an infinity (an estimate that overflowed): never "nan h", never invalid JSON."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _live_view(report) -> Group:
    tally = report.tally()
    head = Text(" | ".join(f"{k} {v}" for k, v in tally.items()))
    running = [uid for uid, s in report.state.items() if s == "running"]
    lines = [Text(f"  running: {uid}" + (f" on {report.info.get(uid, {}).get('node')}"
                                          if report.info.get(uid, {}).get("node") else "")) for uid in running[:8]]
    failed = [uid for uid, s in report.state.items() if s == "failed"]
    lines += [Text(f"  failed: {uid}", style="red") for uid in failed[:8]]
    return Group(head, *lines)


def _summary_table(rows: list[dict]) -> Table:
    table = Table(title="Sweep units")
    for col in ("unit", "state", "trained", "node", "s"):
        table.add_column(col, justify="right" if col in ("trained", "s") else "left", overflow="fold")
    for r in rows:
        style = {"failed": "red", "cached": "dim"}.get(r["state"], "")
        table.add_row(Text(r["id"]), Text(r["state"], style=style), str(r["trained"]), Text(r["node"] or "-"),
                      "-" if r["seconds"] is None else f"{r['seconds']:.1f}")
    return table


@click.command("sweep")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True,
              help="local: worker processes on this machine; slurm: job arrays through submitit.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="local: most units run at once (each uses the sweep's [run] threads).")
@click.option("--dry-run", is_flag=True, help="Print the units, trainings and estimated time; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Cache root (on a file system every node sees, for slurm). Default: $BENCH_CACHE_DIR, else the "
                   "user cache folder.")
@click.option("--partition", default=None, help="slurm: partition (else [slurm] partition).")
@click.option("--time-min", type=int, default=None, help="slurm: time limit per job in minutes.")
@click.option("--gpus", "gpus_per_node", type=int, default=None, help="slurm: GPUs per job.")
@click.option("--mem-gb", type=float, default=None, help="slurm: memory per job in GB.")
@click.option("--cpus", "cpus_per_task", type=int, default=None, help="slurm: CPUs per job.")
@click.option("--array-parallelism", type=int, default=None, help="slurm: most jobs of one array running at once.")
@click.option("--constraint", default=None, help="slurm: node feature constraint (pin one hardware class).")
def sweep_command(file, executor, jobs, dry_run, as_json, cache_dir, partition, time_min, gpus_per_node, mem_gb,
                  cpus_per_task, array_parallelism, constraint):
    """Run a grid of perturbations x levels x seeds from a TOML sweep file; rerunning retries only what is missing.

    \b
    Examples:
      bench sweep sweeps/smoke.toml --dry-run
      bench sweep sweeps/smoke.toml --executor local --jobs 2
      bench sweep sweeps/paper-cifar10.toml --executor slurm --partition gpu
    """
    from bench.sweep import (Report, counts, fmt_hours, load_sweep, plan, prepare_units, results_of, summary)

    sweep = load_sweep(file)
    root = cache_root(cache_dir).resolve()  # absolute: workers may start in another directory
    units = plan(sweep, root)
    totals = counts(units)
    if dry_run:
        if as_json:
            click.echo(json.dumps({"sweep": str(file), "dry_run": True, "cache": str(root), "counts": totals,
                                   "units": [{k: _finite_or_none(getattr(u, k)) for k in
                                              ("id", "kind", "depends", "seeds", "level", "requests", "trainings",
                                               "iterations", "estimate_s", "cached")}
                                             for u in units]}, indent=2, allow_nan=False))
            return
        out.print(_units_table(units, f"Sweep {file}: units (dry run, nothing runs)"))
        hours = totals["estimated_hours"]
        out.print(f"{totals['units']} units ({totals['cached_units']} cached), {totals['units_to_run']} to run: "
                  f"{totals['trainings']} trainings, {totals['replicate_iterations']:,} replicate-iterations, "
                  f"estimated {fmt_hours(None if hours is None else hours * 3600)} "
                  f"(per-iteration figures: docs/cluster.md).")
        return

    units, folder = prepare_units(sweep, units, root)
    report = Report(units)
    quiet = as_json or bool(os.environ.get("CI")) or not sys.stderr.isatty()
    from contextlib import nullcontext

    if quiet:
        live, refresh = nullcontext(), (lambda: None)
    else:
        from rich.live import Live

        live = Live(_live_view(report), console=err, refresh_per_second=4, transient=True)
        refresh = lambda: live.update(_live_view(report))  # noqa: E731
    with live:
        if executor == "local":
            from bench.sweep import run_local

            run_local(units, report, jobs, refresh)
        else:
            from bench.sweep.slurm import options, run_slurm

            flags = {"partition": partition, "time_min": time_min, "gpus_per_node": gpus_per_node, "mem_gb": mem_gb,
                     "cpus_per_task": cpus_per_task,
                     "array_parallelism": array_parallelism, "constraint": constraint}
            run_slurm(units, report, folder, options(sweep.slurm, flags, sweep.threads), refresh)
    rows = summary(report)
    tally = report.tally()
    results = results_of(units)
    failed = [r for r in rows if r["state"] == "failed"]
    if as_json:
        click.echo(json.dumps({"sweep": str(file), "executor": executor, "cache": str(root), "counts": totals,
                               "states": tally, "units": rows, "results": results}, indent=2))
    else:
        out.print(_summary_table(rows))
        out.print(" | ".join(f"{k} {v}" for k, v in tally.items()))
        files = sorted({r["file"] for r in results})
        if files:
            from bench.report.model import from_folders
            from bench.report.terminal import rich_tables

            for table in rich_tables(from_folders(files), out.width):
                out.print(table)
        for r in failed:
            # one plain line per failure (no wrapping), so it can be grepped and copied
            click.echo(f"failed: {r['id']}" + (f" on node {r['node']}" if r["node"] else "") + f": {r['error']}"
                       + (f" (log: {r['log']})" if r["log"] else ""), err=True)
    if failed:
        raise BenchError(f"{len(failed)} of {len(rows)} units failed; rerun the same command to retry only what "
                         f"failed or is missing (finished stages are cached).")


COMMANDS = (sweep_command,)
