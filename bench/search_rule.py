"""The selection rule of a validation-only search (scripts/search_default.py), read from a committed TOML file.

A rule file names the preset, the candidate grid (preset overrides per candidate), the search seeds (never the
preset's default seeds), the fused group size, the level reported, the bars and the stability criterion; its
format is in docs/default-preset.md ("How the next search runs"). :func:`choose` applies it to the per-seed
validation rows the search writes, so the choice is made by code, not by hand.
"""

from __future__ import annotations

import json
import statistics
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.stats import summarize

CONTROLS = ("imp-rewind-0", "reinit")  # whose per-seed drops (ticket minus control) the dominance check reads


@dataclass(frozen=True)
class Candidate:
    name: str
    overrides: dict[str, Any]  # "section.field" (or "rewind") -> value, applied to the preset's experiment


@dataclass(frozen=True)
class Rule:
    preset: str
    seeds: list[int]
    group_size: int
    level: int
    candidates: list[Candidate]
    bars: dict[str, float] = field(default_factory=dict)
    stability: dict[str, float] = field(default_factory=dict)
    # committed dense-only survey rows (scripts/search_default.py --dense-only): a candidate whose config has a
    # collapsed dense seed there is unstable too, since a search's few seeds cannot see a rare collapse
    surveys: list[dict] = field(default_factory=list)
    # how stable candidates that miss a bar are ranked: "lower-bound" (the reference bound alone, the second to
    # fifth searches) or "smallest-miss" (the least summed miss first, so a small miss on one bar is not traded
    # for a large one on another; the lower bound breaks ties)
    fallback: str = "lower-bound"


_BARS = ("ticket_within", "reference_below", "reinit_below")
_STABILITY = ("collapse_points", "collapse_robust_sds", "max_drop_share")
FALLBACKS = ("lower-bound", "smallest-miss")


