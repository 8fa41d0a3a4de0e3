"""Paired comparisons of two leaderboard rows, and the board-wide statistics built only from them.

Every row of a board shares seeds, tickets and data orders, so rows A and B are compared through the
per-seed differences d_s = drop_A,s - drop_B,s over the seeds both have (the ticket cancels). A pair's test
uses those two rows alone (unlike mean-rank post-hoc tests, whose A-vs-B verdict depends on the other
entries: Benavoli, Corani & Mangili 2016); only the Holm correction depends on how many pairs a board shows.

The decision test is an exact sign-flip (permutation) test of the mean difference for n <= EXACT_MAX_N
seeds and the Wilcoxon signed-rank test above that: per-seed drops are heavy-tailed, so the t-test's p is
reported beside it but decides nothing. Pure functions over numbers (numpy and scipy, no torch).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05
CONFIDENCE = 0.95
EXACT_MAX_N = 20  # 2^20 sign patterns, enumerated in blocks
RESAMPLES = 2000  # bootstrap resamples of the seeds for rank intervals
BOOTSTRAP_SEED = 0  # fixed, so a table is the same every time it is generated
MAX_SEEDS_NEEDED = 1000
_BLOCK = 1 << 16


@dataclass(frozen=True)
class Paired:
    """A minus B over their common seeds."""

    seeds: tuple[int, ...]
    a: tuple[float, ...]  # A's drop per common seed
    b: tuple[float, ...]
    n: int
    mean: float
    low: float  # 95% t-interval of the mean difference; NaN when n < 2
    high: float
    sd: float
    median: float
    hodges_lehmann: float
    p_t: float  # paired t-test, two-sided
    p_exact: float | None  # exact sign-flip test of the mean, two-sided (n <= EXACT_MAX_N)
    p_wilcoxon: float | None  # Wilcoxon signed-rank, two-sided (where asked for, and always above EXACT_MAX_N)
    seeds_needed: int | None  # seeds whose 95% t-interval would exclude 0 at this mean and spread

    @property
    def diffs(self) -> tuple[float, ...]:
        return tuple(x - y for x, y in zip(self.a, self.b))

    @property
    def p(self) -> float:
        """The deciding p-value: the exact sign-flip test where it is enumerable, else Wilcoxon."""
        return self.p_exact if self.p_exact is not None else float(self.p_wilcoxon)

    @property
    def test(self) -> str:
        return decision_test(self.n)

    def as_dict(self) -> dict:
        out = asdict(self)
        del out["a"], out["b"]  # named for the JSON, where "a" and "b" are the rows' labels
        out.update(seeds=list(self.seeds), drops_a=list(self.a), drops_b=list(self.b), diffs=list(self.diffs),
                   p=self.p, test=self.test)
        return out


def decision_test(n: int) -> str:
    return f"exact sign-flip ({2 ** n} sign patterns)" if n <= EXACT_MAX_N else "Wilcoxon signed-rank"


def paired(a: Mapping[int, float], b: Mapping[int, float], wilcoxon: bool = False) -> Paired:
    """The paired comparison of two rows given as {seed: drop}; only seeds both have count. ``wilcoxon`` adds
    the signed-rank p beside the exact one (a board skips it: scipy's is slow for hundreds of pairs)."""
    seeds = tuple(sorted(set(a) & set(b)))
    if not seeds:
        raise ValueError("the two rows share no seed")
    xa = tuple(float(a[s]) for s in seeds)
    xb = tuple(float(b[s]) for s in seeds)
    d = np.array(xa) - np.array(xb)
    n, mean = len(d), float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    low = high = math.nan
    if n > 1:
        half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)
        low, high = mean - half, mean + half
    return Paired(seeds, xa, xb, n, mean, low, high, sd, float(np.median(d)), hodges_lehmann(d), t_p(d),
                  sign_flip_p(d) if n <= EXACT_MAX_N else None,
                  wilcoxon_p(d) if wilcoxon or n > EXACT_MAX_N else None, seeds_needed(mean, sd))


def t_p(d: np.ndarray) -> float:
    n = len(d)
    if n < 2:
        return 1.0
    sd = float(d.std(ddof=1))
    mean = float(d.mean())
    if sd == 0:
        return 1.0 if mean == 0 else 0.0  # no spread: every seed moved by exactly the same amount
    t = mean / (sd / math.sqrt(n))
    return float(2 * stats.t.sf(abs(t), n - 1))


