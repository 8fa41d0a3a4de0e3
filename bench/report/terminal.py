"""The leaderboard in the terminal (rich tables) and as plain text."""

from __future__ import annotations

import io

from bench.report.model import Leaderboard, Row, label
from bench.report.text import (INELIGIBLE_COLUMNS, NUMERIC_COLUMNS, board_title, clean, ineligible_cells, interval,
                               note_lines, notes, num, per_seed, summary_line)


TERMINAL_COLUMNS = ("#", "perturbation", "n", "drop", "95% CI", "per seed", "eff. std", "plugin", "notes")
_MIN_WIDTH = {"perturbation": 10, "reason": 10}


def _terminal_cells(row: Row) -> list[str]:
    # narrower than the files' tables: level, sparsity and k are in the title, parameters join the name
    return [str(row.rank), clean(label(row.name, row.params, row.perturbation_seed)), str(row.n),
            num(row.drop.mean), interval(row.drop), per_seed(row), num(row.effective_std, 4),
            clean(f"{row.plugin} {row.version}"), notes(row)]


def rich_tables(lb: Leaderboard) -> list:
    """Rich renderables; every cell is a Text, so '[...]' in a plugin's name is never read as markup."""
    from rich import box
    from rich.table import Table as RichTable
    from rich.text import Text

    def Table(**kwargs):
        # no vertical rules: the ranked table must fit an 80-column terminal
        return RichTable(box=box.SIMPLE_HEAD, **kwargs)

    def columns(table, names):
        for col in names:
            numeric = col in NUMERIC_COLUMNS or col in ("eff. std", "drop")
            table.add_column(col, justify="right" if numeric else "left", overflow="fold",
                             no_wrap=col in ("#", "n", "drop", "level"), min_width=_MIN_WIDTH.get(col))

    tables = []
    for board in lb.boards:
        table = Table(title=Text(board_title(board)), caption=Text(summary_line(lb)))
        columns(table, TERMINAL_COLUMNS)
        for row in board.rows:
            table.add_row(*(Text(c) for c in _terminal_cells(row)), style="dim" if row.control else "")
        tables.append(table)
    if lb.ineligible:
        table = Table(title=Text("Not ranked"))
        columns(table, INELIGIBLE_COLUMNS)
        for row in lb.ineligible:
            table.add_row(*(Text(c) for c in ineligible_cells(row)))
        tables.append(table)
    return tables


def render_table(lb: Leaderboard, width: int = 160) -> str:
    """The terminal table as plain text (for --output with --format table)."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False, highlight=False,
                      emoji=False)
    if not lb.boards:
        console.print("No ranked results.", markup=False)
    for table in rich_tables(lb):
        console.print(table)
    for line in note_lines(lb):
        console.print(line, markup=False)
    return buffer.getvalue()
