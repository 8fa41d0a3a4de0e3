"""``bench plot``'s default figure: a forest plot per board of one sparsity, the mask-fixed board on top and the
board of pre-training entries (another estimand: its own IMP chain and mask) on its own axes below it, so
neither stretches the other's scale. Each row: mean drop with its 95% interval and every seed's own drop;
the reference's (imp-rewind-0) mean as a dashed vertical line across the mask-fixed board."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Sequence

from bench.report.figstyle import STYLES, Style, figure, save, styled
from bench.report.figures import REFERENCE_COLOR, choose_board, plot_label
from bench.report.model import REFERENCE, Board, Leaderboard

PERTURBATION_COLOR, CONTROL_COLOR = "tab:blue", "0.45"


def forest_boards(lb: Leaderboard, default_level: int | None) -> list[Board]:
    """The boards drawn: those of the chosen board's preset, configuration, hardware class and level
    (:func:`bench.report.figures.choose_board`), mask-fixed first."""
    main = choose_board(lb.boards, default_level)
    key = (main.preset, main.config_hash, main.hardware, main.level)
    return sorted((b for b in lb.boards if (b.preset, b.config_hash, b.hardware, b.level) == key),
                  key=lambda b: b.pretraining)


def _labels(board: Board, style: Style) -> list[str]:
    same_n = len({r.n for r in board.rows}) == 1
    out = []
    for row in board.rows:
        text = row.label + (" (reference)" if row.reference else "") + ("" if same_n else f" (n={row.n})")
        out.append(_wrap(text, style.label_chars))
    return out


def _title(board: Board, style: Style, width: float) -> str:
    n = {r.n for r in board.rows}
    text = (f"{board.preset}: {board.percent_remaining:.1f}% remaining, k = {board.rewind_step}"
            + (f", n = {n.pop()} seeds" if len(n) == 1 else "")
            + ("; pre-training entries (own IMP chain and mask: not comparable with the board above)"
               if board.pretraining else ""))
    chars = int(width * 72 / (style.font * 0.58))  # about one average glyph per 0.58 em
    return _wrap(text, max(chars, 30))


def _wrap(text: str, chars: int) -> str:
    """Lines of at most ``chars`` broken at spaces only (a name is never split, so it can be typed back);
    cleaned first, so the line breaks are the only control characters."""
    return "\n".join(textwrap.wrap(plot_label(text), chars, break_long_words=False, break_on_hyphens=False))


def _axes(ax, board: Board, labels: Sequence[str], style: Style) -> None:
    rows = board.rows
    ys = list(range(len(rows)))[::-1]  # rank 1 at the top
    ax.axvline(0, color="0.75", linewidth=0.8, zorder=0)
    ref = board.reference
    if ref is not None and not board.pretraining:
        ax.axvline(ref.drop.mean, color=REFERENCE_COLOR, linestyle="--", linewidth=0.9, zorder=0)
    small = 10 if style.width is None else 7
    for y, row in zip(ys, rows):
        s = row.drop
        color = REFERENCE_COLOR if row.reference else CONTROL_COLOR if row.control else PERTURBATION_COLOR
        err = [[0.0], [0.0]] if math.isnan(s.low) else [[s.mean - s.low], [s.high - s.mean]]
        ax.errorbar([s.mean], [y], xerr=err, fmt="s" if row.reference else "o", color=color, ecolor=color, zorder=3)
        # every seed's own drop, small and hollow over the interval: with few seeds, show them all
        ax.scatter(s.values, [y] * len(s.values), s=small, facecolors="none", edgecolors=color, linewidths=0.6,
                   zorder=2)
    ax.set_yticks(ys, labels)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("drop vs. ticket (accuracy points)")
    ax.grid(axis="x", alpha=0.3)


def draw(lb: Leaderboard, output: Path, default_level: int | None = None, style: str = "screen",
         dpi: int | None = None) -> Path:
    """The forest plot of every board of one sparsity (see the module's docstring). PNG, SVG or PDF by
    suffix; ``style`` is a key of :data:`bench.report.figstyle.STYLES`."""
    from matplotlib.lines import Line2D

    st = STYLES[style]
    boards = forest_boards(lb, default_level)
    labels = [_labels(b, st) for b in boards]
    lines = [sum(label.count("\n") + 1 for label in ls) for ls in labels]
    longest = max(len(line) for ls in labels for label in ls for line in label.splitlines())
    width = st.width or max(6.5, 3.0 + 0.08 * longest)
    panel = 0.9 if st.width else 1.1  # title and axis labels of each panel, in inches
    height = sum(n * st.row + panel for n in lines) + (0.5 if st.width else 0.6)
    with styled(st):
        fig = figure((width, height))
        # a subfigure per board: its title spans the figure's width, not only the axes' (beside the labels)
        subs = fig.subfigures(len(boards), 1, squeeze=False, height_ratios=[n * st.row + panel for n in lines])[:, 0]
        for sub, board, ls in zip(subs, boards, labels):
            _axes(sub.subplots(), board, ls, st)
            sub.suptitle(_title(board, st, width), x=0.0, ha="left", fontsize=st.font)
        handles = [Line2D([], [], marker="o", color=PERTURBATION_COLOR, label="perturbation: mean, 95% CI"),
                   Line2D([], [], marker="o", color=CONTROL_COLOR, label="control (harness)"),
                   Line2D([], [], marker="o", color="0.3", linestyle="none", markerfacecolor="none", markersize=4,
                          label="one seed's drop")]
        if any(b.reference is not None and not b.pretraining for b in boards):
            handles.append(Line2D([], [], color=REFERENCE_COLOR, linestyle="--", marker="s",
                                  label=f"{REFERENCE} (IMP rewound to 0): mean"))
        # under the plots; one column on a single journal column, so it is never wider than the figure
        subs[-1].legend(handles=handles, loc="outside lower center", ncols=1 if width < 4 else 2, frameon=False)
        return save(fig, output, dpi or st.dpi)
