"""Rich tables fitted to a terminal width without losing text.

Rich fits a table that is too wide by shrinking every column, cropping cells that may not wrap and, when the
minimum widths still do not fit, cropping whole lines (titles included). Here a table's column widths are set
before rich sees it: every column gets at least its longest word (its longest cell, where it may not wrap), so
text wraps between words and is never cut; a table whose minimum does not fit is shown instead as one
``header: value`` block per row, which wraps at any width.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text


def plain(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _needs(table: Table, max_lines: int | None = None) -> tuple[list[int], list[int]]:
    """Per column, the narrowest width that cuts no text (and, with ``max_lines``, wraps no cell to more than
    about that many lines), and the width that wraps none."""
    mins, maxes = [], []
    for column in table.columns:
        texts = [plain(column.header)] + [plain(c) for c in column.cells]
        lines = [line for t in texts for line in t.splitlines() or [""]]
        pieces = lines if column.no_wrap else [w for line in lines for w in line.split()]
        longest = max((len(line) for line in lines), default=1) or 1
        shortest = max((len(p) for p in pieces), default=1) or 1
        mins.append(max(shortest, -(-longest // max_lines)) if max_lines else shortest)
        maxes.append(longest)
    return mins, maxes


def _overhead(table: Table, widths: list[int]) -> int:
    """Borders and padding: the rendered width minus the cells' widths (measured, not modelled)."""
    from rich.console import Console
    from rich.segment import Segment

    saved = [(c.width, c.min_width, c.max_width) for c in table.columns]
    title, caption = table.title, table.caption
    for column, width in zip(table.columns, widths):
        column.width, column.min_width, column.max_width = width, None, None
    table.title = table.caption = None
    try:
        console = Console(width=100_000, color_system=None, force_terminal=False)
        lines = console.render_lines(table, console.options, pad=False)
        rendered = max((Segment.get_line_length(line) for line in lines), default=0)
    finally:
        for column, (w, lo, hi) in zip(table.columns, saved):
            column.width, column.min_width, column.max_width = w, lo, hi
        table.title, table.caption = title, caption
    return rendered - sum(widths)


def allocate(table: Table, width: int | None, max_lines: int | None = None) -> list[int] | None:
    """Column widths that fit ``width`` without cutting a word (None: they do not exist); every column as
    wide as its widest cell where ``width`` is None or leaves room."""
    mins, maxes = _needs(table, max_lines)
    if width is None:
        return maxes
    spare = width - _overhead(table, mins) - sum(mins)
    if spare < 0:
        return None
    widths = list(mins)
    # first whole columns, cheapest first: an interval or a p-value on one line reads better than a wider list
    for i in sorted(range(len(widths)), key=lambda i: (maxes[i] - mins[i], i)):
        if maxes[i] - widths[i] <= spare:
            spare -= maxes[i] - widths[i]
            widths[i] = maxes[i]
    open_ = [i for i in range(len(widths)) if widths[i] < maxes[i]]
    if open_ and spare:  # what is left to the column closest to one line per cell
        i = min(open_, key=lambda i: (maxes[i] - widths[i], i))
        widths[i] += spare
    return widths


def fits(table: Table, width: int | None, max_lines: int | None = None) -> bool:
    """Set the widths of ``table``'s columns for ``width`` when it fits; False (and nothing set) otherwise."""
    widths = allocate(table, width, max_lines)
    if widths is None:
        return False
    for column, w in zip(table.columns, widths):
        column.width, column.min_width, column.max_width = w, None, None
        column.overflow = "fold"
    return True


def stacked(table: Table, key_columns: int = 1) -> Group:
    """The table as one block per row: the first ``key_columns`` cells on a line of their own, then every other
    non-empty cell as ``header: value``; each block wraps at spaces at any width."""
    parts: list[Any] = []
    if table.title:
        parts.append(table.title if isinstance(table.title, Text) else Text(str(table.title)))
    columns = table.columns
    headers = [plain(c.header) for c in columns]
    rows = list(zip(*(list(c.cells) for c in columns))) if columns else []
    for cells in rows:
        texts = [plain(c) for c in cells]
        key = " ".join(t for t in texts[:key_columns] if t)
        rest = "; ".join(f"{h}: {t}" if h else t for h, t in zip(headers[key_columns:], texts[key_columns:]) if t)
        parts.append(Text(key, style="bold"))
        if rest:
            parts.append(Text("  " + rest))
    if table.caption:
        parts.append(table.caption if isinstance(table.caption, Text) else Text(str(table.caption)))
    return Group(*parts)


def fit(table: Table, width: int | None, key_columns: int = 1):
    """``table`` with widths that fit ``width``, else its rows as stacked blocks."""
    return table if fits(table, width) else stacked(table, key_columns)
