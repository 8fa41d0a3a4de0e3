"""Every figure bench draws: the leaderboard plot, accuracy against sparsity, the rewind curve, instability and
the trace timeline.

Drawn headless with a ``matplotlib.figure.Figure`` on its own Agg canvas: nothing here selects a
backend or touches pyplot's global state, so importing bench never changes a caller's matplotlib.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from bench.report.figstyle import STYLES, figure, save, series_style, styled
from bench.report.model import Board, Leaderboard, label as _label, params_text
from bench.report.text import clean
from bench.stats import Summary, summarize


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)  # Agg, never an interactive backend
    return fig


def _save(fig, path: Path, **kwargs: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **kwargs)


# ---------------------------------------------------------------------------------------- leaderboard

def plot_label(text: str) -> str:
    # '$' would start matplotlib mathtext; a hostile name must stay literal text (and not fail to parse)
    return clean(text).replace("$", r"\$")


def choose_board(boards: Sequence[Board], default_level: int | None) -> Board:
    """The board drawn first: the preset's default level when it was run, else the board
    with the most ranked rows (then the lowest level, for a stable choice)."""
    at_default = [b for b in boards if b.level == default_level]
    pool = at_default or list(boards)
    # the mask-fixed board before a board of pre-training entries (another estimand)
    return sorted(pool, key=lambda b: (b.pretraining, -len(b.rows), b.level, b.config_hash))[0]


# ---------------------------------------------------------------------------------------- accuracy vs sparsity

REFERENCE_COLOR = "tab:red"


@dataclass(frozen=True)
class Point:
    percent_remaining: float
    level: int
    accuracy: Summary  # test accuracy over seeds: mean and 95% interval


@dataclass(frozen=True)
class Line:
    label: str
    kind: str  # "ticket", "reference" (imp-rewind-0), "control" or "perturbation"
    points: tuple[Point, ...]  # densest first


@dataclass(frozen=True)
class AccuracyCurve:
    """What the accuracy-against-sparsity figure draws, for one preset, configuration and hardware class."""

    preset: str
    config_hash: str
    hardware: str
    rewind_step: int
    levels: tuple[tuple[int, float], ...]  # (level, percent remaining), densest first
    dense: Summary  # the dense network, over every seed on any board (it does not depend on the level)
    lines: tuple[Line, ...]  # the ticket, then the reference, then the rest by label


def accuracy_vs_sparsity(lb: Leaderboard, default_level: int | None = None) -> AccuracyCurve:
    """Test accuracy at each sparsity of the configuration and hardware class of the board :func:`draw` shows
    first: the ticket (accuracy.ticket, each seed once, whichever rows carry it), every ranked row's accuracy
    after its perturbation (for imp-rewind-0: the IMP-rewound-to-0 network), and the dense network."""
    main = choose_board(lb.boards, default_level)
    same = (main.preset, main.config_hash, main.hardware, main.pretraining)
    boards = sorted((b for b in lb.boards if (b.preset, b.config_hash, b.hardware, b.pretraining) == same),
                    key=lambda b: (-b.percent_remaining, b.level))
    ticket, dense, series = [], {}, {}
    for board in boards:
        tickets = {}
        for row in board.rows:
            tickets.update(dict(zip(row.seeds, row.ticket.values)))  # the same ticket whatever the perturbation
            dense.update(zip(row.seeds, row.dense.values))
            kind = "reference" if row.reference else "control" if row.control else "perturbation"
            point = Point(board.percent_remaining, board.level, row.perturbed)
            series.setdefault((_label(row.name, row.params, row.perturbation_seed), kind), []).append(point)
        ticket.append(Point(board.percent_remaining, board.level, summarize([tickets[s] for s in sorted(tickets)])))
    order = {"reference": 0, "control": 1, "perturbation": 2}
    lines = [Line(f"ticket, rewound to k = {main.rewind_step}", "ticket", tuple(ticket))]
    lines += [Line(name, kind, tuple(points)) for (name, kind), points in
              sorted(series.items(), key=lambda item: (order[item[0][1]], item[0][0]))]
    return AccuracyCurve(main.preset, main.config_hash, main.hardware, main.rewind_step,
                         tuple((b.level, b.percent_remaining) for b in boards),
                         summarize([dense[s] for s in sorted(dense)]), tuple(lines))


def select_series(curve: AccuracyCurve, names: Sequence[str]) -> AccuracyCurve:
    """The ticket, the reference and the lines ``names`` choose: a name picks the line of that label, or every
    line of that perturbation (``gaussian-noise`` picks each scale). Raises ValueError for a name that picks
    nothing, listing the names there are."""
    kept = [line for line in curve.lines if line.kind in ("ticket", "reference")]
    others = [line for line in curve.lines if line.kind not in ("ticket", "reference")]
    for name in names:
        picked = [line for line in others if _picks(name, line.label)]
        if not picked:
            choices = sorted({line.label for line in others} | {line.label.split(" (")[0] for line in others})
            raise ValueError(f"no series '{name}'; there are: {', '.join(choices) or 'none'}")
        kept += [line for line in picked if line not in kept]
    order = {line: i for i, line in enumerate(curve.lines)}
    return replace(curve, lines=tuple(sorted(kept, key=order.__getitem__)))


def _picks(name: str, label: str) -> bool:
    return label == name or label.startswith(name + " (") or label.startswith(name + " p-seed")


DEFAULT_SERIES_MAX = 8  # more lines than this and the figure is unreadable: the ticket and reference only


def default_series(curve: AccuracyCurve) -> tuple[AccuracyCurve, list[str]]:
    """Every line where there are few; otherwise the ticket and the reference, and the labels left out."""
    if len(curve.lines) <= DEFAULT_SERIES_MAX:
        return curve, []
    chosen = select_series(curve, [])
    return chosen, [line.label for line in curve.lines if line not in chosen.lines]


def _accuracy_axes(ax, curve: AccuracyCurve) -> None:
    """Accuracy against percent remaining on a log axis, sparser to the right as in the paper's figures."""
    import matplotlib
    import matplotlib.ticker

    d = curve.dense
    ax.axhline(d.mean, color="0.45", linestyle="--", linewidth=1, label="dense network")
    if not math.isnan(d.low):
        ax.axhspan(*_within_accuracy(d), color="0.45", alpha=0.12, linewidth=0)
    others = 0
    for i, line in enumerate(curve.lines):
        if line.kind == "ticket":
            style = {"color": "black", "marker": "o", "linewidth": 2 * matplotlib.rcParams["lines.linewidth"]}
        elif line.kind == "reference":
            style = {"color": REFERENCE_COLOR, "marker": "s", "linestyle": "--",
                     "linewidth": 2 * matplotlib.rcParams["lines.linewidth"]}
        else:  # a colour and marker pair no other line has; controls dotted
            color, marker, linestyle = series_style(others)
            others += 1
            style = {"color": color, "marker": marker, "linestyle": ":" if line.kind == "control" else linestyle}
        # a small horizontal offset per line so intervals at the same sparsity do not hide each other; the whole
        # spread stays within +-6% of the sparsity, however many lines there are
        shift = 1 + (0.12 * (i / (len(curve.lines) - 1) - 0.06) if len(curve.lines) > 1 else 0.0)
        xs = [p.percent_remaining * shift for p in line.points]
        acc = [p.accuracy for p in line.points]
        bounds = [_within_accuracy(s) for s in acc]
        err = [[s.mean - low for s, (low, _) in zip(acc, bounds)], [high - s.mean for s, (_, high) in zip(acc, bounds)]]
        label = "IMP rewound to 0 (k = 0, paper's reference)" if line.kind == "reference" else line.label
        ax.errorbar(xs, [s.mean for s in acc], yerr=err, label=plot_label(label), **style)
    ax.set_xscale("log")
    ticks = [pct for _, pct in curve.levels]
    ax.set_xticks(ticks, [f"{t:.1f}" for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.invert_xaxis()  # sparser to the right, as in the paper's plots
    ax.set_xlabel("percent of weights remaining")
    ax.set_ylabel("test accuracy (%; mean, 95% CI)")


def _within_accuracy(s: Summary) -> tuple[float, float]:
    """The 95% interval clipped to [0, 100] (two seeds' t-interval reaches far past what accuracy can be, and
    that part says nothing); the mean alone where there is no interval."""
    if math.isnan(s.low):
        return s.mean, s.mean
    return max(s.low, 0.0), min(s.high, 100.0)


def draw_accuracy(curve: AccuracyCurve, output: Path, style: str = "screen", dpi: int | None = None) -> Path:
    """The accuracy-against-sparsity figure (``bench plot --vs-sparsity``). PNG, SVG or PDF by suffix. The
    legend goes beside the axes while it is no taller than they are, else under them in columns."""
    st = STYLES[style]
    entries = len(curve.lines) + 1  # and the dense network
    width = st.width or 7.5
    height = (st.width or 6.4) * 0.62
    beside = st.width is None and entries <= 12
    if not beside:  # the legend's rows under the axes
        ncols = 1 if width < 4 else 2  # never wider than a single journal column
        height += -(-entries // ncols) * (st.font + 3) / 72 + 0.2
    with styled(st):
        fig = figure((width + (2.6 if beside else 0), height))
        ax = fig.subplots()
        _accuracy_axes(ax, curve)
        ax.set_title(plot_label(f"{curve.preset}: accuracy vs. sparsity, k = {curve.rewind_step}"), loc="left")
        ax.grid(alpha=0.3)
        if beside:
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
        else:
            handles, labels = ax.get_legend_handles_labels()
            fig.legend(handles, labels, loc="outside lower center", ncols=ncols, frameon=False)
        return save(fig, output, dpi or st.dpi)


# ---------------------------------------------------------------------------------------- parameter sweep

@dataclass(frozen=True)
class Sweep:
    """One perturbation's mean drop against the one numeric parameter its ranked rows vary, per board."""

    name: str
    param: str
    curves: tuple[tuple[Board, tuple[tuple[float, Summary], ...]], ...]  # per board: (value, drop), ascending


def parameter_sweep(lb: Leaderboard, name: str) -> Sweep:
    """The rows of perturbation ``name`` on each mask-fixed board, by the numeric parameter that differs
    between them (with others fixed). Raises ValueError when there is no such parameter."""
    rows = [r for b in lb.boards if not b.pretraining for r in b.rows if r.name == name]
    varying = sorted({k for r in rows for k, v in r.params.items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool)
                      and len({json.dumps(x.params.get(k)) for x in rows}) > 1})
    if len(varying) != 1:
        found = ", ".join(varying) or "none"
        raise ValueError(f"'{name}' needs ranked rows that differ in exactly one numeric parameter (found: {found})")
    param = varying[0]
    curves = []
    for board in lb.boards:
        points = sorted((float(r.params[param]), r.drop) for r in board.rows
                        if r.name == name and param in r.params and not board.pretraining)
        if len(points) > 1:
            curves.append((board, tuple(points)))
    if not curves:
        raise ValueError(f"no board has two or more ranked '{name}' rows")
    return Sweep(name, param, tuple(curves))


def draw_sweep(data: Sweep, output: Path, style: str = "screen", dpi: int | None = None) -> Path:
    """Mean drop with its 95% interval against the swept parameter (log axis where every value is positive),
    one line per sparsity, with zero marked: ``bench plot --sweep NAME``."""
    st = STYLES[style]
    with styled(st):
        fig = figure((st.width or 6.8, (st.width or 6.8) * 0.65))
        return save(_sweep_axes(fig.subplots(), data), output, dpi or st.dpi)


def _sweep_axes(ax, data: Sweep):
    values = sorted({x for _, pts in data.curves for x, _ in pts})
    for i, (board, points) in enumerate(data.curves):
        color, marker, linestyle = series_style(i)
        xs = [x for x, _ in points]
        drops = [d for _, d in points]
        err = [[0.0 if math.isnan(d.low) else d.mean - d.low for d in drops],
               [0.0 if math.isnan(d.low) else d.high - d.mean for d in drops]]
        ax.errorbar(xs, [d.mean for d in drops], yerr=err, color=color, marker=marker, linestyle=linestyle,
                    label=plot_label(f"{board.percent_remaining:.1f}% remaining (level {board.level}), "
                                      f"n = {min(d.n for d in drops)}"))
    ax.axhline(0, color="0.7", linewidth=0.8)
    if all(v > 0 for v in values):
        import matplotlib.ticker

        ax.set_xscale("log")
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel(plot_label(f"{data.param} ({data.name})"))
    ax.set_ylabel("drop vs. ticket (points; mean, 95% CI)")
    first = data.curves[0][0]
    ax.set_title(plot_label(f"{first.preset}: {data.name} against {data.param}, k = {first.rewind_step}"), loc="left")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax.figure


# ---------------------------------------------------------------------------------------- rewind curve

def draw_curve(data: dict[str, Any], path: Path) -> None:
    """Ticket accuracy against k, per seed and mean with its interval, from a curve's JSON data."""
    ks = [p["k"] for p in data["points"]]
    means = [p["mean"] for p in data["points"]]
    fig = _figure((6.4, 4.2))
    ax = fig.subplots()
    for i, seed in enumerate(data["seeds"]):
        ax.plot(ks, [p["accuracy"][i] for p in data["points"]], "o", color="tab:blue", alpha=0.3, ms=3,
                label="per seed" if i == 0 else None)
    lows = [p["ci_low"] for p in data["points"]]
    if all(v is not None for v in lows):
        highs = [p["ci_high"] for p in data["points"]]
        ax.fill_between(ks, lows, highs, color="tab:blue", alpha=0.15, label="95% interval")
    per_k = data.get("chain", "one-mask") == "per-k"
    ax.plot(ks, means, "-o", color="tab:blue",
            label="IMP rewound to k (own pruning chain per k)" if per_k else "ticket's mask, rewound to k")
    ax.axhline(data["dense"]["mean"], color="black", ls="--", lw=1, label="dense network")
    ax.axvline(data["preset_k"], color="gray", ls=":", lw=1, label=f"preset k = {data['preset_k']}")
    positive = [k for k in ks if k > 0]
    if positive and max(positive) / min(positive) >= 8:  # a wide range reads better on a log axis
        ax.set_xscale("symlog", linthresh=min(positive))
        ax.set_xlim(-0.3 * min(positive), max(ks) * 1.3)  # symlog autoscaling clips the end points
    ax.set_xlabel("rewind iteration k")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{data['preset']}: {data['percent_remaining']:.1f}% of weights remaining "
                 f"(level {data['level']}), {len(data['seeds'])} seed{'s' if len(data['seeds']) != 1 else ''}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path, dpi=130)


# ---------------------------------------------------------------------------------------- instability

def draw_instability(data: dict[str, Any], path: Path) -> None:
    """Left: test-error barrier against k (mean, 95% interval) for the dense network, the ticket and each
    perturbation; right: mean test error along the path at the preset's k. From ``Instability.as_dict()``."""
    fig = _figure((11, 4.2))
    left, right = fig.subplots(1, 2)
    for i, c in enumerate(data["curves"]):
        same = [d for d in data["curves"] if (d["name"], d["params"]) == (c["name"], c["params"])]
        name = plot_label(c["name"] + (f" {params_text(c['params'])}" if c["params"] else ""))
        if same[0] is c:
            ks, means = [d["k"] for d in same], [d["mean"] for d in same]
            err = [[m - (d["ci_low"] if d["ci_low"] is not None else m) for m, d in zip(means, same)],
                   [(d["ci_high"] if d["ci_high"] is not None else m) - m for m, d in zip(means, same)]]
            left.errorbar(ks, means, yerr=err, fmt="-o" if len(ks) > 1 else "s", capsize=3, ms=4, label=name)
        if c["k"] == data["preset_k"] or c["subject"] == "perturbation":
            right.plot(data["alphas"], c["mean_error"], "-", label=f"{name} (k = {c['k']})")
    left.axhline(data["stable_below"], color="gray", ls="--", lw=1, label=f"stable below {data['stable_below']:g}")
    left.axvline(data["preset_k"], color="gray", ls=":", lw=1)
    positive = [c["k"] for c in data["curves"] if c["k"] > 0]
    if positive and max(positive) / min(positive) >= 8:
        left.set_xscale("symlog", linthresh=min(positive))
    left.set(xlabel="start iteration k", ylabel="test-error barrier (points)",
             title=f"{data['preset']}: level {data['level']}, BatchNorm {data['bn']}, {len(data['seeds'])} seeds")
    right.set(xlabel="alpha (copy A -> copy B)", ylabel="test error (%)", title="error along the path")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _save(fig, path, dpi=130)


# ---------------------------------------------------------------------------------------- trace

PANELS = (
    ("test_accuracy", "test accuracy (%)", None),
    ("test_loss", "test loss", None),
    ("grad_norm", "gradient norm", None),
    ("mean_abs_weight", "mean |w|", None),
    ("sign_flip_fraction", "signs differing from W_0 (%)", 100.0),
    (("distance_from_init", "distance_from_final"), "L2 distance", None),
    (("cosine_to_init", "cosine_to_final"), "cosine similarity", None),
)


def draw_trace(data: dict[str, Any], path: Path) -> None:
    """The Figure-1 style timeline of a trace, from its JSON data (``Trace.as_dict()``): one panel per
    measurement, iterations on a log axis."""
    fig = _figure((15, 6.5))
    axes = fig.subplots(2, 4)
    axes = axes.flatten()
    colors = {"init": "tab:blue", "final": "tab:orange"}
    by_seed = sorted((int(seed), entry["rows"]) for seed, entry in data["seeds"].items())  # seeds in order
    many = len(by_seed) > 1
    for ax, (key, title, scale) in zip(axes, PANELS):
        keys = key if isinstance(key, tuple) else (key,)
        for k in keys:
            which = "final" if k.endswith("final") else "init"
            color = colors[which] if len(keys) > 1 else "tab:blue"
            label = ("from W_0" if which == "init" else "from final") if k.startswith("distance") else \
                ("to W_0" if which == "init" else "to final") if k.startswith("cosine") else None
            series = []
            for i, (seed, rows) in enumerate(by_seed):
                pts = [(r["iteration"], r[k] * (scale or 1)) for r in rows if r.get(k) is not None]
                series.append(dict(pts))
                ax.plot(*zip(*pts), color=color, lw=0.8 if many else 1.4, alpha=0.4 if many else 1.0,
                        label=label if (i == 0 and not many) else None)
            if many:  # the mean over seeds on top of each seed's thin line
                common = sorted(set.intersection(*(set(s) for s in series)))
                ax.plot(common, [sum(s[x] for s in series) / len(series) for x in common], color=color, lw=1.6,
                        label=label)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=0)
        if 0 < data["preset_k"] <= data["iterations"]:
            ax.axvline(data["preset_k"], color="gray", ls=":", lw=1)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=8)
    axes[-1].axis("off")
    axes[-1].text(0.0, 0.5, f"{data['preset']}\n{len(by_seed)} seed{'s' if many else ''}, "
                            f"iterations 0..{data['iterations']} of {data['steps']}\nrecorded every {data['every']} "
                            f"(+ powers of 2)\ndotted: rewind point k = {data['preset_k']}\n"
                            f"weights: prunable (conv, linear)", fontsize=9, va="center")
    _save(fig, path, dpi=120)
