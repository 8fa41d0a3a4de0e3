"""The ``bench`` command line: a thin layer over bench.experiments and bench.report.

One module per command family (run, early, report); shared options in ``options``, shared output in
``output``. Errors reach the user as one line (``BENCH_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import click

from bench.cli import cache, early, instability, report, run, sweep, verify
from bench.errors import BenchError
from bench.plugin_guard import clean


class BenchGroup(click.Group):
    """Shows BenchError (and anything unexpected) as one line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(os.environ.get("BENCH_DEBUG"))
        try:
            return super().invoke(ctx)
        except BenchError as exc:
            if debug:
                raise
            click.echo(f"Error: {clean(exc, lines=True)}", err=True)  # it may quote a plugin: no escape sequences
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
            click.echo(f"Error: unexpected {type(exc).__name__}: {clean(exc, lines=True)} "
                       f"(set BENCH_DEBUG=1 to see the traceback).", err=True)
            ctx.exit(1)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"Warning: {clean(message, lines=True)}", err=True)


ENVIRONMENT = """\b
Environment variables:
  BENCH_CACHE_DIR     cache root (results, checkpoints) when --cache-dir is not given
  BENCH_LOAD_PLUGINS  comma-separated plugin names to load (default: all installed)
  BENCH_DEBUG         1 shows full tracebacks instead of one-line errors
  BENCH_LOGGERS       comma-separated experiment trackers for bench run (--logger)
  BENCH_LOG_DIR       where loggers write (--log-dir); BENCH_TRACKING_URI: --tracking-uri
  CI                  set: no progress bars, one log line per stage instead
"""


# -h everywhere: click passes help_option_names down to every subcommand's context
@click.group(cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=ENVIRONMENT)
@click.version_option(package_name="earlyphase-bench")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or per-stage log lines (results still print).")
@click.pass_context
def cli(ctx: click.Context, quiet: bool) -> None:
    """Perturbation benchmark for the early phase of neural network training."""
    ctx.meta["bench.quiet"] = quiet
    warnings.showwarning = _show_warning


# one line each, short enough for `bench --help` at 80 columns (the full text is in each command's --help)
SUMMARIES = {
    "run": "Perturb the rewound ticket, retrain, report the drop.",
    "presets": "List the experiment presets.",
    "perturbations": "List the registered perturbations.",
    "plugins": "List loaded plugins, their hooks and failures.",
    "pretrain": "Make the rewind point by pre-training on another task.",
    "pretrainings": "List the registered pre-training tasks.",
    "rewind-curve": "Ticket accuracy against the rewind iteration k.",
    "trace": "Record and plot the early phase of dense training.",
    "instability": "Error barrier between two copies trained from step k.",
    "leaderboard": "Rank stored results, with paired tests (table/md/html/csv).",
    "compare": "Paired difference of two entries, with p-values.",
    "plot": "Draw the drops, or accuracy against sparsity, with 95% CIs.",
    "sweep": "Run a grid from a TOML file, locally or on SLURM.",
    "verify": "Re-run stored results from scratch and compare.",
    "cache": "Inspect and clean the cache folder.",
}

for command in (*run.COMMANDS, *early.COMMANDS, *instability.COMMANDS, *report.COMMANDS, *sweep.COMMANDS, *verify.COMMANDS,
                *cache.COMMANDS):
    command.short_help = SUMMARIES.get(command.name, command.short_help)
    cli.add_command(command)


def main() -> None:
    cli(prog_name="bench")
