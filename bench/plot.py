"""``bench plot``: the leaderboard as a picture (PNG or SVG), drawn with matplotlib's Agg backend."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from bench.leaderboard import Board, Leaderboard, _label, clean
from bench.stats import Summary

PLOT_SUFFIXES = (".png", ".svg")


def _plot_label(text: str) -> str:
    # '$' would start matplotlib mathtext; a hostile name must stay literal text (and not fail to parse)
    return clean(text).replace("$", r"\$")


def choose_board(boards: Sequence[Board], default_level: int | None) -> Board:
    """The board drawn in the first panel: the preset's default level when it was run, else the board
    with the most ranked rows (then the lowest level, for a stable choice)."""
    at_default = [b for b in boards if b.level == default_level]
    pool = at_default or list(boards)
    return sorted(pool, key=lambda b: (-len(b.rows), b.level, b.config_hash))[0]


def draw(lb: Leaderboard, output: Path, default_level: int | None = None) -> Path:
    """Mean drop with its 95% interval per perturbation; where several sparsities of the same configuration
    were run, a second panel of perturbed accuracy against percent remaining. PNG or SVG by suffix."""
    import matplotlib
    import matplotlib.ticker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    main = choose_board(lb.boards, default_level)
    levels = sorted((b for b in lb.boards if b.config_hash == main.config_hash), key=lambda b: -b.percent_remaining)
    second = len(levels) > 1
    height = max(3.0, 0.45 * len(main.rows) + 1.6)
    labels = [_plot_label(_label(r.name, r.params, r.perturbation_seed) + f" (n={r.n})") for r in main.rows]
    width = max(7.5, 4.5 + 0.085 * max(map(len, labels), default=0))  # room for the longest label
    fig = Figure(figsize=(width + (5.5 if second else 0), height), layout="constrained")
    FigureCanvasAgg(fig)  # Agg, never an interactive backend
    axes = fig.subplots(1, 2 if second else 1, squeeze=False)[0]

    ax = axes[0]
    rows = main.rows
    ys = list(range(len(rows)))[::-1]  # rank 1 at the top
    for y, row in zip(ys, rows):
        s = row.drop
        err = [[0.0], [0.0]] if math.isnan(s.low) else [[s.mean - s.low], [s.high - s.mean]]
        color = "0.5" if row.control else "tab:blue"
        ax.errorbar([s.mean], [y], xerr=err, fmt="o", color=color, ecolor=color, capsize=3)
    ax.axvline(0, color="0.7", linewidth=0.8)
    ax.set_yticks(ys, labels)
    ax.set_xlabel("drop vs. ticket (points; mean, 95% CI)")
    ax.set_title(_plot_label(f"{main.preset}: {main.percent_remaining:.1f}% remaining, k = {main.rewind_step}"))

    if second:
        ax = axes[1]
        series: dict[str, list[tuple[float, Summary]]] = {}
        for board in levels:
            for row in board.rows:
                series.setdefault(_label(row.name, row.params, row.perturbation_seed), []).append(
                    (row.percent_remaining, row.perturbed))
        ticket = [(b.percent_remaining, max(b.rows, key=lambda r: r.n).ticket) for b in levels]
        lines = [("ticket (unperturbed)", ticket)] + sorted(series.items())
        for i, (label, points) in enumerate(lines):
            points.sort(key=lambda p: -p[0])
            # a small horizontal offset per line so intervals at the same sparsity do not hide each other
            shift = 1 + 0.012 * (i - (len(lines) - 1) / 2)
            xs = [p * shift for p, _ in points]
            means = [s.mean for _, s in points]
            err = [[0.0 if math.isnan(s.low) else s.mean - s.low for _, s in points],
                   [0.0 if math.isnan(s.high) else s.high - s.mean for _, s in points]]
            style = {"linestyle": "--", "color": "black"} if i == 0 else {}
            ax.errorbar(xs, means, yerr=err, marker="o", capsize=3, label=_plot_label(label), **style)
        ax.set_xscale("log")
        ticks = [b.percent_remaining for b in levels]
        ax.set_xticks(ticks, [f"{t:.1f}" for t in ticks])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.invert_xaxis()  # sparser to the right, as in the paper's plots
        ax.set_xlabel("percent of weights remaining")
        ax.set_ylabel("test accuracy after the perturbation (%)")
        ax.set_title(_plot_label(f"{main.preset}: accuracy against sparsity"))
        ax.legend(fontsize="small")

    output.parent.mkdir(parents=True, exist_ok=True)
    fmt = output.suffix[1:].lower()
    # fixed salt and no date, so the same results give the same SVG
    with matplotlib.rc_context({"svg.hashsalt": "earlyphase-bench"}):
        fig.savefig(output, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    return output