def load_rule(path: Path) -> Rule:
    """The rule in ``path``; a clear BenchError for a missing or malformed file."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BenchError(f"No rule file {path}: copy docs/search/rule.example.toml and commit it first.") from None
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{path} is not valid TOML: {exc}") from None
    missing = [k for k in ("preset", "seeds", "group_size", "level", "bars", "stability", "candidate")
               if k not in data]
    if missing:
        raise BenchError(f"{path} lacks {', '.join(missing)}: see docs/default-preset.md, 'How the next search runs'.")
    for section, keys in (("bars", _BARS), ("stability", _STABILITY)):
        absent = [k for k in keys if k not in data[section]]
        if absent:
            raise BenchError(f"{path}: [{section}] lacks {', '.join(absent)}.")
    seeds = data["seeds"]
    if not (isinstance(seeds, list) and len(seeds) >= 2 and all(isinstance(s, int) and s >= 0 for s in seeds)
            and len(set(seeds)) == len(seeds)):
        raise BenchError(f"{path}: seeds must be a list of at least 2 distinct seeds >= 0, got {seeds!r}.")
    names = [c.get("name") for c in data["candidate"]]
    if not names or any(not isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise BenchError(f"{path}: every [[candidate]] needs a unique name.")
    fallback = data.get("fallback", "lower-bound")
    if fallback not in FALLBACKS:
        raise BenchError(f"{path}: fallback must be one of {', '.join(FALLBACKS)}, got {fallback!r}.")
    surveys = []
    for name in data["stability"].get("surveys", []):  # paths relative to the rule file
        try:
            text = (Path(path).parent / name).read_text()
        except FileNotFoundError:
            raise BenchError(f"{path}: [stability] surveys names {name}, which is not beside it.") from None
        surveys += [json.loads(line) for line in text.splitlines() if line.strip()]
    return Rule(preset=data["preset"], seeds=seeds, group_size=int(data["group_size"]), level=int(data["level"]),
                candidates=[Candidate(c["name"], dict(c.get("set", {}))) for c in data["candidate"]],
                bars={k: float(data["bars"][k]) for k in _BARS},
                stability={k: float(data["stability"][k]) for k in _STABILITY}, surveys=surveys,
                fallback=fallback)


def collapsed_seeds(rows: list[dict], stability: dict[str, float], key: str = "dense") -> list[int]:
    """The seeds of ``rows`` (one candidate's) whose ``key`` accuracy collapsed under the rule's criterion."""
    return [rows[i]["seed"] for i in collapsed([r[key] for r in rows], stability["collapse_points"],
                                               stability["collapse_robust_sds"])]


def survey_collapses(rule: Rule, config: str) -> list[int]:
    """The seeds whose dense network collapsed in the rule's surveys under ``config`` (a config hash), judged
    among that survey candidate's own seeds by the rule's criterion."""
    by_candidate: dict[tuple[str, str], list[dict]] = {}
    for row in rule.surveys:
        if row["config_hash"] == config:
            by_candidate.setdefault((row.get("rule_sha256", ""), row["candidate"]), []).append(row)
    return sorted(seed for rows in by_candidate.values()
                  for seed in collapsed_seeds(sorted(rows, key=lambda r: r["seed"]), rule.stability))


def collapsed(values: list[float], points: float, robust_sds: float) -> list[int]:
    """Indices of the values that collapsed: more than ``points`` below the median AND more than ``robust_sds``
    robust SDs (1.4826 x the median absolute deviation) below it; with a zero MAD the points alone decide."""
    median = statistics.median(values)
    sd = 1.4826 * statistics.median([abs(v - median) for v in values])
    return [i for i, v in enumerate(values) if median - v > points and (sd == 0 or median - v > robust_sds * sd)]


def drop_share(drops: list[float]) -> float:
    """The largest seed's share of the summed absolute drops (1/n: even; 1: one seed carries all)."""
    total = sum(abs(d) for d in drops)
    return max(abs(d) for d in drops) / total if total > 0 else 0.0


def assess(rule: Rule, rows: list[dict]) -> dict[str, Any]:
    """One candidate's per-seed rows (validation accuracies) against the rule: statistics, stability, bars."""
    st, bars = rule.stability, rule.bars
    gap = summarize([r["dense"] - r["ticket"] for r in rows])
    ref = summarize([r["ticket"] - r["imp-rewind-0"] for r in rows])
    rein = summarize([r["imp-rewind-0"] - r["reinit"] for r in rows])
    unstable = []
    for key in ("dense", "ticket"):
        unstable += [f"{key} of seed {seed} collapsed" for seed in collapsed_seeds(rows, st, key)]
    fell = survey_collapses(rule, rows[0]["config_hash"]) if rule.surveys else []
    if fell:
        unstable.append(f"dense collapsed in the survey on {len(fell)} seed{'s' * (len(fell) > 1)} "
                        f"({', '.join(map(str, fell))})")
    for control in CONTROLS:
        share = drop_share([r["ticket"] - r[control] for r in rows])
        if share > st["max_drop_share"]:
            unstable.append(f"{control}'s drops dominated by one seed ({share:.2f} of the sum)")
    # how far each bar is missed (0: met); an interval bar also needs its lower bound above 0
    misses = {"ticket": max(0.0, gap.mean - bars["ticket_within"]),
              "reference": max(0.0, bars["reference_below"] - ref.mean, -ref.low),
              "reinit": max(0.0, bars["reinit_below"] - rein.mean, -rein.low)}
    return {"n": len(rows), "dense": summarize([r["dense"] for r in rows]).mean,
            "ticket": summarize([r["ticket"] for r in rows]).mean, "dense_minus_ticket": gap.mean,
            "ticket_minus_ref": ref.mean, "ticket_minus_ref_ci": [ref.low, ref.high],
            "ref_minus_reinit": rein.mean, "ref_minus_reinit_ci": [rein.low, rein.high],
            "stable": not unstable, "unstable": unstable, "misses": misses,
            "meets_bars": all(m == 0 for m in misses.values())}


def choose(rule: Rule, rows: list[dict]) -> tuple[str, dict[str, dict[str, Any]], str]:
    """(chosen candidate, assessment per candidate, why). The candidate with the largest paired lower bound of
    ticket minus reference among the stable ones meeting the bars; if none does, the best stable one (its
    misses reported) by the rule's ``fallback``: the largest lower bound, or the smallest summed miss; if none
    is stable, the largest lower bound overall."""
    table = {}
    for cand in rule.candidates:
        mine = sorted((r for r in rows if r["candidate"] == cand.name), key=lambda r: r["seed"])
        if mine:
            table[cand.name] = assess(rule, mine)
    if not table:
        raise BenchError("No search rows to choose from.")

    def bound(n):  # the paired 95% lower bound of ticket minus reference
        return table[n]["ticket_minus_ref_ci"][0]

    def least_miss(n):  # the smallest summed miss first, the bound breaking ties
        return -sum(table[n]["misses"].values()), bound(n)

    missed, missed_rank = (("none meets the bars: the stable one missing them least", least_miss)
                           if rule.fallback == "smallest-miss" else ("none meets the bars: the best stable one", bound))
    stable = [n for n, a in table.items() if a["stable"]]
    pools = [("stable and meets the bars", [n for n in stable if table[n]["meets_bars"]], bound),
             (missed, stable, missed_rank),
             ("none is stable: the best one", list(table), bound)]
    why, pool, rank = next(p for p in pools if p[1])
    return max(pool, key=rank), table, why
