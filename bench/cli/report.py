"""``bench leaderboard``, ``bench compare`` and ``bench plot``: reports computed from stored result files only."""

from __future__ import annotations

from pathlib import Path

import click

from bench import paths
from bench.cache import cache_root
from bench.cli.options import Percent, cache_dir_option, complete_presets
from bench.errors import BenchError
from bench.report.figstyle import PLOT_SUFFIXES, STYLES, default_style
from bench.report.figures import (accuracy_vs_sparsity, default_series, draw_accuracy, draw_sweep, parameter_sweep,
                                  select_series)
from bench.report.forest import draw
from bench.report.model import DEFAULT_MIN_SEEDS, Leaderboard, from_folders
from bench.report.render import FORMATS, render
from bench.report.terminal import rich_tables

_SUFFIX_FORMATS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html", ".json": "json", ".csv": "csv"}


def _common(command):
    """The options shared by both reports: where results are, which of them, how strictly."""
    options = [
        click.option("--results", "results", multiple=True, type=click.Path(), metavar="DIR",
                     help="Folder of result files, searched recursively (repeatable). Default: <cache>/results."),
        cache_dir_option("Cache root whose results/ is read. Default: $BENCH_CACHE_DIR, else the user cache folder."),
        click.option("--preset", default=None, shell_complete=complete_presets, help="Only results of this preset."),
        click.option("--sparsity", type=Percent(), default=None, metavar="PCT",
                     help="Only results with this percent of weights remaining (to 0.1)."),
        click.option("--min-seeds", type=click.IntRange(min=1), default=DEFAULT_MIN_SEEDS, show_default=True,
                     help="Rows with fewer seeds are listed as not ranked."),
        click.option("--any-config", is_flag=True,
                     help="Also rank results whose configuration differs from their preset's."),
        click.option("--strict", is_flag=True,
                     help="Refuse to run if any result file is invalid, refused by the checks across files or a "
                          "duplicate (one line each); also recomputes every W_0 from its seed."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _load(results, cache_dir, preset, sparsity, min_seeds, any_config, strict) -> Leaderboard:
    if preset is not None:
        from bench.presets import get_preset

        get_preset(preset)  # an unknown name fails with a suggestion instead of an empty table
    folders = [Path(r) for r in results] or [paths.results_dir(cache_root(cache_dir))]
    lb = from_folders(folders, strict=strict, missing_ok=not results, preset=preset, sparsity=sparsity,
                      min_seeds=min_seeds, any_config=any_config)
    for problem in lb.problems:
        click.echo(f"Warning: skipped {problem}", err=True)
    for duplicate in lb.duplicates:
        click.echo(f"Warning: duplicate result: {duplicate}.", err=True)
    if lb.files == 0:
        where = ", ".join(str(f) for f in folders)
        click.echo(f"No result files under {where}: run `bench run --seeds 3` first, or pass --results DIR "
                   f"(the committed results, in a checkout: --results leaderboard/results).", err=True)
    elif sparsity is not None and not lb.results:
        _say_sparsities(folders, results, preset, sparsity, any_config)
    return lb


def _say_sparsities(folders, results, preset, sparsity, any_config) -> None:
    """No stored result has the asked sparsity: list the ones that exist, instead of blaming the seed count."""
    every = from_folders(folders, missing_ok=not results, preset=preset, min_seeds=1, any_config=any_config)
    found = sorted({round(r.percent_remaining, 1) for r in (*every.rows, *every.ineligible)}, reverse=True)
    there = ", ".join(f"{p:g}%" for p in found) or "none"
    click.echo(f"No results at {sparsity:g}% of weights remaining{f' for preset {preset}' if preset else ''}; "
               f"stored results are at: {there} (--sparsity PCT).", err=True)


@click.command()
@_common
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format; csv is one row per result file. Default: from the --output suffix (.md, .html, "
                   ".json, .csv), else table.")
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="Write to FILE instead of stdout.")
@click.option("--json", "as_json", is_flag=True, help="The same as --format json (as every other command).")
def leaderboard(results, cache_dir, preset, sparsity, min_seeds, any_config, strict, fmt, output, as_json):
    """List perturbations by mean accuracy drop over seeds, with 95% intervals, from stored results.

    One board per preset, configuration, level, hardware class and estimand (pre-training entries apart).
    What the order establishes comes from paired tests between rows (exact sign-flip, Holm over the pairs
    shown): bootstrap rank intervals, Rank (UB), group letters and the difference from imp-rewind-0.

    \b
    Examples:
      bench leaderboard
      bench leaderboard --results leaderboard/results --output board.html
      bench leaderboard --format csv --output results.csv
    """
    if as_json and fmt not in (None, "json"):
        raise BenchError(f"--json and --format {fmt} disagree: give one of them.")
    fmt = "json" if as_json else fmt
    lb = _load(results, cache_dir, preset, sparsity, min_seeds, any_config, strict)
    fmt = fmt or (_SUFFIX_FORMATS.get(Path(output).suffix.lower(), "table") if output else "table")
    if output:
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(lb, fmt), encoding="utf-8", newline="\n")
        click.echo(f"Wrote {path} ({sum(len(b.rows) for b in lb.boards)} ranked rows).", err=True)
    elif fmt == "table":
        from rich.console import Console

        out = Console(highlight=False)
        if not lb.boards and lb.results:  # (no results passed the filters: _load said why)
            click.echo(f"No ranked results (minimum seeds {min_seeds}).", err=True)
        for table in rich_tables(lb, out.width):
            out.print(table)
    else:
        click.echo(render(lb, fmt), nl=False)


