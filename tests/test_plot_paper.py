"""`bench plot` for papers: a forest plot per board (pre-training entries on their own axes, the reference's mean
drawn), PDF output in a paper style, --dpi, --series, and colour and marker pairs that never repeat."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.report.figstyle import COLORS, MARKERS, series_style
from bench.report.model import from_folders
from test_leaderboard import write_series

RESULTS = Path(__file__).resolve().parent.parent / "leaderboard" / "results"


@pytest.fixture()
def two_levels(tmp_path):
    root = tmp_path / "r"
    for level, density in ((1, 0.5), (2, 0.25)):
        write_series(root, "identity", [0.0, 0.0, 0.0], level=level, density=density)
        write_series(root, "imp-rewind-0", [0.5, 1.0, 2.0], level=level, density=density)
        for scale in (0.5, 1.0):
            write_series(root, "noise", [1.0 * scale, 2.0, 4.0], level=level, density=density, dist="o",
                         params={"scale": scale})
        write_series(root, "other", [3.0, 2.0, 4.0], level=level, density=density, dist="o")
    return root


def _plot(*args: str):
    return CliRunner().invoke(cli, ["plot", *args])


def test_pdf_in_paper_style_is_a_real_pdf_with_text(two_levels, tmp_path):
    out = tmp_path / "x.pdf"
    result = _plot("--results", str(two_levels), "--output", str(out))
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(b"%PDF") and b"/CIDFontType2" in data  # TrueType text, not glyph outlines
    assert "paper style" in result.stderr
    again = tmp_path / "y.pdf"
    assert _plot("--results", str(two_levels), "--output", str(again)).exit_code == 0
    assert again.read_bytes() == data  # no creation date: the same results give the same file


def test_dpi_changes_the_pixel_size_and_paper_style_fits_a_column(two_levels, tmp_path):
    from matplotlib.image import imread

    sizes = {}
    for dpi in (100, 200):
        out = tmp_path / f"d{dpi}.png"
        assert _plot("--results", str(two_levels), "--dpi", str(dpi), "--output", str(out)).exit_code == 0
        sizes[dpi] = imread(out).shape[1]
    assert 1.9 < sizes[200] / sizes[100] < 2.1
    for style, inches in (("paper", 3.3), ("paper-wide", 6.8)):
        out = tmp_path / f"{style}.png"
        for args in ([], ["--vs-sparsity"]):
            assert _plot("--results", str(two_levels), "--style", style, "--dpi", "100", *args,
                         "--output", str(out)).exit_code == 0
            width = imread(out).shape[1] / 100
            assert inches - 0.4 < width <= inches + 0.1, (style, args, width)  # tight bounding box, no overflow


def test_series_chooses_the_lines_of_vs_sparsity(two_levels, tmp_path):
    out = tmp_path / "a.svg"
    result = _plot("--results", str(two_levels), "--vs-sparsity", "--series", "noise", "--output", str(out))
    assert result.exit_code == 0, result.output
    svg = out.read_text()
    assert "noise (scale=0.5)" in svg and "noise (scale=1.0)" in svg and ">other<" not in svg
    assert "ticket, rewound to k" in svg and "IMP rewound to 0 (k = 0" in svg  # always drawn
    one = _plot("--results", str(two_levels), "--vs-sparsity", "--series", "noise (scale=1.0)", "--output", str(out))
    assert one.exit_code == 0 and "noise (scale=0.5)" not in out.read_text()
    bad = _plot("--results", str(two_levels), "--vs-sparsity", "--series", "nope", "--output", str(out))
    assert bad.exit_code == 1 and "no series 'nope'" in bad.stderr and "noise" in bad.stderr
    alone = _plot("--results", str(two_levels), "--series", "noise", "--output", str(out))
    assert alone.exit_code == 1 and "add --vs-sparsity" in alone.stderr


def test_colour_and_marker_pairs_never_repeat():
    first = [series_style(i)[:2] for i in range(len(COLORS) * len(MARKERS))]
    assert len(set(first)) == len(first) == 88
    every = [series_style(i) for i in range(300)]
    assert len(set(every)) == 300
    assert all(c not in ("tab:red", "black", "tab:gray") and m != "s" for c, m, _ in every)  # the reserved ones
    # neighbours differ in both colour and marker
    assert all(a[0] != b[0] and a[1] != b[1] for a, b in zip(every, every[1:]))


def test_committed_figure_puts_pretraining_on_its_own_axes(tmp_path):
    if not any(RESULTS.rglob("*.json")):
        pytest.skip("no committed results")
    out = tmp_path / "board.svg"
    result = _plot("--results", str(RESULTS), "--min-seeds", "3", "--output", str(out))
    assert result.exit_code == 0, result.output
    svg = out.read_text()
    axes = re.findall(r'<g id="axes_\d+">', svg)
    assert len(axes) == 2 and "pre-training entries" in svg and "imp-rewind-0 (reference)" in svg
    # each axis is scaled to its own rows: the mask-fixed one to its largest per-seed drop (read from the
    # committed files, so a regeneration moves it), the pre-training one to its much smaller ones
    board = next(b for b in from_folders([RESULTS], min_seeds=3).boards if not b.pretraining)
    largest = max(v for row in board.rows for v in row.drop.values)
    first_axis, second_axis = svg.split('<g id="axes_2">')[:2]
    ticks = [float(t) for t in re.findall(r">(\d+)</text>", first_axis)]
    assert ticks and largest - 10 <= max(ticks) <= largest + 10
