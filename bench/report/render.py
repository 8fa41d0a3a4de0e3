"""Every output format of ``bench leaderboard``, by name."""

from __future__ import annotations

import json
import math
from typing import Any

from bench.report.html import render_html
from bench.report.markdown import render_markdown
from bench.report.model import Leaderboard
from bench.report.terminal import render_table

FORMATS = ("table", "markdown", "html", "json")


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


RENDERERS = {"markdown": render_markdown, "html": render_html, "json": render_json, "table": render_table}


def render(lb: Leaderboard, fmt: str) -> str:
    return RENDERERS[fmt](lb)
