"""Text shared by every renderer: cells, titles and notes, with every string from a result file made
harmless (control and format characters shown as escapes)."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

from bench.report.model import NOISE_FLOOR, REFERENCE, Board, Leaderboard, Row, params_text
from bench.report.paired import BOOTSTRAP_SEED, EXACT_MAX_N, seeds_text
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
    elif row.control and row.name == NOISE_FLOOR:
        parts.append("control: noise floor")
    elif row.control:
        parts.append("control")
    if row.pretraining:
        parts.append("pre-training entry")
    if row.verified:  # shown only where a recorded `bench verify` re-proved files (bench.report.verified)
        parts.append(f"verified {row.verified}/{row.n}")
    return "; ".join(parts)


def zero_mark(row: Row) -> str:
    """Whether the row's own 95% interval excludes 0 (per row, not corrected)."""
    if row.verdict is None or not row.verdict.excludes_zero:
        return ""
    return "> 0" if row.drop.mean > 0 else "< 0"


def rank_interval(row: Row) -> str:
    v = row.verdict
    if v is None:
        return "-"
    return str(v.rank_low) if v.rank_low == v.rank_high else f"{v.rank_low}-{v.rank_high}"


def rank_ub(row: Row) -> str:
    return "-" if row.verdict is None else str(row.verdict.rank_ub)


def group(row: Row) -> str:
    return "-" if row.verdict is None else row.verdict.group


def versus_reference(row: Row) -> str:
    """This row minus the reference, paired, with its Holm-corrected p; '*' where it differs."""
    v = row.verdict
    if v is None or v.vs_reference is None:
        return "-"
    pair = v.vs_reference
    return f"{num(pair.mean, 2) if pair.mean <= 0 else '+' + num(pair.mean, 2)}, p {pvalue(v.reference_p_holm)}" + \
        (" *" if v.differs_from_reference else "")


