"""What a board can claim: every pair's paired comparison (bench.report.paired) with Holm's correction over
the pairs the board shows, and per row a bootstrap rank interval, "Rank (UB)" (1 + the rows statistically
better), letter groups, whether its own interval excludes 0 and whether it differs from the reference.

Pure functions over per-seed drops ({seed: drop} per row, rows in board order: largest mean drop first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from string import ascii_lowercase
from typing import Mapping, Sequence

from bench.report.paired import (ALPHA, BOOTSTRAP_SEED, MAX_SEEDS_NEEDED, RESAMPLES, Paired, bootstrap_ranks,
                                 decision_test, holm, paired, seeds_for_exact)
from bench.stats import summarize


@dataclass(frozen=True)
class PairVerdict:
    i: int  # indices into the board's rows; the difference is row i minus row j
    j: int
    paired: Paired
    p_holm: float  # Holm over every pair of the board
    separated: bool

    def as_dict(self) -> dict:
        return {**self.paired.as_dict(), "p_holm": self.p_holm, "separated": self.separated}


@dataclass(frozen=True)
class RowVerdict:
    rank_low: int  # bootstrap rank interval
    rank_high: int
    rank_ub: int  # 1 + the number of rows separated from this one and above it
    group: str  # letters: rows sharing a letter are not separated
    excludes_zero: bool  # its own 95% t-interval of the drop lies wholly above or below 0 (not corrected)
    vs_reference: Paired | None = None  # this row minus the reference (None on the reference itself)
    reference_p_holm: float | None = None  # Holm over the rows compared with the reference
    differs_from_reference: bool = False

    def as_dict(self) -> dict:
        ref = None
        if self.vs_reference is not None:
            ref = {**self.vs_reference.as_dict(), "p_holm": self.reference_p_holm,
                   "differs": self.differs_from_reference}
        return {"rank_interval": [self.rank_low, self.rank_high], "rank_ub": self.rank_ub, "group": self.group,
                "ci_excludes_zero": self.excludes_zero, "vs_reference": ref}


@dataclass
class BoardVerdicts:
    rows: list[RowVerdict]
    pairs: list[PairVerdict]
    n: int  # the most seeds any row has
    reference: int | None  # index of the reference row
    resamples: int = RESAMPLES
    alpha: float = ALPHA
    adjacent_seeds_needed: list[int] = field(default_factory=list)  # per adjacent pair with a nonzero mean

    @property
    def comparisons(self) -> int:
        return len(self.pairs)

    @property
    def separated(self) -> int:
        return sum(p.separated for p in self.pairs)

    @property
    def test(self) -> str:
        return decision_test(self.n)

    @property
    def seeds_for_exact(self) -> int:
        return seeds_for_exact(self.comparisons, self.alpha)

    def pair(self, i: int, j: int) -> PairVerdict | None:
        return next((p for p in self.pairs if {p.i, p.j} == {i, j}), None)

    def as_dict(self) -> dict:
        return {"test": self.test, "alpha": self.alpha, "correction": "Holm over the pairs shown",
                "comparisons": self.comparisons, "separated": self.separated,
                "bootstrap": {"resamples": self.resamples, "resampled": "seeds, jointly across rows",
                              "seed": BOOTSTRAP_SEED, "interval": "95% percentile"},
                "seeds_for_exact_test": self.seeds_for_exact, "seeds_needed_cap": MAX_SEEDS_NEEDED,
                "adjacent_seeds_needed": self.adjacent_seeds_needed}


def board_verdicts(drops: Sequence[Mapping[int, float]], reference: int | None = None,
                   alpha: float = ALPHA) -> BoardVerdicts:
    """Verdicts for rows given in board order (largest mean drop first)."""
    k = len(drops)
    raw = [(i, j, paired(drops[i], drops[j])) for i, j in combinations(range(k), 2)
           if set(drops[i]) & set(drops[j])]
    adjusted = holm([p.p for _, _, p in raw])
    pairs = [PairVerdict(i, j, p, q, q < alpha) for (i, j, p), q in zip(raw, adjusted)]
    separated = {(p.i, p.j) for p in pairs if p.separated}

    ranks = bootstrap_ranks(drops)
    better = [sum(1 for p in pairs if p.separated and
                  ((p.j == r and p.paired.mean > 0) or (p.i == r and p.paired.mean < 0))) for r in range(k)]
    groups = letter_groups(k, separated)

    vs_ref: dict[int, Paired] = {}
    ref_holm: dict[int, float] = {}
    if reference is not None:
        for r in range(k):
            if r != reference and set(drops[r]) & set(drops[reference]):
                vs_ref[r] = paired(drops[r], drops[reference])
        order = sorted(vs_ref)
        ref_holm = dict(zip(order, holm([vs_ref[r].p for r in order])))
    rows = []
    for r in range(k):
        s = summarize(list(drops[r].values()))
        excludes = not math.isnan(s.low) and (s.low > 0 or s.high < 0)
        rows.append(RowVerdict(ranks[r][0], ranks[r][1], 1 + better[r], groups[r], excludes, vs_ref.get(r),
                               ref_holm.get(r), r in ref_holm and ref_holm[r] < alpha))
    adjacent = []
    for r in range(k - 1):
        p = next((v for v in pairs if (v.i, v.j) == (r, r + 1)), None)
        if p is not None and p.paired.seeds_needed is not None:
            adjacent.append(p.paired.seeds_needed)
    n = max((len(d) for d in drops), default=0)
    return BoardVerdicts(rows, pairs, n, reference, alpha=alpha, adjacent_seeds_needed=adjacent)


def letter_groups(k: int, separated: set[tuple[int, int]]) -> list[str]:
    """Letters for rows in board order: each letter is a maximal run of adjacent rows among which no pair is
    separated, so rows that share a letter cannot be told apart (a row may carry several letters)."""
    runs = []
    last_end = -1
    for start in range(k):
        end = start
        while end + 1 < k and all((m, end + 1) not in separated for m in range(start, end + 1)):
            end += 1
        if end > last_end:  # a run inside the previous one adds nothing
            runs.append((start, end))
            last_end = end
    names = [_letter(i) for i in range(len(runs))]
    return ["".join(name for name, (s, e) in zip(names, runs) if s <= r <= e) for r in range(k)]


def _letter(i: int) -> str:
    return ascii_lowercase[i] if i < 26 else _letter(i // 26 - 1) + ascii_lowercase[i % 26]
