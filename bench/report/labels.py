"""How a row's perturbation, parameters and pruning strategy are written, the same in every renderer."""

from __future__ import annotations

import json
from typing import Any


def params_key(params: dict[str, Any]) -> str:
    """The parameters as one canonical string: rows group by it."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def pruning_label(record: dict[str, Any]) -> str:
    """The strategy that made a record's masks, e.g. 'magnitude' or 'random-layerwise (dense=fc)'."""
    pruning = record.get("pruning") or {"strategy": "magnitude", "params": {}}
    params = params_text(pruning["params"])
    return pruning["strategy"] + (f" ({params})" if params else "")


def params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(params.items()))


def label(name: str, params: dict[str, Any], pseed: int) -> str:
    text = name + (f" ({params_text(params)})" if params else "")
    return text + (f" p-seed {pseed}" if pseed else "")
