"""The leaderboard as one self-contained HTML page under a strict content security policy.

The page works without JavaScript (every board shown, rank order). A small inline script adds sorting,
filtering and a board switcher; the policy allows exactly that script by its sha256 hash, so nothing else
can run even if escaping were ever bypassed. Every string from a result file is escaped.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
from typing import Sequence
from bench.report.links import distribution_url
from bench.report.model import Board, Leaderboard, Row
from bench.report.text import (COLUMNS, EXPLANATION, INELIGIBLE_COLUMNS, NUMERIC_COLUMNS, board_title, cells, clean,
                               ineligible_cells, noise_floor_line, note_lines, num, pvalue, reference_line,
                               summary_line, verdict_lines)

# columns that, when every row of a board agrees, say nothing per row: they move into the board's header
_CONSTANT_CANDIDATES = ("p-seed", "n", "% remaining", "k", "Rank (UB)", "group")
# shown at 1400 px, hidden on narrow screens (the name, drop, interval and notes carry the ranking)
_LOW_VALUE = ("drop per seed", "effective std", "plugin")
_BAR = "interval"  # the inline SVG column, after the 95% CI text
_BAR_W, _BAR_H = 120, 16

_CSS = (
    "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em;width:100%}"
    "th,td{border-bottom:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}"
    "th{background:#fafafa}td.num{text-align:right;white-space:nowrap}"
    "td.ci{white-space:nowrap}td.interval{padding:.35em .5em 0}td svg,th svg{display:block}"
    "td.perturbation{min-width:12em;overflow-wrap:anywhere}.desc{color:#555;font-size:.85em}"
    "td.plugin,td.drop-per-seed{font-size:.85em;color:#444}td.drop-per-seed{white-space:nowrap}"
    ".params{font-family:monospace;font-size:.9em}"
    "tr.control{background:#eee}tr.differs-ref td.vs-ref{font-weight:700}"
    "table.matrix{width:auto;font-size:.8em}table.matrix td{text-align:right;white-space:nowrap}"
    "table.matrix td.sep{background:#fde2b8;font-weight:700}table.matrix td.self{background:#f4f4f4}"
    "details{margin:.3em 0 1.5em}p.stats{margin:.2em 0;color:#333;font-size:.92em}"
    "tr.reference{background:#e3ecfa;font-weight:600}.swatch.ref{background:#e3ecfa}p.reference{margin:.2em 0}"
    ".legend span{margin-right:1.2em}.swatch{display:inline-block;width:1em;height:1em;background:#eee;"
    "border:1px solid #bbb;vertical-align:middle}.consts{color:#444;margin:.2em 0}"
    "#controls{margin:1em 0}#controls label{margin-right:1.5em}"
    "th.sortable{cursor:pointer}th[aria-sort=ascending]::after{content:' \\25B2'}"
    "th[aria-sort=descending]::after{content:' \\25BC'}svg text{font-size:10px;fill:#555}"
    "@media (max-width:900px){body{margin:.6em}"
    + "".join(f".c-{c}," for c in ("drop-per-seed", "effective-std")) + ".c-plugin{display:none}}"
)

# kept as one literal: its sha256 goes into the policy, so any edit changes the hash with it
_SCRIPT = """(function(){
var d=document,each=function(l,f){Array.prototype.forEach.call(l,f);};
function val(td){var v=td.getAttribute("data-v");if(v===null)return td.textContent.trim().toLowerCase();
var x=parseFloat(v);return isNaN(x)?-Infinity:x;}
function sortBy(th,desc){var t=th.closest("table"),b=t.tBodies[0],i=th.cellIndex;
var rows=Array.prototype.slice.call(b.rows);
rows.sort(function(p,q){var x=val(p.cells[i]),y=val(q.cells[i]),c=x<y?-1:x>y?1:0;return desc?-c:c;});
rows.forEach(function(r){b.appendChild(r);});
each(t.tHead.rows[0].cells,function(h){h.removeAttribute("aria-sort");});
th.setAttribute("aria-sort",desc?"descending":"ascending");}
each(d.querySelectorAll("th.sortable"),function(th){th.tabIndex=0;th.title="sort";
var go=function(){sortBy(th,th.getAttribute("aria-sort")==="ascending");};
th.addEventListener("click",go);th.addEventListener("keydown",function(e){if(e.key==="Enter")go();});});
var f=d.getElementById("filter"),s=d.getElementById("board");if(!f)return;
f.addEventListener("input",function(){var q=f.value.trim().toLowerCase();
each(d.querySelectorAll("section.board tbody tr"),function(r){
r.hidden=q!==""&&r.textContent.toLowerCase().indexOf(q)<0;});});
s.addEventListener("change",function(){each(d.querySelectorAll("section.board"),function(x){
x.hidden=s.value!=="all"&&x.id!==s.value;});});
d.getElementById("controls").hidden=false;
var m=/sort=(-?)([a-z0-9-]+)/.exec(location.hash);
if(m)each(d.querySelectorAll('th[data-key="'+m[2]+'"]'),function(th){sortBy(th,m[1]==="-");});
})();"""


def script_hash(script: str = _SCRIPT) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _key(column: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", column.lower()).strip("-")


def render_html(lb: Leaderboard, title: str = "Leaderboard") -> str:
    policy = f"default-src 'none'; style-src 'unsafe-inline'; script-src '{script_hash()}'"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
        f"<title>{_h(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{_h(title)}</h1>",
        "<p>Generated by <code>bench leaderboard</code> from the result files; do not edit by hand.</p>",
        f"<p>{_h(EXPLANATION)}</p>",
        f"<p>{_h(summary_line(lb))}</p>",
        '<p class="legend"><span><span class="swatch"></span> control (the harness\'s reference)</span>'
        '<span><span class="swatch ref"></span> imp-rewind-0, the paper\'s reference (IMP rewound to 0)</span>'
        "<span>group: rows sharing a letter are not separated by a paired test (Holm)</span>"
        "<span>vs 0: the row's own 95% interval excludes 0</span>"
        "<span>vs ref: paired difference from imp-rewind-0, Holm p, * differs</span>"
        "<span>bar: 95% interval of the drop, dot: mean, grey line: zero</span></p>",
    ]
    if not lb.boards:
        out.append("<p>No ranked results.</p>")
    else:
        # hidden until the script runs: without JavaScript the controls would do nothing, and every board shows
        options = "".join(f'<option value="board-{i}">{_h(_short_title(b))}</option>'
                          for i, b in enumerate(lb.boards, 1))
        out.append('<div id="controls" hidden><label>Filter <input id="filter" type="search" '
                   'placeholder="name, parameter, note"></label><label>Board <select id="board">'
                   f'<option value="all">all boards</option>{options}</select></label> '
                   "(click a column heading to sort)</div>")
    for i, board in enumerate(lb.boards, 1):
        out += _board(lb, board, f"board-{i}")
    if lb.ineligible:
        out += ["<h2>Not ranked</h2>", "<table>", "<thead>", _head(INELIGIBLE_COLUMNS, sortable=False), "</thead>",
                "<tbody>"]
        out += [_plain_row(INELIGIBLE_COLUMNS, ineligible_cells(r)) for r in lb.ineligible]
        out += ["</tbody>", "</table>"]
    notes_ = note_lines(lb)
    if notes_:
        out += ["<h2>Notes</h2>", "<ul>"] + [f"<li>{_h(n)}</li>" for n in notes_] + ["</ul>"]
    out += [f"<script>{_SCRIPT}</script>", "</body>", "</html>", ""]
    return "\n".join(out)


def _short_title(b: Board) -> str:
    return f"{b.preset}: {b.percent_remaining:.1f}% remaining (level {b.level})"


def _board(lb: Leaderboard, board: Board, ident: str) -> list[str]:
    table = [dict(zip(COLUMNS, cells(row))) for row in board.rows]
    constant = [c for c in _CONSTANT_CANDIDATES if len({t[c] for t in table}) == 1]
    # the parameters join the name (as in the terminal): one column less to fit 800 px
    columns = [c for c in COLUMNS if c not in constant and c != "params"]
    columns.insert(columns.index("95% CI") + 1, _BAR)
    consts = ", ".join(f"{c} {table[0][c]}" for c in constant)
    lo, hi = _axis(board.rows)
    out = [f'<section class="board" id="{ident}">', f"<h2>{_h(board_title(board))}</h2>",
           f'<p class="reference">{_h(reference_line(lb, board))}</p>']
    noise = noise_floor_line(lb, board)
    out += [f'<p class="reference">{_h(noise)}</p>'] if noise else []
    out += [f'<p class="stats">{_h(line)}</p>' for line in verdict_lines(board)]
    if consts:
        out.append(f'<p class="consts">Same for every row: {_h(consts)}.</p>')
    out += ["<table>", "<thead>", _head(columns, sortable=True, axis=(lo, hi)), "</thead>", "<tbody>"]
    for row, values in zip(board.rows, table):
        out.append(_ranked_row(row, values, columns, lo, hi))
    out += ["</tbody>", "</table>"] + _matrix(board) + ["</section>"]
    return out


def _matrix(board: Board) -> list[str]:
    """Every pair's paired mean difference (row minus column), separated pairs highlighted; each cell's title
    carries its interval and p-values. Plain HTML in a <details>, so it needs no script."""
    v = board.verdicts
    if v is None or len(board.rows) < 2:
        return []
    head = "".join(f'<th title="{_h(clean(r.label))}">#{r.rank}</th>' for r in board.rows)
    out = ["<details>", f"<summary>Pairwise paired differences ({v.comparisons} pairs, {v.separated} separated "
           f"after Holm)</summary>", "<p>Cell: mean over the seeds both rows have of (row's drop minus column's "
           "drop); hover for the 95% interval and p-values. Highlighted: separated by the paired test after Holm's "
           "correction over every pair of the board.</p>",
           '<table class="matrix">', f"<thead><tr><th></th>{head}</tr></thead>", "<tbody>"]
    for i, row in enumerate(board.rows):
        tds = []
        for j in range(len(board.rows)):
            pair = v.pair(i, j)
            if i == j or pair is None:
                tds.append('<td class="self"></td>' if i == j else "<td>-</td>")
                continue
            d = pair.paired
            sign = 1 if pair.i == i else -1  # stored as the upper row minus the lower one
            low, high = sorted((sign * d.low, sign * d.high))
            title = (f"#{row.rank} minus #{board.rows[j].rank}: {num(sign * d.mean)} [{num(low)}, {num(high)}], "
                     f"n = {d.n}; p {d.test} {pvalue(d.p)}, t {pvalue(d.p_t)}, Holm {pvalue(pair.p_holm)}")
            css = ' class="sep"' if pair.separated else ""
            tds.append(f'<td{css} title="{_h(title)}">{_h(num(sign * d.mean, 1))}</td>')
        out.append(f'<tr><th title="{_h(clean(row.label))}">#{row.rank} {_h(clean(row.label))}</th>{"".join(tds)}</tr>')
    out += ["</tbody>", "</table>", "</details>"]
    return out


def _axis(rows: Sequence[Row]) -> tuple[float, float]:
    """One scale per board: every interval, every mean and zero, with a little room at both ends."""
    values = [0.0] + [v for r in rows for v in (r.drop.low, r.drop.mean, r.drop.high) if not math.isnan(v)]
    lo, hi = min(values), max(values)
    pad = 0.05 * (hi - lo) or 1.0
    return lo - pad, hi + pad


def _x(value: float, lo: float, hi: float) -> float:
    return round((value - lo) / (hi - lo) * _BAR_W, 1)


def _axis_svg(lo: float, hi: float) -> str:
    zero = _x(0.0, lo, hi)
    return (f'<svg width="{_BAR_W}" height="{_BAR_H}" role="img" aria-label="axis from {lo:.1f} to {hi:.1f}">'
            f'<line x1="0" y1="15" x2="{_BAR_W}" y2="15" stroke="#999"/>'
            f'<line x1="{zero}" y1="9" x2="{zero}" y2="15" stroke="#999"/>'
            f'<text x="0" y="8">{lo:.1f}</text>'
            # the zero label only where it cannot run into an end label
            + (f'<text x="{zero}" y="8" text-anchor="middle">0</text>' if 25 < zero < _BAR_W - 25 else "")
            + f'<text x="{_BAR_W}" y="8" text-anchor="end">{hi:.1f}</text></svg>')


def _bar_svg(row: Row, lo: float, hi: float) -> str:
    s, zero = row.drop, _x(0.0, lo, hi)
    parts = [f'<line x1="{zero}" y1="0" x2="{zero}" y2="{_BAR_H}" stroke="#bbb"/>']
    if not math.isnan(s.low):
        parts.append(f'<line x1="{_x(s.low, lo, hi)}" y1="8" x2="{_x(s.high, lo, hi)}" y2="8" stroke="#36c" '
                     'stroke-width="2"/>')
    parts.append(f'<circle cx="{_x(s.mean, lo, hi)}" cy="8" r="3" fill="#123"/>')
    return (f'<svg width="{_BAR_W}" height="{_BAR_H}" role="img" aria-label="mean drop and 95% interval">'
            + "".join(parts) + "</svg>")


def _head(columns: Sequence[str], *, sortable: bool, axis: tuple[float, float] | None = None) -> str:
    ths = []
    for col in columns:
        key = _key(col)
        attrs = f' class="sortable c-{key}" data-key="{key}"' if sortable else f' class="c-{key}"'
        body = _axis_svg(*axis) if col == _BAR and axis else _h(col)
        ths.append(f"<th{attrs}>{body}</th>")
    return "<tr>" + "".join(ths) + "</tr>"


def _sort_value(col: str, row: Row) -> str | None:
    """The number a column sorts by (rank order for the name-less columns); None sorts by the text."""
    values = {"#": row.rank, "p-seed": row.perturbation_seed, "n": row.n, "mean drop": row.drop.mean,
              "95% CI": row.drop.low, _BAR: row.drop.mean, "% remaining": row.percent_remaining,
              "k": row.rewind_step, "effective std": row.effective_std, "notes": row.rank,
              "ranks": row.verdict.rank_low if row.verdict else None,
              "Rank (UB)": row.verdict.rank_ub if row.verdict else None,
              "vs ref": row.verdict.vs_reference.mean if row.verdict and row.verdict.vs_reference else None}
    value = values.get(col)
    return None if value is None else ("nan" if isinstance(value, float) and math.isnan(value) else repr(value))


def _ranked_row(row: Row, values: dict[str, str], columns: Sequence[str], lo: float, hi: float) -> str:
    differs = row.verdict is not None and row.verdict.differs_from_reference
    classes = " ".join(c for c, on in (("control", row.control), ("reference", row.reference),
                                       ("differs-ref", differs)) if on)
    tds = []
    for col in columns:
        key = _key(col)
        css = "num" if col in NUMERIC_COLUMNS else ("ci" if col == "95% CI" else key)
        sort = _sort_value(col, row)
        attrs = f' class="{css} c-{key}"' + (f' data-v="{sort}"' if sort is not None else "")
        if col == _BAR:
            body = _bar_svg(row, lo, hi)
        elif col == "perturbation":
            link = distribution_url(row.distribution)
            # linked only to the address the plugin's distribution declares (bench.report.links)
            body = f'<a href="{_h(link)}">{_h(values[col])}</a>' if link else \
                f'<span class="name">{_h(values[col])}</span>'
            if row.params:
                body += f' <span class="params">{_h(values["params"])}</span>'
            if row.description:
                body += f'<div class="desc">{_h(clean(row.description))}</div>'
        else:
            body = _h(values[col])
        tds.append(f"<td{attrs}>{body}</td>")
    attr = f' class="{classes}"' if classes else ""
    return f"<tr{attr}>{''.join(tds)}</tr>"


def _plain_row(columns: Sequence[str], values: Sequence[str]) -> str:
    tds = [f'<td class="{"num" if c in NUMERIC_COLUMNS else _key(c)}">{_h(v)}</td>' for c, v in zip(columns, values)]
    return f"<tr>{''.join(tds)}</tr>"
