"""Every output format of ``bench leaderboard``, by name."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from bench.report.html import render_html
from bench.report.markdown import render_markdown
from bench.report.model import Leaderboard
from bench.report.terminal import render_table

FORMATS = ("table", "markdown", "html", "json", "csv")


def json_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None  # an interval that cannot be estimated (n = 1)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def render_json(lb: Leaderboard) -> str:
    return json.dumps(json_safe(lb.as_dict()), indent=2, sort_keys=True, allow_nan=False) + "\n"


CSV_COLUMNS = ("preset", "config_hash", "perturbation", "params", "perturbation_seed", "seed", "level", "density",
               "dense", "ticket", "perturbed", "drop", "effective_std", "fingerprint_w0", "fingerprint_wk",
               "fingerprint_mask", "fingerprint_ticket", "file", "rank", "rank_low", "rank_high", "rank_ub", "group",
               "kind", "k", "bn", "barrier")


def render_csv(lb: Leaderboard) -> str:
    """One row per result file (not per leaderboard row): the per-seed numbers, for pandas or a spreadsheet.
    Params are one JSON object per cell; fingerprints are empty for records written before they existed. The
    columns after those are the file's leaderboard row's rank, bootstrap rank interval, Rank (UB) and group (empty
    where the row is not ranked); the last are its kind, and bench instability's start step, BatchNorm mode and
    test-error barrier: an instability record is a row of its own (kind 'instability', its subject as the
    perturbation, no accuracies), and a perturbation's file carries its seed's matched barrier."""
    verdicts = {src: (r.rank, r.verdict) for r in lb.rows if r.verdict is not None for src in r.sources}
    matched = {src: r for r in [*lb.rows, *lb.ineligible] if r.instability for src in r.sources}

    def line(res) -> list:
        d, pert, acc = res.data, res.data["perturbation"], res.data["accuracy"]
        fp = d.get("fingerprints") or {}
        rank, v = verdicts.get(res.source, (None, None))
        ranked = [rank, v.rank_low, v.rank_high, v.rank_ub, v.group] if v else [""] * 5
        row = matched.get(res.source)
        barrier = [row.instability_k, row.instability_setting.split(",")[0], row.instability[d["seed"]]] \
            if row is not None and d["seed"] in row.instability else [""] * 3
        return [d["preset"], d["config_hash"], pert["name"], json.dumps(pert["params"], sort_keys=True),
                pert["seed"], d["seed"], d["level"], d["density"], acc.get("dense", ""), acc["ticket"],
                acc["perturbed"], d["drop"], d["effective_std"],
                *(fp.get(k) or "" for k in ("w0", "wk", "mask", "ticket")), res.source, *ranked,
                d.get("kind", "perturbation"), *barrier]

    def instability_line(res) -> list:
        d, s, fp = res.data, res.data["subject"], res.data["fingerprints"]
        return [d["preset"], d["config_hash"], s["name"], json.dumps(s["params"], sort_keys=True), s["seed"],
                d["seed"], d["level"], d["density"], "", "", "", "", "", "", "", fp["mask"] or "", "",
                res.source, "", "", "", "", "", "instability", d["k"], d["bn"], d["barrier"]["test"]]

    # preset, config, level, name, params, p-seed, seed, file: the same order whatever order files were found in
    lines = [line(r) for r in lb.results] + [instability_line(r) for r in lb.instability]
    rows = sorted(([_cell(c) for c in row] for row in lines),
                  key=lambda r: (r[0], r[1], r[6], r[2], r[3], r[4], r[5], r[17]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")  # the csv module quotes commas, quotes and newlines
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting like a formula (=, +, -, @, tab, CR) gets a leading
    single quote, unless it is a plain number (a negative drop stays a number)."""
    if not isinstance(value, str) or not value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


RENDERERS = {"markdown": render_markdown, "html": render_html, "json": render_json, "table": render_table, "csv": render_csv}


def render(lb: Leaderboard, fmt: str) -> str:
    return RENDERERS[fmt](lb)