@click.command()
@_common
@click.option("--output", type=click.Path(dir_okay=False), required=True, help="FILE.png, FILE.svg or FILE.pdf.")
@click.option("--vs-sparsity", is_flag=True,
              help="Draw test accuracy against percent of weights remaining instead: the ticket, the dense network, "
                   "imp-rewind-0 (the paper's k = 0 reference) and the series chosen with --series.")
@click.option("--series", "series", multiple=True, metavar="NAME",
              help="With --vs-sparsity: also draw NAME's line (a perturbation, every parameter value of it, or one "
                   "label such as 'gaussian-noise (scale=2.0)'); repeatable. Default: every line where there are "
                   "at most 8, else the ticket and reference only.")
@click.option("--sweep", "sweep_name", default=None, metavar="NAME",
              help="Draw only NAME's mean drop against the numeric parameter its rows vary (e.g. gaussian-noise: "
                   "drop against scale), one line per sparsity.")
@click.option("--style", type=click.Choice(sorted(STYLES)), default=None,
              help="screen, or paper (one journal column, 3.3 in, 8 pt text) or paper-wide (two columns, 6.8 in). "
                   "Default: paper for .pdf, screen otherwise.")
@click.option("--dpi", type=click.IntRange(min=20, max=1200), default=None,
              help="Pixels per inch of a PNG. Default: 150 (screen), 300 (paper).")
