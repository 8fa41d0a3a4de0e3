"""Text shared by every renderer: cells, titles and notes, with every string from a result file made
harmless (control and format characters shown as escapes)."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

from bench.report.model import REFERENCE, Board, Leaderboard, Row, params_text
from bench.stats import Summary


def clean(value: Any) -> str:
    """Any value from a result file as one line of visible text: control and format characters (terminal
    escapes, newlines, bidirectional overrides) become visible escapes instead of acting."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return "".join(c if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp") else f"\\u{ord(c):04x}"
                   for c in text)


def num(value: float | None, digits: int = 2) -> str:
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value) or abs(value) >= 1e6:  # a hostile 1e308 prints as 1e+308, not 309 digits
        return f"{value:.{digits}g}"
    text = f"{value:.{digits}f}"
    return text[1:] if re.fullmatch(r"-0\.0*", text) else text  # no "-0.00"


def interval(s: Summary) -> str:
    return "-" if math.isnan(s.low) else f"[{num(s.low)}, {num(s.high)}]"


def per_seed(row: Row) -> str:
    return ", ".join(num(v) for v in row.drop.values)


def plugin_text(row: Row) -> str:
    return f"{row.plugin} ({row.distribution} {row.version})"


def notes(row: Row) -> str:
    parts = []
    if row.reference:
        parts.append("reference (k = 0)")
    elif row.control:
        parts.append("control")
    if row.pretraining:
        parts.append("pre-training entry")
    if row.tied_with:
        parts.append("tied with " + ", ".join(f"#{r}" for r in sorted(row.tied_with)))
    return "; ".join(parts)


def board_title(b: Board) -> str:
    return (f"{b.preset}: {b.percent_remaining:.1f}% of weights remaining (level {b.level}), k = {b.rewind_step}, "
            f"config {b.config_hash}" + (f", {b.hardware}" if b.hardware else ""))


COLUMNS = ("#", "perturbation", "params", "p-seed", "n", "mean drop", "95% CI", "drop per seed", "% remaining",
           "k", "effective std", "plugin", "notes")
# right-aligned wherever a renderer aligns
NUMERIC_COLUMNS = {"#", "p-seed", "n", "mean drop", "% remaining", "k", "effective std", "level"}
INELIGIBLE_COLUMNS = ("preset", "level", "perturbation", "params", "p-seed", "n", "mean drop", "reason")

EXPLANATION = (
    "Drop = accuracy of the unperturbed ticket minus accuracy after the perturbation, for the same replicate "
    "seed (percentage points), so larger means more damaging. Mean over seeds with a 95% t-interval. "
    "Tied: the interval overlaps a neighbour's, so the order of those rows is not established. "
    "Controls (identity, rewind-to-init, reinit, lottery-ticket, imp-rewind-0) are the harness's references; "
    "imp-rewind-0 is the paper's reference, IMP rewound to iteration 0 with its own pruning chain, so its drop is "
    "how much rewinding to k beats rewinding to 0."
)


def reference_line(lb: Leaderboard, board: Board) -> str:
    """The line under a board's title: the paper's reference (IMP rewound to 0) at this sparsity, or why it is
    missing and the command that adds it."""
    ref = board.reference
    if ref is not None:
        return (f"Reference, IMP rewound to 0 ({REFERENCE}): mean drop {num(ref.drop.mean)}, 95% CI "
                f"{interval(ref.drop)}, n = {ref.n}; positive: rewinding to k = {board.rewind_step} beats "
                f"rewinding to 0.")
    unranked = lb.unranked_reference(board)
    if unranked is not None:
        return clean(f"The IMP-rewound-to-0 reference at this sparsity is not ranked: {unranked.reason}.")
    return clean(f"No IMP-rewound-to-0 reference at this sparsity: run {_reference_command(board)}.")


def _reference_command(board: Board) -> str:
    """``bench run`` for the reference on ``board``'s seeds (the drops pair by seed); the preset and seeds only
    where they are not the defaults."""
    from bench.presets import DEFAULT_PRESET, PRESETS

    seeds = sorted({s for r in board.rows for s in r.seeds})
    preset = PRESETS.get(board.preset)
    words = ["bench run -p", REFERENCE] + (["--preset", board.preset] if board.preset != DEFAULT_PRESET else [])
    if preset is None or seeds != list(range(preset.seeds)):
        words += ["--seeds", _seeds_text(seeds)]
    return " ".join(words + ["--level", str(board.level)])


def _seeds_text(seeds: list[int]) -> str:
    """Seeds as --seeds reads them: a count from 0, a range, or a list."""
    if seeds == list(range(len(seeds))):
        return str(len(seeds))
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def cells(row: Row) -> list[str]:
    return [str(row.rank), clean(row.name), clean(params_text(row.params)) or "-", str(row.perturbation_seed),
            str(row.n), num(row.drop.mean), interval(row.drop), per_seed(row), f"{row.percent_remaining:.1f}",
            str(row.rewind_step), num(row.effective_std, 4), clean(plugin_text(row)), notes(row)]


def ineligible_cells(row: Row) -> list[str]:
    return [clean(row.preset), str(row.level), clean(row.name), clean(params_text(row.params)) or "-",
            str(row.perturbation_seed), str(row.n), num(row.drop.mean), clean(row.reason)]


def summary_line(lb: Leaderboard) -> str:
    filters = [f"minimum seeds {lb.min_seeds}"]
    if lb.preset:
        filters.append(f"preset {lb.preset}")
    if lb.sparsity is not None:
        filters.append(f"{lb.sparsity:g}% remaining")
    return f"{lb.files} result file{'s' if lb.files != 1 else ''}; {'; '.join(filters)}."


def note_lines(lb: Leaderboard) -> list[str]:
    lines = [f"Duplicate: {d}." for d in lb.duplicates]
    lines += [f"Skipped {p.source}: {p.message}" for p in lb.problems]
    return [clean(line) for line in lines]
