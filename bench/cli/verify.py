"""``bench verify``: re-prove stored results by re-running them from scratch."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click
from rich.table import Table

from bench import paths
from bench.cli.options import Finite, json_option, run_options
from bench.cli.output import echo_json, err, out, ui


@click.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--results", "results", multiple=True, type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="Verify the result files under DIR (repeatable).")
@click.option("--sample", type=click.IntRange(min=1), default=None,
              help="Verify a random sample of N of the files instead of all.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample.")
@click.option("--tolerance", type=Finite(), default=0.0, show_default=True,
              help="Accuracy difference (points) still counted as reproduced; see docs/reproducibility.md.")
@click.option("--record", "record", is_flag=True,
              help="Write a verification record per file into verified/ of the folder it was read from; the "
                   "leaderboard marks rows whose files were re-proved exactly (docs/leaderboard.md).")
@run_options(workers=False)  # each recorded group re-runs as one fused group, one after another
@json_option()
def verify(files, results, sample, seed, tolerance, record, options, as_json):
    """Re-run stored results from scratch in a temporary cache; exit 1 unless every one is reproduced.

    \b
    Example: bench verify --results leaderboard/results --sample 3 --record
    """
    from bench.experiments.verify import choose, load, verify as run_verify

    chosen = choose(load([Path(f) for f in files], [Path(r) for r in results]), sample, seed)
    # the re-runs train in a temporary cache; datasets still come from (and are generated into) the real one
    options = replace(options, data_dir=options.data_dir or paths.data_dir(options.cache))
    err.print(f"Verifying {len(chosen)} result file(s) by re-running them from scratch.")
    with ui(as_json) as progress:
        verdicts = run_verify(chosen, replace(options, progress=progress), tolerance)
    failed = [v for v in verdicts if v.status == "mismatch"]
    if record:
        from bench.provenance import record_class
        from bench.report.verified import write

        written = [write(res.path, res.source, v.as_dict(), v.hardware, record_class(res.data), tolerance)
                   for res, v in zip(chosen, verdicts)]
        err.print(f"Recorded {len(written)} verification(s) in {', '.join(sorted({str(w.parent) for w in written}))}.",
                  markup=False, highlight=False)
    if as_json:
        echo_json({"tolerance": tolerance, "verified": len(verdicts), "mismatches": len(failed),
                   "files": [v.as_dict() for v in verdicts]})
    else:
        table = Table(title=f"bench verify (tolerance {tolerance:g} points)")
        table.add_column("file", overflow="fold")  # the whole path: it says which result to look at
        for column in ("verdict", "largest difference", "first differing stage"):
            table.add_column(column)
        for v in verdicts:
            table.add_row(v.source, v.status, f"{v.largest:.2f}", v.first_stage or "-")
        out.print(table)
        for note in sorted({v.note for v in verdicts if v.note}):
            err.print(f"Note: {note}", markup=False, highlight=False)
    if failed:
        raise click.exceptions.Exit(1)


COMMANDS = (verify,)
