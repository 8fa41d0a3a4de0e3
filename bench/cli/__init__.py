"""The ``bench`` command line: a thin layer over bench.experiments and bench.report.

One module per command family (run, early, report); shared options in ``options``, shared output in
``output``. Errors reach the user as one line (``BENCH_DEBUG=1`` shows the traceback).

A command's module is imported only when that command runs (``COMMAND_MODULES``), so ``bench --help`` and
the listings start without torch or scipy (docs/performance.md); Ctrl-C at any moment is one line.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import warnings
from typing import Any

import click

from bench.errors import BenchError

# each command -> the bench.cli module that defines it (in its COMMANDS); a new command goes here and in SUMMARIES
# (tests/test_fast_start.py checks both against every module's COMMANDS)
COMMAND_MODULES = {
    "run": "run", "presets": "run", "perturbations": "run", "pruning-strategies": "run", "plugins": "run",
    "pretrain": "early", "pretrainings": "early", "rewind-curve": "early", "trace": "early",
    "instability": "instability",
    "leaderboard": "report", "compare": "report", "plot": "report",
    "sweep": "sweep", "verify": "verify", "cache": "cache",
}
# the commands that train: an interrupted one has saved its finished stages and checkpoints
TRAINING = {"run", "pretrain", "rewind-curve", "trace", "instability", "sweep", "verify"}
INTERRUPTED = "Interrupted."
INTERRUPTED_TRAINING = "Interrupted. Finished stages and checkpoints are saved: rerun the same command to resume."


_SEEN = {"interrupt": False}  # set by main()'s handler: an error after a Ctrl-C is the interruption's


def _interrupted(training: bool = False) -> None:
    click.echo(INTERRUPTED_TRAINING if training else INTERRUPTED, err=True)


def _on_sigint(signum: int, frame: Any) -> None:
    _SEEN["interrupt"] = True
    raise KeyboardInterrupt


def clean(text: object, lines: bool = False) -> str:
    """bench.plugin_guard.clean (control characters out), imported when there is something to print."""
    from bench.plugin_guard import clean as clean_text

    return clean_text(text, lines=lines)


class BenchGroup(click.Group):
    """Loads a command's module when it runs; shows BenchError (and anything unexpected) as one line instead of
    a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMAND_MODULES:
            return None
        module = importlib.import_module(f"bench.cli.{COMMAND_MODULES[cmd_name]}")
        command = next(c for c in module.COMMANDS if c.name == cmd_name)
        command.short_help = SUMMARIES.get(cmd_name, command.short_help)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # from SUMMARIES: listing the commands loads none of their modules
        with formatter.section("Commands"):
            formatter.write_dl([(name, SUMMARIES[name]) for name in self.list_commands(ctx)])

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:  # while the options are parsed: click would print two lines and exit 1
            _interrupted()
            raise click.exceptions.Exit(130) from None

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(os.environ.get("BENCH_DEBUG"))
        try:
            return super().invoke(ctx)
        except BenchError as exc:
            if debug:
                raise
            if _SEEN["interrupt"]:  # e.g. a plugin's failure reported after the Ctrl-C stopped it
                _interrupted(ctx.invoked_subcommand in TRAINING)
                ctx.exit(130)
            click.echo(f"Error: {clean(exc, lines=True)}", err=True)  # it may quote a plugin: no escape sequences
            ctx.exit(1)
        except KeyboardInterrupt:  # also while the command's modules (torch, scipy) load
            _interrupted(ctx.invoked_subcommand in TRAINING)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if debug:
                raise
            if _SEEN["interrupt"]:  # e.g. a library left half-imported by the Ctrl-C fails in its own way
                _interrupted(ctx.invoked_subcommand in TRAINING)
                ctx.exit(130)
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
    "pruning-strategies": "List the registered pruning strategies.",
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


def main() -> None:
    """The console script. Ctrl-C anywhere in it, even while torch loads, prints one line and exits 130."""
    ours = signal.getsignal(signal.SIGINT) is signal.default_int_handler  # else the caller handles it itself
    if ours:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        try:
            cli(prog_name="bench")
        except KeyboardInterrupt:  # outside click's handling, e.g. while it exits
            _interrupted()
            sys.exit(130)
    except SystemExit as done:
        if done.code == 130 and _SEEN["interrupt"]:
            # exit now, with 130: a Ctrl-C that landed inside a C extension's own Python call (numpy's, torch's
            # imports) marks the process, and a normal shutdown would then end it by SIGINT (status -2) instead
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        raise
    finally:
        if ours:  # the command is over, with its status: a Ctrl-C while the interpreter shuts down changes nothing
            signal.signal(signal.SIGINT, signal.SIG_IGN)
