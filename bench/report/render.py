"""Every output format of ``bench leaderboard``, by name."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from bench.report.html import render_html
from bench.report.learned import seed_problem
from bench.report.markdown import render_markdown
from bench.report.model import Leaderboard, pruning_label
from bench.report.terminal import render_table
from bench.report.text import clean

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


CSV_COLUMNS = ("preset", "config_hash", "perturbation", "params", "perturbation_seed", "seed", "level",
               "percent_remaining", "dense_accuracy", "ticket_accuracy", "perturbed_accuracy", "drop_points",
               "effective_std", "fingerprint_w0", "fingerprint_wk", "fingerprint_mask", "fingerprint_ticket", "file",
               "row_rank", "rank_low", "rank_high", "rank_ub", "group", "pruning", "effective_density",
               "kind", "k", "bn", "barrier", "not_learned")
# no name is a DataFrame attribute (as "drop" and "rank" were), so df.drop_points is the column, df.drop the method
PARAM_PREFIX = "param_"  # one flat column per parameter name, after "params", for a filter or a groupby


def _param_value(value: Any) -> Any:
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else \
        json.dumps(value, sort_keys=True)


def csv_columns(lb: Leaderboard) -> list[str]:
    """CSV_COLUMNS with a ``param_<name>`` column for every parameter name any exported record has."""
    names = sorted({k for res in lb.results for k in res.data["perturbation"]["params"]})
    i = CSV_COLUMNS.index("params") + 1
    return [*CSV_COLUMNS[:i], *(PARAM_PREFIX + clean(n) for n in names), *CSV_COLUMNS[i:]]


def render_csv(lb: Leaderboard) -> str:
    """One row per result file (not per leaderboard row): the per-seed numbers, for pandas or a spreadsheet.
    Accuracies and percent remaining are percentages, the drop is in accuracy points. Params are one JSON
    object per cell and one ``param_<name>`` column per parameter (empty where a record lacks it);
    fingerprints are empty for records written before they existed. The last columns are the file's
    leaderboard row's rank, bootstrap rank interval, Rank (UB) and group (empty where the row is not
    ranked); the last are its kind, and bench instability's start step, BatchNorm mode and test-error barrier:
    an instability record is a row of its own (kind 'instability', its subject as the perturbation, no
    accuracies), and a perturbation's file carries its seed's matched barrier; last, why a pre-training seed's
    network did not learn (bench.report.learned), empty otherwise. Documented in docs/leaderboard.md."""
    verdicts = {src: (r.rank, r.verdict) for r in lb.rows if r.verdict is not None for src in r.sources}
    names = sorted({k for res in lb.results for k in res.data["perturbation"]["params"]})
    matched = {src: r for r in [*lb.rows, *lb.ineligible] if r.instability for src in r.sources}

    def line(res) -> dict[str, Any]:
        d, pert, acc = res.data, res.data["perturbation"], res.data["accuracy"]
        fp = d.get("fingerprints") or {}
        rank, v = verdicts.get(res.source, (None, None))
        ranked = [rank, v.rank_low, v.rank_high, v.rank_ub, v.group] if v else [""] * 5
        match = matched.get(res.source)
        barrier = [match.instability_k, match.instability_setting.split(",")[0], match.instability[d["seed"]]] \
            if match is not None and d["seed"] in match.instability else [""] * 3
        values = [d["preset"], d["config_hash"], pert["name"], json.dumps(pert["params"], sort_keys=True),
                  pert["seed"], d["seed"], d["level"], 100 * d["density"], acc.get("dense", ""), acc["ticket"],
                  acc["perturbed"], d["drop"], d["effective_std"],
                  *(fp.get(k) or "" for k in ("w0", "wk", "mask", "ticket")), res.source, *ranked, pruning_label(d),
                  "" if d.get("effective_density") is None else d["effective_density"],
                  d.get("kind", "perturbation"), *barrier, seed_problem(d) or ""]
        row = dict(zip(CSV_COLUMNS, values))
        row.update({PARAM_PREFIX + clean(n): _param_value(pert["params"][n]) if n in pert["params"] else ""
                    for n in names})
        return row

    def instability_line(res) -> dict[str, Any]:
        d, subject, fp = res.data, res.data["subject"], res.data["fingerprints"]
        row = dict.fromkeys(CSV_COLUMNS, "")
        row.update(preset=d["preset"], config_hash=d["config_hash"], perturbation=subject["name"],
                   params=json.dumps(subject["params"], sort_keys=True), perturbation_seed=subject["seed"],
                   seed=d["seed"], level=d["level"], percent_remaining=100 * d["density"],
                   fingerprint_mask=fp["mask"] or "", file=res.source, kind="instability", k=d["k"], bn=d["bn"],
                   barrier=d["barrier"]["test"])
        row.update({PARAM_PREFIX + clean(n): _param_value(subject["params"][n]) if n in subject["params"] else ""
                    for n in names})
        return row

    # preset, config, level, name, params, p-seed, seed, file: the same order whatever order files were found in
    lines = [line(r) for r in lb.results] + [instability_line(r) for r in lb.instability]
    rows = sorted(lines, key=lambda r: tuple(str(r[k]) if k == "params" else r[k] for k in (
        "preset", "config_hash", "level", "perturbation", "params", "perturbation_seed", "seed", "file")))
    columns = csv_columns(lb)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")  # the csv module quotes commas, quotes and newlines
    writer.writerow([_cell(c) for c in columns])  # a parameter's name is plugin text too
    writer.writerows([_cell(row[c]) for c in columns] for row in rows)
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