def sign_flip_p(d: np.ndarray) -> float:
    """Two-sided exact permutation p of the mean difference: under no difference every seed's sign is as
    likely flipped; p = the share of the 2^n sign patterns whose |sum| reaches the observed one."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    observed = abs(d.sum()) - 1e-9 * (1 + np.abs(d).sum())  # rounding must not drop the observed pattern
    bits = np.arange(n)
    hits = 0
    for start in range(0, 1 << n, _BLOCK):
        patterns = np.arange(start, min(start + _BLOCK, 1 << n))
        signs = 1 - 2 * ((patterns[:, None] >> bits) & 1)
        hits += int((np.abs(signs @ d) >= observed).sum())
    return hits / (1 << n)


def wilcoxon_p(d: np.ndarray) -> float:
    d = np.asarray(d, dtype=float)
    if len(d) == 0 or not np.any(d):
        return 1.0  # no nonzero difference: nothing to rank
    return float(stats.wilcoxon(d, zero_method="zsplit", alternative="two-sided").pvalue)


def hodges_lehmann(d: np.ndarray) -> float:
    """The median of the Walsh averages (d_i + d_j) / 2, i <= j: a robust centre of the differences."""
    d = np.asarray(d, dtype=float)
    i, j = np.triu_indices(len(d))
    return float(np.median((d[i] + d[j]) / 2))


def seeds_needed(mean: float, sd: float) -> int | None:
    """How many seeds a 95% t-interval needs to exclude 0 if the mean difference and its spread stayed as
    observed: the smallest n with t_{n-1} * sd / sqrt(n) < |mean|. None when the mean is 0 or there is no
    spread estimate; MAX_SEEDS_NEEDED + 1 means "more than MAX_SEEDS_NEEDED"."""
    if mean == 0 or math.isnan(sd):
        return None
    if sd == 0:
        return 2
    n = _NS[np.nonzero(_T_OVER_ROOT_N * sd < abs(mean))[0]]
    return int(n[0]) if len(n) else MAX_SEEDS_NEEDED + 1


_NS = np.arange(2, MAX_SEEDS_NEEDED + 1)
_T_OVER_ROOT_N = stats.t.ppf(0.5 + CONFIDENCE / 2, _NS - 1) / np.sqrt(_NS)  # decreasing in n


def seeds_text(n: int | None) -> str:
    if n is None:
        return "-"
    return f"> {MAX_SEEDS_NEEDED}" if n > MAX_SEEDS_NEEDED else str(n)


def seeds_for_exact(comparisons: int, alpha: float = ALPHA) -> int:
    """The fewest seeds at which the exact sign-flip test can pass Holm's first threshold alpha / m at all
    (its smallest two-sided p is 2 / 2^n)."""
    n = 1
    while 2 / 2 ** n >= alpha / max(comparisons, 1):
        n += 1
    return n


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error under any dependence between the tests)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def bootstrap_ranks(rows: Sequence[Mapping[int, float]], resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED,
                    level: float = CONFIDENCE) -> list[tuple[int, int]]:
    """A rank interval per row (rank 1 = the largest mean drop) from resampling seeds jointly across the rows,
    so each resample keeps the pairing. A row lacking some resampled seeds averages the ones it has (its full
    mean when it has none of them). Ties share the better rank."""
    seeds = sorted(set().union(*rows)) if rows else []
    if not rows:
        return []
    values = np.array([[r.get(s, np.nan) for s in seeds] for r in rows], dtype=float)
    full = np.nanmean(values, axis=1)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(seeds), size=(resamples, len(seeds)))
    sampled = values[:, picks]  # rows x resamples x seeds
    counts = (~np.isnan(sampled)).sum(axis=2)
    sums = np.nansum(sampled, axis=2)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), full[:, None])
    ranks = stats.rankdata(-means, axis=0, method="min")  # per resample
    tail = (1 - level) / 2
    low = np.quantile(ranks, tail, axis=1, method="lower")
    high = np.quantile(ranks, 1 - tail, axis=1, method="higher")
    return [(int(lo), int(hi)) for lo, hi in zip(low, high)]
