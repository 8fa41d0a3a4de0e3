"""How the report figures look and are written: screen or paper style, PNG, SVG or PDF, colour and marker
pairs that never repeat.

The paper styles are sized for a journal column (3.3 in single, 6.8 in double) with 8 pt text, so a figure
included at its own width needs no scaling; text stays text in SVG and PDF (fonts embedded as TrueType).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLOT_SUFFIXES = (".png", ".svg", ".pdf")


@dataclass(frozen=True)
class Style:
    name: str
    width: float | None  # inches; None: as wide as the content needs (screen)
    font: float  # points: labels and titles; ticks and legends one point smaller
    dpi: int  # for PNG, unless --dpi says otherwise
    row: float  # inches per row of a forest plot
    label_chars: int  # a row label wraps after about this many characters

    def rc(self) -> dict[str, Any]:
        small = self.font - 1
        return {"font.size": self.font, "axes.titlesize": self.font, "axes.labelsize": self.font,
                "xtick.labelsize": small, "ytick.labelsize": small, "legend.fontsize": small,
                "figure.titlesize": self.font + 1, "lines.markersize": 4 if self.width else 6,
                "lines.linewidth": 1.0 if self.width else 1.5, "axes.linewidth": 0.6 if self.width else 0.8,
                "errorbar.capsize": 2 if self.width else 3}


STYLES = {
    "screen": Style("screen", None, 10, 150, 0.32, 40),
    "paper": Style("paper", 3.3, 8, 300, 0.19, 24),  # one column
    "paper-wide": Style("paper-wide", 6.8, 8, 300, 0.19, 44),  # both columns
}


def default_style(output: Path) -> str:
    """Paper style for a PDF (it goes into a paper), screen style otherwise."""
    return "paper" if output.suffix.lower() == ".pdf" else "screen"


def figure(size: tuple[float, float]):
    """A Figure on its own Agg canvas (never pyplot, never an interactive backend). Draw inside
    :func:`styled`: fonts and tick sizes are read from the settings when each artist is made."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def styled(style: Style):
    """The style's settings as a context to draw and save in."""
    import matplotlib

    return matplotlib.rc_context(style.rc())


def save(fig, output: Path, dpi: int) -> Path:
    """PNG, SVG or PDF by suffix; the same results give the same SVG and PDF bytes (no date, fixed salt)."""
    import matplotlib

    output.parent.mkdir(parents=True, exist_ok=True)
    fmt = output.suffix[1:].lower()
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}.get(fmt)
    # svg.fonttype none: labels stay text in the SVG; pdf.fonttype 42: TrueType, text stays selectable
    with matplotlib.rc_context({"svg.hashsalt": "earlyphase-bench", "svg.fonttype": "none", "pdf.fonttype": 42}):
        fig.savefig(output, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.03, metadata=metadata)
    return output


COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
MARKERS = ("o", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*")  # the square is the reference's


def series_style(i: int) -> tuple[str, str, str]:
    """Colour, marker and line style of the i-th series: no two series share all three. Red, black, grey and
    the square belong to the reference, the ticket and the dense network. The marker advances with each lap
    of the colours, so series of one colour differ in marker (for 88 series; then the line style changes)."""
    laps = len(COLORS) * len(MARKERS)
    color = COLORS[i % len(COLORS)]
    marker = MARKERS[(i + i // len(COLORS)) % len(MARKERS)]
    linestyle = ("-", "-.", (0, (1, 1)), (0, (5, 1)))[(i // laps) % 4]
    return color, marker, linestyle
