"""The Python API, for notebooks and scripts (docs/notebook.md shows each function at work).

* ``load_results(*paths)``: stored result files as a pandas DataFrame, one row per file, with the columns of
  ``bench leaderboard --format csv``.
* ``leaderboard(*paths)``: the ranked rows of every board as a DataFrame (the JSON output's rows);
  ``compare(a, b, *paths)``: the paired difference of two rows as a dict (``bench compare --json``).
* ``run(perturbation, ...)``: train (or reuse) and perturb, as ``bench run`` does; returns the stored records.

Reading and analysing results imports no torch. ``run`` imports it, and trains under the pins every result
records (AVX2 kernels, one thread): while it trains the pins are in effect, and afterwards torch's thread
count and the env vars it set are put back (``bench.numerics.pinned``; what cannot be put back is in
CONTRIBUTING.md). pandas comes with the ``notebook`` extra: ``pip install 'earlyphase-bench[notebook]'``.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from bench import numerics, paths as bench_paths
from bench.cache import cache_root
from bench.errors import BenchError

if TYPE_CHECKING:
    import pandas

    from bench.report.model import Leaderboard

# CSV columns that hold text however they look (a config hash can be all digits; a group letter is not NaN)
_TEXT = {"preset", "config_hash", "perturbation", "params", "file", "group", "plugin", "distribution", "version",
         "pruning", "kind", "bn"}


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise BenchError("bench.api needs pandas: pip install 'earlyphase-bench[notebook]'.") from None
    return pandas


def _board(folders: Sequence[str | Path], cache_dir: str | Path | None, **filters: Any) -> Leaderboard:
    from bench.report.model import DEFAULT_MIN_SEEDS, from_folders

    filters.setdefault("min_seeds", DEFAULT_MIN_SEEDS)
    chosen = [Path(f) for f in folders] or [bench_paths.results_dir(cache_root(cache_dir))]
    lb = from_folders(chosen, missing_ok=not folders, **filters)
    for problem in lb.problems:  # as bench leaderboard: an invalid file is left out, and said so
        warnings.warn(f"skipped {problem}", stacklevel=3)
    return lb


def load_results(*folders: str | Path, cache_dir: str | Path | None = None, preset: str | None = None,
                 sparsity: float | None = None) -> pandas.DataFrame:
    """Every result file under ``folders`` (default: the cache's results) as a DataFrame, one row per file.

    The columns are those of ``bench leaderboard --format csv`` (docs/leaderboard.md), in that order; text
    columns stay text, numbers are numbers, an empty cell (a rank of a row that is not ranked) is NaN.
    ``preset`` and ``sparsity`` (percent of weights remaining) filter as in ``bench leaderboard``.
    """
    pandas = _pandas()
    from bench.report.render import render_csv

    lb = _board(folders, cache_dir, preset=preset, sparsity=sparsity)
    frame = pandas.read_csv(io.StringIO(render_csv(lb)), dtype=str, keep_default_na=False)
    for column in frame.columns:
        if column in _TEXT or column.startswith("fingerprint"):
            continue
        values = frame[column].replace("", None)
        numbers = pandas.to_numeric(values, errors="coerce")
        if numbers.notna().sum() == values.notna().sum():  # every non-empty cell is a number
            frame[column] = numbers
    return frame


def leaderboard(*folders: str | Path, cache_dir: str | Path | None = None, preset: str | None = None,
                sparsity: float | None = None, min_seeds: int | None = None) -> pandas.DataFrame:
    """The ranked rows of every board, one DataFrame row each, best first within a board.

    The columns are the keys of a row in ``bench leaderboard --json`` (rank, perturbation, params, n,
    mean_drop, ci_low, ci_high, rank_interval, rank_ub, group, vs_reference, ...), then the board's hardware
    class and estimand. Rows with fewer than ``min_seeds``
    seeds (default: the leaderboard's) are not ranked and not included.
    """
    pandas = _pandas()
    filters = {"preset": preset, "sparsity": sparsity} | ({"min_seeds": min_seeds} if min_seeds else {})
    data = _board(folders, cache_dir, **filters).as_dict()
    # a row already names its preset, configuration, level and sparsity; the board adds the rest of its identity
    rows = [{**row, "hardware": board["hardware"], "estimand": board["estimand"]}
            for board in data["boards"] for row in board["rows"]]
    return pandas.DataFrame(rows)


def compare(a: str, b: str, *folders: str | Path, cache_dir: str | Path | None = None, preset: str | None = None,
            level: int | None = None, min_seeds: int | None = None) -> dict[str, Any]:
    """The paired difference of rows ``a`` and ``b`` (``NAME``, ``NAME:KEY=VALUE``, ``NAME@PSEED``), as
    ``bench compare --json`` gives it: the mean difference with its interval, t, exact sign-flip and Wilcoxon
    p-values, Holm on the board, each seed's drops and the seeds needed to resolve it."""
    from bench.presets import PRESETS
    from bench.report.compare import as_dict, select

    lb = _board(folders, cache_dir, preset=preset, **({"min_seeds": min_seeds} if min_seeds else {}))
    presets = {bd.preset for bd in lb.boards}
    only = next(iter(presets)) if len(presets) == 1 else None
    default_level = PRESETS[only].level if only in PRESETS else None
    return as_dict(select(lb, a, b, level, default_level))


def run(perturbation: str, *, preset: str | None = None, seeds: int | Sequence[int] | None = None,
        params: dict[str, Any] | None = None, cache_dir: str | Path | None = None, level: int | None = None,
        sparsity: float | None = None, perturbation_seed: int = 0, device: str = "auto",
        data_dir: str | Path | None = None, workers: int = 1) -> list[dict]:
    """Run ``perturbation`` as ``bench run -p NAME`` does and return its stored records, one per seed.

    Everything is cached under ``cache_dir`` (default: $BENCH_CACHE_DIR, else the user cache folder), so a
    second call trains nothing. ``params`` are the perturbation's parameters (``--param``); ``seeds`` a count
    or a list (default: the preset's). Training runs under the pinned numerics, which are put back afterwards.
    """
    from bench.experiments.perturb import run_perturbations
    from bench.experiments.setup import RunOptions
    from bench.presets import DEFAULT_PRESET, get_preset

    chosen = get_preset(preset or DEFAULT_PRESET)
    if numerics.TORCH_BEFORE_BENCH and numerics._pinning():
        warnings.warn("torch was imported before bench, so its kernels may not be the pinned AVX2 ones (they are "
                      "chosen at first use); the results record what was in effect. Import bench first to "
                      "reproduce the recorded numbers.", stacklevel=2)
    options = RunOptions(cache=cache_root(None if cache_dir is None else str(cache_dir)), device=device,
                         data_dir=Path(data_dir) if data_dir else None, workers=workers)
    # as --param KEY=VALUE gives them
    raw = {key: str(value).lower() if isinstance(value, bool) else str(value) for key, value in (params or {}).items()}
    with numerics.pinned():
        outcomes = run_perturbations(chosen, [(perturbation, raw)], options,
                                     seeds=chosen.seeds if seeds is None else seeds, level=level, sparsity=sparsity,
                                     perturbation_seed=perturbation_seed)
    return outcomes[0].records
