"""``bench compare A B``: the paired comparison of two leaderboard rows, chosen by a short spec.

Spec syntax: ``NAME[:KEY=VALUE[,KEY=VALUE...]][@PSEED]``, e.g. ``gaussian-noise:scale=2.0``,
``pretrain:rotation:steps=96it`` or ``random-sign@1``. Parameters start at the first ``:`` that is followed by
``KEY=`` (a pre-training name such as ``pretrain:rotation`` keeps its colon); numbers match numerically (2
matches 2.0); a parameter left out matches any value, so a spec may name several rows, which is an error that
lists them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from bench.errors import BenchError
from bench.report.model import Board, Leaderboard, Row
from bench.report.paired import MAX_SEEDS_NEEDED, Paired, paired, seeds_text
from bench.report.text import board_title, clean, num, pvalue, pvalue_eq


_SPEC = re.compile(r"^(?P<name>.+?)(?::(?P<params>[A-Za-z_][\w-]*=.*?))?(?:@(?P<pseed>\d+))?$")


@dataclass(frozen=True)
class Spec:
    text: str
    name: str
    params: dict[str, str]
    pseed: int | None

    def matches(self, row: Row) -> bool:
        return (row.name == self.name and (self.pseed is None or row.perturbation_seed == self.pseed)
                and all(k in row.params and _same(row.params[k], v) for k, v in self.params.items()))


def parse_spec(text: str) -> Spec:
    m = _SPEC.match(text.strip())
    if not m:
        raise BenchError(f"Cannot read '{text}': write NAME, NAME:KEY=VALUE[,KEY=VALUE] or NAME@PSEED "
                         f"(e.g. gaussian-noise:scale=2.0).")
    params = {}
    for item in filter(None, (m["params"] or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BenchError(f"Cannot read the parameter '{item}' in '{text}': write KEY=VALUE.")
        params[key.strip()] = value.strip()
    return Spec(text, m["name"], params, int(m["pseed"]) if m["pseed"] is not None else None)


def _same(value: Any, given: str) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return math.isclose(float(value), float(given), rel_tol=1e-9, abs_tol=0.0)
        except ValueError:
            return False
    return (value if isinstance(value, str) else json.dumps(value)) == given


def spec_of(row: Row) -> str:
    """The spec that names exactly this row."""
    params = ",".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(row.params.items()))
    return clean(row.name + (f":{params}" if params else "") + (f"@{row.perturbation_seed}"
                                                                 if row.perturbation_seed else ""))


@dataclass
class Comparison:
    board: Board
    a: Row
    b: Row
    paired: Paired
    p_holm: float | None  # the pair's Holm-corrected p on its board
    comparisons: int  # pairs on the board


def select(lb: Leaderboard, a_text: str, b_text: str, level: int | None, default_level: int | None) -> Comparison:
    """The board and rows A and B name: one board, one row each; otherwise a one-line error with candidates."""
    a, b = parse_spec(a_text), parse_spec(b_text)
    boards = [bd for bd in lb.boards if level is None or bd.level == level]
    ranked = sorted({spec_of(r) for bd in boards for r in bd.rows})
    for spec in (a, b):
        if not any(spec.matches(r) for bd in boards for r in bd.rows):
            where = f" at level {level}" if level is not None else ""
            raise BenchError(f"No ranked row matches '{spec.text}'{where}. Ranked: {', '.join(ranked) or 'none'}.")
    found = []
    for bd in boards:
        rows_a = [r for r in bd.rows if a.matches(r)]
        rows_b = [r for r in bd.rows if b.matches(r)]
        for spec, rows in ((a, rows_a), (b, rows_b)):
            if len(rows) > 1:
                raise BenchError(f"'{spec.text}' names {len(rows)} rows: {', '.join(spec_of(r) for r in rows)}; "
                                 f"give one of them.")
        if rows_a and rows_b:
            found.append((bd, rows_a[0], rows_b[0]))
    if not found:
        raise BenchError(f"'{a.text}' and '{b.text}' are never on the same board (same preset, configuration, level, "
                         f"hardware and estimand), so they have no paired seeds.")
    if len(found) > 1 and level is None:
        found = [f for f in found if f[0].level == default_level] or found
    if len(found) > 1:
        raise BenchError(f"'{a.text}' and '{b.text}' are on {len(found)} boards ("
                         + "; ".join(f"{bd.preset} level {bd.level} {bd.hardware}" for bd, _, _ in found)
                         + "): choose one with --level and --preset.")
    board, row_a, row_b = found[0]
    if row_a is row_b:
        raise BenchError(f"'{a.text}' and '{b.text}' name the same row.")
    result = paired(row_a.drops, row_b.drops, wilcoxon=True)
    i, j = board.rows.index(row_a), board.rows.index(row_b)
    pair = board.verdicts.pair(i, j) if board.verdicts else None
    return Comparison(board, row_a, row_b, result, pair.p_holm if pair else None,
                      board.verdicts.comparisons if board.verdicts else 0)


def as_dict(c: Comparison) -> dict[str, Any]:
    bd = c.board
    return {"board": {"preset": bd.preset, "config_hash": bd.config_hash, "level": bd.level,
                      "percent_remaining": bd.percent_remaining, "rewind_step": bd.rewind_step,
                      "hardware": bd.hardware, "estimand": "pretraining" if bd.pretraining else "mask-fixed"},
            "a": spec_of(c.a), "b": spec_of(c.b), **c.paired.as_dict(), "p_holm_on_board": c.p_holm,
            "board_comparisons": c.comparisons, "seeds_needed_cap": MAX_SEEDS_NEEDED}


def lines(c: Comparison) -> list[str]:
    d, a, b = c.paired, spec_of(c.a), spec_of(c.b)
    out = [f"{a} minus {b}, paired by seed", board_title(c.board), "",
           f"n = {d.n} seeds both have ({', '.join(map(str, d.seeds))})",
           f"mean difference of drops {num(d.mean)}, 95% CI "
           + (f"[{num(d.low)}, {num(d.high)}]" if not math.isnan(d.low) else "- (one seed)")
           + f", paired t-test p {pvalue_eq(d.p_t)}",
           f"median {num(d.median)}, Hodges-Lehmann {num(d.hodges_lehmann)}"]
    tests = []
    if d.p_exact is not None:
        tests.append(f"exact sign-flip p {pvalue_eq(d.p_exact)} ({2 ** d.n} sign patterns; the smallest possible is "
                     f"{pvalue(2 / 2 ** d.n)})")
    tests.append(f"Wilcoxon signed-rank p {pvalue_eq(d.p_wilcoxon)}")
    out.append(", ".join(tests))
    if c.p_holm is not None:
        out.append(f"on its board this is one of {c.comparisons} pairs: Holm-corrected p {pvalue_eq(c.p_holm)} "
                   f"({'separated' if c.p_holm < 0.05 else 'not separated'} at family-wise 0.05)")
    width = max(len(a), len(b), 10)
    out += ["", f"{'seed':>4}  {a:>{width}}  {b:>{width}}  {'difference':>10}"]
    out += [f"{s:>4}  {num(x):>{width}}  {num(y):>{width}}  {num(x - y):>10}" for s, x, y in zip(d.seeds, d.a, d.b)]
    out.append("")
    if d.seeds_needed is None:
        out.append("Seeds needed: no estimate (no mean difference, or no spread with one seed).")
    elif d.seeds_needed > MAX_SEEDS_NEEDED:
        out.append(f"Seeds needed: more than {MAX_SEEDS_NEEDED} for a 95% interval of the difference to exclude 0 at "
                   f"the observed mean {num(d.mean)} and paired spread (sd {num(d.sd)}).")
    else:
        out.append(f"Seeds needed: about {seeds_text(d.seeds_needed)} for a 95% interval of the difference to exclude "
                   f"0, if the mean ({num(d.mean)}) and paired spread (sd {num(d.sd)}) stayed as observed"
                   + (" (reached: this interval excludes 0, before any correction for the board's other pairs)"
                      if d.seeds_needed <= d.n else "") + ".")
    return out