def plot(results, cache_dir, preset, sparsity, min_seeds, any_config, strict, output, vs_sparsity, series, sweep_name,
         style, dpi):
    """Draw a forest plot per board: mean drops with 95% intervals and every seed's drop.

    The boards of one sparsity (the preset's default level, or --sparsity): the mask-fixed board with the
    reference's mean as a dashed line, and the pre-training entries on their own axes below it.

    \b
    Examples:
      bench plot --output drops.svg
      bench plot --output drops.pdf                       # paper style, one column wide
      bench run -p identity -p imp-rewind-0 --level all --seeds 3
      bench plot --vs-sparsity --series shuffle-layer --output accuracy.png
      bench plot --sweep gaussian-noise --style paper-wide --output noise.pdf
    """
    path = Path(output)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise BenchError(f"--output must end in {', '.join(PLOT_SUFFIXES)}, got '{path.name}'.")
    if vs_sparsity and sparsity is not None:
        raise BenchError("--vs-sparsity draws every sparsity: leave out --sparsity.")
    if vs_sparsity and sweep_name:
        raise BenchError("--vs-sparsity and --sweep draw different figures: give one of them.")
    if series and not vs_sparsity:
        raise BenchError("--series chooses the lines of --vs-sparsity: add --vs-sparsity.")
    style = style or default_style(path)
    lb = _load(results, cache_dir, preset, sparsity, min_seeds, any_config, strict)
    if not lb.boards:
        raise BenchError(f"Nothing to plot: no perturbation has at least {min_seeds} seeds"
                         f"{' for preset ' + preset if preset else ''}.")
    presets = sorted({b.preset for b in lb.boards})
    if len(presets) > 1:
        raise BenchError(f"Results from several presets ({', '.join(presets)}): choose one with --preset.")
    from bench.presets import PRESETS

    chosen = PRESETS.get(presets[0])
    default_level = chosen.level if chosen else None
    if sweep_name:
        try:
            data = parameter_sweep(lb, sweep_name)
        except ValueError as exc:
            raise BenchError(f"Cannot draw --sweep {sweep_name}: {exc}.") from None
        draw_sweep(data, path, style, dpi)
    elif vs_sparsity:
        curve = accuracy_vs_sparsity(lb, default_level)
        if len(curve.levels) == 1:
            click.echo(f"Warning: only one sparsity ({curve.levels[0][1]:.1f}%) to draw: run `bench run --level all` "
                       f"for a curve.", err=True)
        if series:
            try:
                curve = select_series(curve, series)
            except ValueError as exc:
                raise BenchError(f"Cannot draw --series: {exc}.") from None
        else:
            curve, left_out = default_series(curve)
            if left_out:
                click.echo(f"Drew the ticket and imp-rewind-0 only; {len(left_out)} more series (choose with "
                           f"--series NAME, repeatable): {', '.join(left_out)}.", err=True)
        draw_accuracy(curve, path, style, dpi)
    else:
        draw(lb, path, default_level, style, dpi)
    click.echo(f"Wrote {path} ({style} style).", err=True)


@click.command()
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@_common
@click.option("--level", type=click.IntRange(min=0), default=None,
              help="IMP level of the board. Default: the preset's, where A and B are on several boards.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(a, b, results, cache_dir, preset, sparsity, min_seeds, any_config, strict, level, as_json):
    """The paired difference of two ranked entries (A minus B) over the seeds both have.

    A and B are NAME, NAME:KEY=VALUE[,KEY=VALUE] or NAME@PSEED (the perturbation seed); a parameter left out
    matches any value. Prints the mean difference of drops with its 95% t-interval, the t-test, exact
    sign-flip and Wilcoxon signed-rank p-values, median and Hodges-Lehmann, each seed's drops, and how many
    seeds would separate the pair at the observed paired spread.

    \b
    Examples:
      bench compare shuffle-layer shuffle-layer-keep-sign --results leaderboard/results
      bench compare gaussian-noise:scale=2.0 imp-rewind-0 --level 2 --json
    """
    import json

    from bench.presets import PRESETS
    from bench.report.compare import as_dict, lines, select
    from bench.report.render import json_safe

    lb = _load(results, cache_dir, preset, sparsity, min_seeds, any_config, strict)
    presets = {bd.preset for bd in lb.boards}
    default_level = PRESETS[next(iter(presets))].level if len(presets) == 1 and next(iter(presets)) in PRESETS \
        else None
    comparison = select(lb, a, b, level, default_level)
    if as_json:
        click.echo(json.dumps(json_safe(as_dict(comparison)), indent=2, sort_keys=True, allow_nan=False))
    else:
        click.echo("\n".join(lines(comparison)))


COMMANDS = (leaderboard, compare, plot)