def pvalue(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "-"
    return "< 0.001" if p < 0.001 else f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def pvalue_eq(p: float) -> str:
    """``= 0.031`` or ``< 0.001``: a p-value after its name ("p = 0.031", "p < 0.001"), never "p = < 0.001"."""
    text = pvalue(p)
    return text if text.startswith("<") else f"= {text}"


def board_title(b: Board) -> str:
    return ((f"{b.preset}, pre-training entries: " if b.pretraining else f"{b.preset}: ")
            + f"{b.percent_remaining:.1f}% of weights remaining (level {b.level}), k = {b.rewind_step}, "
            f"config {b.config_hash}" + (f", {b.hardware}" if b.hardware else ""))


def verdict_lines(b: Board) -> list[str]:
    """What the board ranks and what its paired comparisons establish, in sentences."""
    lines = [f"Ranks {b.ranks}."]
    v = b.verdicts
    if v is None or len(b.rows) < 2:
        return lines
    n = v.n
    exact = n <= EXACT_MAX_N
    lines.append(
        f"Paired comparisons: for each pair of rows the per-seed difference of drops over the seeds both have, "
        f"tested with the {v.test} test"
        + (" (the t-test's p, in the JSON and `bench compare`, decides nothing)" if exact else "")
        + f"; Holm's correction over the {v.comparisons} pairs shown, family-wise alpha {v.alpha:g}: "
        f"{v.separated} pair{'s' if v.separated != 1 else ''} separated. Rows that share a group letter are not "
        f"separated. Rank (UB) = 1 + the number of rows separated from it and above it. Ranks: 95% interval of the "
        f"row's rank over {v.resamples} bootstrap resamples of the seeds, drawn jointly for every row (pairing "
        f"kept; fixed seed {BOOTSTRAP_SEED}); with few seeds it understates the uncertainty.")
    if b.reference is not None:
        lines.append(f"vs ref: the row's drop minus {REFERENCE}'s, paired, Holm over the {len(b.rows) - 1} rows "
                     f"compared with it; * marks a difference. > 0 / < 0: the row's own 95% interval excludes 0 "
                     f"(per row, not corrected).")
    else:
        lines.append("> 0 / < 0: the row's own 95% interval excludes 0 (per row, not corrected).")
    if v.separated == 0:
        needed = sorted(v.adjacent_seeds_needed)
        text = (f"Nothing on this board is separated at n = {n} seeds, so its order is not established. "
                + (f"The exact test's smallest p is 2/2^{n} = {2 / 2 ** n:.3g}, above Holm's first threshold "
                   f"{v.alpha:g}/{v.comparisons}; it needs at least {v.seeds_for_exact} seeds for {v.comparisons} "
                   f"pairs. " if exact and 2 / 2 ** n >= v.alpha / v.comparisons else ""))
        if needed:
            text += (f"At the observed paired spreads, adjacent rows would need a median of "
                     f"{seeds_text(needed[len(needed) // 2])} seeds (from {seeds_text(needed[0])} to "
                     f"{seeds_text(needed[-1])}) for a 95% interval of their difference to exclude 0 "
                     f"(`bench compare A B` gives it per pair).")
        lines.append(text)
    return lines


COLUMNS = ("#", "perturbation", "params", "p-seed", "n", "mean drop", "95% CI", "instability", "ranks", "Rank (UB)", "group",
           "vs 0", "vs ref", "drop per seed", "% remaining", "k", "effective std", "plugin", "notes")
# right-aligned wherever a renderer aligns
NUMERIC_COLUMNS = {"#", "p-seed", "n", "mean drop", "instability", "% remaining", "k", "effective std", "level",
                   "Rank (UB)", "ranks"}
INELIGIBLE_COLUMNS = ("preset", "level", "perturbation", "params", "p-seed", "n", "mean drop", "reason")

EXPLANATION = (
    "Drop = accuracy of the unperturbed ticket minus accuracy after the perturbation, for the same replicate "
    "seed (percentage points), so larger means more damaging. Mean over seeds with a 95% t-interval. "
    "Rows are listed by mean drop; that order is claimed only where a paired test separates two rows (see each "
    "board's statistics: group letters, Rank (UB), rank intervals). "
    "Controls (identity, data-order, rewind-to-init, reinit, lottery-ticket, imp-rewind-0) are the harness's "
    "references; data-order, the ticket retrained on another data order, is the noise floor (SGD noise alone); "
    "imp-rewind-0 is the paper's reference, IMP rewound to iteration 0 with its own pruning chain, so its drop is "
    "how much rewinding to k beats rewinding to 0. Instability, where measured: `bench instability`'s mean "
    "test-error barrier (points) between two copies of the row's start trained on different data orders "
    "(stable below 2)."
)


def reference_line(lb: Leaderboard, board: Board) -> str:
    """The line under a board's title: the paper's reference (IMP rewound to 0) at this sparsity, or why it is
    missing and the command that adds it."""
    ref = board.reference
    if board.pretraining:
        return (f"Not comparable with the reference ({REFERENCE}) or the mask-fixed perturbations: each entry has its "
                f"own IMP chain and mask.")
    if ref is not None:
        return (f"Reference, IMP rewound to 0 ({REFERENCE}): mean drop {num(ref.drop.mean)}, 95% CI "
                f"{interval(ref.drop)}, n = {ref.n}; positive: rewinding to k = {board.rewind_step} beats "
                f"rewinding to 0.")
    unranked = lb.unranked_reference(board)
    if unranked is not None:
        return clean(f"The IMP-rewound-to-0 reference at this sparsity is not ranked: {unranked.reason}.")
    return clean(f"No IMP-rewound-to-0 reference at this sparsity: run {_reference_command(board)}.")


def noise_floor_line(lb: Leaderboard, board: Board) -> str | None:
    """The line under the reference line: the noise floor (data-order, the ticket retrained on another data
    order) at this sparsity, or why it is missing and the command that adds it. None on a pre-training board
    (its entries have their own chains and masks)."""
    if board.pretraining:
        return None
    row = board.noise_floor
    if row is not None:
        return (f"Noise floor, the ticket retrained on another data order ({NOISE_FLOOR}): mean drop "
                f"{num(row.drop.mean)}, 95% CI {interval(row.drop)}, per seed {num(min(row.drop.values))} to "
                f"{num(max(row.drop.values))}, n = {row.n}; SGD noise alone moves a drop this much.")
    unranked = lb.unranked_reference(board, NOISE_FLOOR)
    if unranked is not None:
        return clean(f"The noise floor ({NOISE_FLOOR}) at this sparsity is not ranked: {unranked.reason}.")
    return clean(f"No noise floor at this sparsity: run {_reference_command(board, NOISE_FLOOR)}.")


def _reference_command(board: Board, name: str = REFERENCE) -> str:
    """``bench run`` for the reference (or control ``name``) on ``board``'s seeds (the drops pair by seed); the
    preset and seeds only where they are not the defaults."""
    from bench.presets import DEFAULT_PRESET, PRESETS

    seeds = sorted({s for r in board.rows for s in r.seeds})
    preset = PRESETS.get(board.preset)
    words = ["bench run -p", name] + (["--preset", board.preset] if board.preset != DEFAULT_PRESET else [])
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
            str(row.n), num(row.drop.mean), interval(row.drop), num(row.mean_instability) if row.instability else "",
            rank_interval(row), rank_ub(row), group(row),
            zero_mark(row), versus_reference(row), per_seed(row), f"{row.percent_remaining:.1f}",
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
