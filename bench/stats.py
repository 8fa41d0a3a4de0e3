"""Replicate statistics: n, mean and a two-sided 95% t-interval."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scipy import stats


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    low: float  # 95% interval bounds; NaN when n < 2 (no spread to estimate)
    high: float
    std: float
    values: tuple[float, ...]

    def as_dict(self) -> dict:
        out = asdict(self)
        out["values"] = list(self.values)
        return out


def summarize(values: list[float], confidence: float = 0.95) -> Summary:
    n = len(values)
    if n == 0:
        raise ValueError("no values to summarize")
    mean = sum(values) / n
    if n < 2:
        return Summary(n, mean, math.nan, math.nan, math.nan, tuple(values))
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, mean - half, mean + half, std, tuple(values))
