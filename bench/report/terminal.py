"""The leaderboard in the terminal (rich tables) and as plain text."""

from __future__ import annotations

import io

from bench.report.fitting import fit, fits, stacked
from bench.report.model import Board, Leaderboard, Row, label
from bench.report.text import (INELIGIBLE_COLUMNS, NUMERIC_COLUMNS, board_title, clean, group, ineligible_cells,
                               interval, noise_floor_line, note_lines, notes, num, per_seed, rank_interval, rank_ub,
                               reference_line, summary_line, verdict_lines, versus_reference, zero_mark)


TERMINAL_COLUMNS = ("#", "perturbation", "n", "drop", "95% CI", "instab.", "ranks", "UB", "grp", "vs ref", "per seed",
                    "eff. std", "plugin", "notes")


def _terminal_cells(row: Row) -> list[str]:
    # narrower than the files' tables: level, sparsity and k are in the title, parameters join the name
    return [str(row.rank), clean(label(row.name, row.params, row.perturbation_seed)), str(row.n),
            num(row.drop.mean), interval(row.drop), num(row.mean_instability) if row.instability else "",
            rank_interval(row), rank_ub(row), group(row),
            versus_reference(row), per_seed(row), num(row.effective_std, 4), clean(f"{row.plugin} {row.version}"),
            "; ".join(p for p in (notes(row), zero_mark(row)) if p)]


# the columns that leave the table first when it does not fit the terminal: they are then listed under it, one
# line per row, so a narrow terminal loses no text (the ranking's own columns stay in the table)
MOVABLE = ("plugin", "eff. std", "per seed", "vs ref", "UB", "notes", "ranks")
_NO_WRAP = ("#", "n", "drop", "ranks", "UB", "grp")


def _table(names: list[str], rows: list[list[str]], styles: list[str], tight: bool = False):
    from rich import box
    from rich.table import Table
    from rich.text import Text

    # no vertical rules: the ranked table must fit an 80-column terminal
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for col in names:
        numeric = col in NUMERIC_COLUMNS or col in ("eff. std", "drop", "UB")
        # an interval or a p-value on one line, until only the ranking's own columns are left
        one_line = col in _NO_WRAP or (not tight and col in ("95% CI", "vs ref"))
        table.add_column(col, justify="right" if numeric else "left", no_wrap=one_line)
    for cells, style in zip(rows, styles):
        # every cell a Text, so '[...]' in a plugin's name is never read as markup
        table.add_row(*(Text(c) for c in cells), style=style)
    return table


def board_renderables(lb: Leaderboard, board: Board, width: int | None = None) -> list:
    """One board for a terminal ``width`` columns wide (None: as wide as its longest cells): the title, the
    reference line, the table, the columns that did not fit (as lines under it) and the verdicts. Only the
    table has columns; every sentence is plain text that wraps, so nothing is ever cropped."""
    from rich.text import Text

    # a seed count shared by every row goes into the title: one column less
    same_n = len({r.n for r in board.rows}) == 1
    names = [c for c in TERMINAL_COLUMNS if not (same_n and c == "n") and not (board.pretraining and c == "vs ref")]
    cells = [dict(zip(TERMINAL_COLUMNS, _terminal_cells(row))) for row in board.rows]
    styles = ["bold" if row.reference else "dim" if row.control else "" for row in board.rows]
    title = board_title(board) + (f", n = {board.rows[0].n} seeds" if same_n else "")
    out: list = [Text(title, style="bold"), Text(reference_line(lb, board))]
    noise = noise_floor_line(lb, board)
    out += [Text(noise)] if noise else []
    moved: list[str] = []
    candidates = [c for c in MOVABLE if c in names]
    while True:
        shown = [c for c in names if c not in moved]
        last = len(moved) == len(candidates)
        table = _table(shown, [[row[c] for c in shown] for row in cells], styles, tight=last)
        # no cell over two lines while columns can still move; the ranking's own columns may wrap further
        if fits(table, width, None if last else 2):
            out.append(table)
            break
        if len(moved) == len(candidates):  # not even the ranking's own columns fit: one block per row
            out.append(stacked(_table(names, [[row[c] for c in names] for row in cells], styles), key_columns=2))
            moved = []
            break
        moved.append(candidates[len(moved)])
    if moved:
        out.append(Text(f"Not in the table at this width ({', '.join(moved)}):", style="italic"))
        for row in cells:
            out.append(Text(f"#{row['#']} {row['perturbation']}: "
                            + "; ".join(f"{c} {row[c]}" for c in names if c in moved and row[c])))
    # what the board ranks and what its paired tests establish, under the table
    out += [Text(line) for line in verdict_lines(board) + [summary_line(lb)]]
    return out


def rich_tables(lb: Leaderboard, width: int | None = None) -> list:
    """Rich renderables for a terminal ``width`` columns wide (None: no limit): each board as a Group (see
    :func:`board_renderables`), then the rows not ranked. No text is cut at any width."""
    from rich.console import Group
    from rich.text import Text

    out = [Group(*board_renderables(lb, board, width), Text("")) for board in lb.boards]
    if lb.ineligible:
        table = _table(list(INELIGIBLE_COLUMNS), [ineligible_cells(r) for r in lb.ineligible], [""] * len(lb.ineligible))
        out.append(Group(Text("Not ranked", style="bold"), fit(table, width, key_columns=3)))
    return out


def render_table(lb: Leaderboard, width: int = 160) -> str:
    """The terminal table as plain text (for --output with --format table)."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False, highlight=False,
                      emoji=False)
    if not lb.boards:
        console.print("No ranked results.", markup=False)
    for table in rich_tables(lb, width):
        console.print(table)
    for line in note_lines(lb):
        console.print(line, markup=False)
    return buffer.getvalue()
