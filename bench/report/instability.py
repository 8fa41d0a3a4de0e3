"""bench instability's records on the leaderboard: exported as their own section, and each perturbation row's
barrier per seed where records of the same perturbation match (bench.report.model fills rows with it)."""

from __future__ import annotations

import json
from typing import Any, Sequence

from bench.results import Result


def _params_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))  # as bench.report.model keys rows


def instability_summary(res: Result) -> dict[str, Any]:
    """One instability record as the leaderboard exports it (the path itself stays in the file)."""
    d, s = res.data, res.data["subject"]
    return {"preset": d["preset"], "config_hash": d["config_hash"], "level": d["level"], "k": d["k"],
            "subject": s["kind"], "name": s["name"], "params": s["params"], "perturbation_seed": s["seed"],
            "seed": d["seed"], "bn": d["bn"], "points": d["points"], "barrier": d["barrier"]["test"],
            "train_barrier": d["barrier"]["train"], "stable": d["stable"], "file": res.source}


def match_instability(rows: Sequence[Any], records: Sequence[Result]) -> None:
    """Fill each perturbation row's barrier per seed from instability records of the same preset, configuration,
    level, perturbation, parameters and perturbation seed; of several settings, the default (BatchNorm
    recomputed, 30 points) is preferred, else the first in order."""
    found: dict[tuple, dict[tuple, dict[int, float]]] = {}
    for res in records:
        d, s = res.data, res.data["subject"]
        if s["kind"] == "perturbation":
            key = (d["preset"], d["config_hash"], d["level"], s["name"], _params_key(s["params"]), s["seed"])
            setting = (d["bn"] != "recompute", d["points"] != 30, d["bn"], d["points"], d["k"])
            found.setdefault(key, {}).setdefault(setting, {})[d["seed"]] = d["barrier"]["test"]
    for row in rows:
        settings = found.get((row.preset, row.config_hash, row.level, row.name, _params_key(row.params),
                              row.perturbation_seed))
        if settings:
            best = min(settings)
            row.instability = {seed: b for seed, b in settings[best].items() if seed in row.seeds}
            row.instability_setting, row.instability_k = f"{best[2]}, {best[3]} points", best[4]
