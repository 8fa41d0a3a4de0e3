"""`bench leaderboard` in a terminal loses no text at any width from 60 to 200 columns: every board's title,
reference line and verdict sentences, and every cell of every row (in the table, under it or as stacked
blocks), survive whole; no line is wider than the terminal."""

from __future__ import annotations

import re

from pathlib import Path

import pytest
from rich.console import Console

from bench.report.fitting import fit
from bench.report.model import from_folders
from bench.report.terminal import TERMINAL_COLUMNS, _terminal_cells, rich_tables
from bench.report.text import board_title, reference_line, summary_line, verdict_lines

RESULTS = Path(__file__).resolve().parent.parent / "leaderboard" / "results"


def _shown(renderables, width: int) -> str:
    console = Console(record=True, width=width, color_system=None, file=open("/dev/null", "w"))
    for r in renderables:
        console.print(r)
    return console.export_text()


@pytest.fixture(scope="module")
def committed():
    if not any(RESULTS.rglob("*.json")):
        pytest.skip("no committed results")
    return from_folders([RESULTS], min_seeds=3)


def test_committed_leaderboard_loses_no_text_from_60_to_200_columns(committed):
    lb = committed
    sentences = [s for b in lb.boards for s in [board_title(b), reference_line(lb, b), *verdict_lines(b)]]
    sentences.append(summary_line(lb))
    layouts = set()
    for width in range(60, 201):
        text = _shown(rich_tables(lb, width), width)
        assert max(map(len, text.splitlines())) <= width, width
        flat = " ".join(text.split())
        for sentence in sentences:
            assert " ".join(sentence.split()) in flat, (width, sentence)
        for b in lb.boards:
            if len({r.n for r in b.rows}) == 1:
                assert f"n = {b.rows[0].n} seeds" in flat, width
        words = set(text.split()) | {w.rstrip(";:") for w in text.split()}  # "1-3;" in a line under the table
        for row in lb.rows:
            assert row.name in words, (width, row.name)  # a name is never split
            for column, cell in zip(TERMINAL_COLUMNS, _terminal_cells(row)):
                missing = [w for w in cell.split() if w not in words]
                assert not missing, (width, row.name, column, missing)
        # which columns each board leaves out at this width: 24 per-seed drops never fit, so count the lists
        layouts.add(tuple(re.findall(r"Not in the table at this width \(([^)]*)\)", flat)))
    assert len(layouts) > 2  # the widths really exercised several layouts


def test_a_table_too_wide_for_any_layout_becomes_blocks():
    from rich.table import Table

    table = Table(title="Title that must survive")
    for name in ("perturbation", "a long header", "another"):
        table.add_column(name, no_wrap=True)
    table.add_row("x" * 30, "y" * 30, "value with words")
    text = _shown([fit(table, 40)], 40)
    flat = " ".join(text.split())
    assert "Title that must survive" in flat and "x" * 30 in text and "a long header: " + "y" * 30 in flat
    assert max(map(len, text.splitlines())) <= 40
    wide = _shown([fit(table, 200)], 200)
    assert "x" * 30 in wide and "│" in wide  # it fits: a table


def test_run_tables_fit_narrow_terminals():
    from test_run_output import outcome

    from bench.cli.output import comparison_table, level_table

    outcomes = [outcome("identity", [0.0, 0.0, 0.0]), outcome("shuffle-layer-keep-sign-and-more", [3.0, 4.0, 5.0])]
    for make in (comparison_table, level_table):
        for width in (60, 80, 120):
            text = _shown([fit(make(outcomes), width)], width)
            assert max(map(len, text.splitlines())) <= width
            assert "shuffle-layer-keep-sign-and-more" in text.split() or \
                "shuffle-layer-keep-sign-and-more" in text
            assert "level 2" in " ".join(text.split()) or "perturbations on" in text
