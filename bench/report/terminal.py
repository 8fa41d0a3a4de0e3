"""The leaderboard in the terminal (rich tables) and as plain text."""

from __future__ import annotations

import io

from bench.report.model import Leaderboard, Row, label
from bench.report.text import (INELIGIBLE_COLUMNS, NUMERIC_COLUMNS, board_title, clean, group, ineligible_cells,
                               interval, note_lines, notes, num, per_seed, rank_interval, rank_ub, reference_line,
                               summary_line, verdict_lines, versus_reference, zero_mark)


TERMINAL_COLUMNS = ("#", "perturbation", "n", "drop", "95% CI", "instab.", "ranks", "UB", "grp", "vs ref", "per seed",
                    "eff. std", "plugin", "notes")
_MIN_WIDTH = {"reason": 10, "notes": 7, "95% CI": 8}


def _terminal_cells(row: Row, narrow: bool = False) -> list[str]:
    # narrower than the files' tables: level, sparsity and k are in the title, parameters join the name
    return [str(row.rank), clean(label(row.name, row.params, row.perturbation_seed)), str(row.n),
            num(row.drop.mean), interval(row.drop), num(row.mean_instability) if row.instability else "",
            rank_interval(row), rank_ub(row), group(row),
            versus_reference(row), per_seed(row), num(row.effective_std, 4), clean(f"{row.plugin} {row.version}"),
            _notes(row, narrow)]


def _notes(row: Row, narrow: bool) -> str:
    # short words on a narrow terminal: the notes column must fit beside the others at 80 columns
    first = ("ref" if row.reference else "control" if row.control else "") if narrow else notes(row)
    return "; ".join(p for p in (first, zero_mark(row)) if p)


NARROW = 110  # below this terminal width the columns below go (--format json or markdown has them all)
_NARROW_DROPS = ("UB", "vs ref", "per seed", "eff. std", "plugin")


def rich_tables(lb: Leaderboard, width: int | None = None) -> list:
    """Rich renderables; every cell is a Text, so '[...]' in a plugin's name is never read as markup.
    On a terminal narrower than NARROW columns the low-value columns go, so no name has to be split."""
    from rich import box
    from rich.table import Table as RichTable
    from rich.text import Text

    def Table(**kwargs):
        # no vertical rules: the ranked table must fit an 80-column terminal
        return RichTable(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True, **kwargs)

    def columns(table, names, rows):
        # a name is never split: its column is at least as wide as the longest name (other text wraps at spaces)
        longest = max((len(r.name) for r in rows), default=0)
        for col in names:
            numeric = col in NUMERIC_COLUMNS or col in ("eff. std", "drop", "UB", "instab.")
            min_w = min(max(longest, 10), 40) if col == "perturbation" else _MIN_WIDTH.get(col)
            table.add_column(col, justify="right" if numeric else "left", overflow="fold",
                             no_wrap=col in ("#", "n", "drop", "level", "95% CI", "ranks", "vs ref"), min_width=min_w)

    tables = []
    for board in lb.boards:
        # a seed count shared by every row goes into the title: one column less at 80 columns
        same_n = len({r.n for r in board.rows}) == 1
        narrow = width is not None and width < NARROW
        names = [c for c in TERMINAL_COLUMNS
                 if not (same_n and c == "n") and not (narrow and c in _NARROW_DROPS)
                 and not (board.pretraining and c == "vs ref")
                 and not (c == "instab." and not any(r.instability for r in board.rows))]  # bench instability's
        # the paper's reference (or how to add it) on its own line under the title
        title = board_title(board) + (f", n = {board.rows[0].n} seeds" if same_n else "") + "\n" + \
            reference_line(lb, board)
        # what the board ranks and what its paired tests establish, under the table
        caption = "\n".join(verdict_lines(board) + [summary_line(lb)])
        table = Table(title=Text(title), caption=Text(caption), caption_justify="left")
        columns(table, names, board.rows)
        for row in board.rows:
            cells = dict(zip(TERMINAL_COLUMNS, _terminal_cells(row, narrow)))
            style = "bold" if row.reference else "dim" if row.control else ""
            table.add_row(*(Text(cells[c]) for c in names), style=style)
        tables.append(table)
    if lb.ineligible:
        table = Table(title=Text("Not ranked"))
        columns(table, INELIGIBLE_COLUMNS, lb.ineligible)
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
