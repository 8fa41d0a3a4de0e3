"""``bench cache doctor`` and ``bench cache clear``: look after the cache folder (logic in bench.cache_doctor)."""

from __future__ import annotations

import shutil
import sys

import click
from rich.table import Table

from bench.cache import cache_root
from bench.cache_doctor import KINDS, diagnose, fix, preset_folders
from bench.cli.options import cache_dir_option, json_option
from bench.cli.output import echo_json, err, out
from bench.config import config_hash
from bench.errors import BenchError
from bench.presets import get_preset


@click.group()
def cache() -> None:
    """Inspect and clean the cache (run while no other bench process uses it)."""


@cache.command()
@click.option("--fix", "fix_", is_flag=True,
              help="Mend what was found: affected stages are invalidated (recomputed in their seed group by the "
                   "next run), leftovers and links under experiments/ removed.")
@cache_dir_option("Cache root. Default: $BENCH_CACHE_DIR, else the user cache folder.")
@json_option()
def doctor(fix_, cache_dir, as_json):
    """Report corrupt, missing or swapped stage files, bad stage records, stale or mis-paired stages, leftover
    .tmp files and checkpoints, stale fused folders and symlinks (never followed).

    \b
    Example: bench cache doctor --fix
    """
    root = cache_root(cache_dir)
    report = diagnose(root)
    if fix_:
        fix(report)
    if as_json:
        echo_json({"cache": str(root), "fixed": report.fixed,
                   "findings": [f.as_dict(root) for f in report.findings]})
        return
    if not report.findings:
        err.print(f"Cache {root}: nothing to clean.")
        return
    table = Table(title=f"bench cache doctor: {root}")
    for column in ("kind", "path", "detail"):
        table.add_column(column)
    for f in report.findings:
        table.add_row(f.kind, f.path.relative_to(root).as_posix(), f.detail or KINDS[f.kind])
    out.print(table)
    err.print(f"Removed {len(report.findings)} item(s)." if report.fixed
              else f"{len(report.findings)} item(s); rerun with --fix to remove them.")


@cache.command()
@click.option("--preset", required=True, help="The preset whose stages and results are removed.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@cache_dir_option("Cache root. Default: $BENCH_CACHE_DIR, else the user cache folder.")
def clear(preset, yes, cache_dir):
    """Remove one preset's trained stages and results (its configuration hash) from the cache.

    \b
    Example: bench cache clear --preset smoke --yes
    """
    root = cache_root(cache_dir)
    chosen = get_preset(preset)
    folders = preset_folders(root, config_hash(chosen.experiment))
    if not folders:
        err.print(f"Nothing cached for preset '{preset}' in {root}.")
        return
    for folder in folders:
        err.print(f"Will delete {folder}")
    if not yes:
        if not sys.stdin.isatty():
            raise BenchError("bench cache clear deletes files: pass --yes to confirm when not on a terminal.")
        click.confirm("Delete these folders?", abort=True, err=True)
    for folder in folders:
        shutil.rmtree(folder)
    err.print(f"Deleted {len(folders)} folder(s).")


COMMANDS = (cache,)
