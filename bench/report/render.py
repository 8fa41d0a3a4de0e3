"""Every output format of ``bench leaderboard``, by name."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from bench.report.html import render_html
from bench.report.markdown import render_markdown
from bench.report.model import Leaderboard, pruning_label
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
               "fingerprint_mask", "fingerprint_ticket", "file", "pruning", "effective_density")


def render_csv(lb: Leaderboard) -> str:
    """One row per result file (not per leaderboard row): the per-seed numbers, for pandas or a spreadsheet.
    Params are one JSON object per cell; fingerprints are empty for records written before they existed."""
    def line(res) -> list:
        d, pert, acc = res.data, res.data["perturbation"], res.data["accuracy"]
        fp = d.get("fingerprints") or {}
        return [d["preset"], d["config_hash"], pert["name"], json.dumps(pert["params"], sort_keys=True),
                pert["seed"], d["seed"], d["level"], d["density"], acc.get("dense", ""), acc["ticket"],
                acc["perturbed"], d["drop"], d["effective_std"],
                *(fp.get(k) or "" for k in ("w0", "wk", "mask", "ticket")), res.source, pruning_label(d),
                "" if d.get("effective_density") is None else d["effective_density"]]

    # preset, config, level, name, params, p-seed, seed, file: the same order whatever order files were found in
    rows = sorted((line(r) for r in lb.results), key=lambda r: (r[0], r[1], r[6], r[2], r[3], r[4], r[5], r[17]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")  # the csv module quotes commas, quotes and newlines
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


RENDERERS = {"markdown": render_markdown, "html": render_html, "json": render_json, "table": render_table, "csv": render_csv}


def render(lb: Leaderboard, fmt: str) -> str:
    return RENDERERS[fmt](lb)
