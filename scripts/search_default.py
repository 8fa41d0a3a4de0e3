"""A validation-only search for a preset's lens, run from a committed rule file (issues 11, 21 and 22).

The rule file (format: docs/default-preset.md, "How the next search runs"; an example:
docs/search/rule.example.toml) names the preset, the candidates (overrides of the preset's experiment), the
search seeds, the fused group size, the level reported, the bars and the stability criterion. For every
candidate and seed this trains the dense trunk, the preset's IMP chain (rewound to k), the reference chain
(IMP rewound to iteration 0, its own masks) and ``reinit`` at the level, with the test split NEVER evaluated
(``RunOptions.evaluate_test=False``: no stage computes or stores a test accuracy). Every row (candidate,
seed, validation accuracies, group size, code commit and git_dirty) is written to ``--out`` as JSON lines;
then ``bench.search_rule.choose`` applies the rule and a table is printed.

    python scripts/search_default.py docs/search/rule.toml --out search.jsonl --cache /tmp/search
    python scripts/search_default.py docs/search/rule.toml --dry-run          # the plan, nothing trained
    python scripts/search_default.py docs/search/rule.toml --rows search.jsonl  # the rule on recorded rows
    python scripts/search_default.py RULE --dense-only --out survey.jsonl  # dense trunks only: collapses counted

``--dense-only`` trains each candidate's dense trunk alone (an eighth of a search's cost per seed), to count
collapsed dense seeds on many seeds under the rule's criterion; it describes, it chooses nothing.

Candidates are overrides of the preset as it is in the code that runs them, so a search is reproduced at the
commit its rows record (``git_commit``) once the preset has moved on: rows already recorded beside the rule
file (``*.jsonl`` in its folder, same rule sha256) whose config hash today's code no longer gives make the
script refuse to train and name that commit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from bench.config import Experiment, config_hash
from bench.errors import BenchError
from bench.execute import Env
from bench.experiments.parallel import train_groups_side_by_side
from bench.experiments.setup import RunOptions, prepare
from bench.plugins import default_plugins
from bench.presets import get_preset
from bench.provenance import code_version
from bench.search_rule import Rule, choose, collapsed_seeds, load_rule
from bench.stages import Replicate, execute, train_chain


def apply_overrides(exp: Experiment, overrides: dict) -> Experiment:
    """``{"train.lr": 0.2, "rewind": "32it", "model.widths": [8, 16]}`` applied to ``exp``."""
    for key, value in overrides.items():
        value = tuple(value) if isinstance(value, list) else value
        if key == "rewind":
            exp = replace(exp, rewind=str(value))
        else:
            section, name = key.split(".")
            exp = exp.with_overrides(**{section: {name: value}})
    return exp


def experiment_of(rule: Rule, overrides: dict) -> Experiment:
    exp = apply_overrides(get_preset(rule.preset).experiment, overrides)
    return replace(exp, prune=replace(exp.prune, levels=rule.level))


def moved_since_recorded(rule: Rule, rule_file: Path, rule_sha: str) -> str | None:
    """Why today's code cannot reproduce the rows recorded for this rule beside it (None when it can): a
    candidate whose config hash today differs from the one its recorded rows carry (the preset moved on)."""
    now = {c.name: config_hash(experiment_of(rule, c.overrides)) for c in rule.candidates}
    for rows_file in sorted(rule_file.parent.glob("*.jsonl")):
        for line in rows_file.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            if row.get("rule_sha256") == rule_sha and now.get(row.get("candidate"), row.get("config_hash")) != \
                    row.get("config_hash"):
                commit = row.get("git_commit", "?")[:7]
                return (f"{rows_file.name} records candidate {row['candidate']} as config {row['config_hash']} "
                        f"but today's code gives {now[row['candidate']]} (the preset has moved since): "
                        f"reproduce this search at commit {commit} (git worktree add /tmp/search-{commit} {commit}, "
                        "then run this command there)")
    return None


def search(rule: Rule, rule_sha: str, cache: Path, out: Path, workers: int = 1,
           dense_only: bool = False) -> list[dict]:
    """Train every candidate on the rule's seeds (test split never evaluated) and append its rows to ``out``.

    ``workers`` > 1 trains that many seed groups at once, one process each; the groups are the same
    (``group_size`` consecutive seeds), so the numbers are those of ``workers`` = 1."""
    version = code_version()
    reinit = default_plugins().perturbation("reinit")
    rows = []
    for cand in rule.candidates:
        exp = experiment_of(rule, cand.overrides)
        options = RunOptions(cache=cache, group_size=rule.group_size, workers=workers, evaluate_test=False)
        setup = prepare(get_preset(rule.preset), options, seeds=rule.seeds, level=rule.level, experiment=exp,
                        writes_results=False)
        env = setup.env
        if env.data.x_val is None:
            raise BenchError(f"candidate {cand.name}: the search needs a validation split "
                             "(data.validation_examples > 0)")
        t0 = time.perf_counter()

        def train(group: list[int], on: Env) -> None:  # a seed group's stages; cached stages are read, not trained
            mine = [Replicate(exp, seed, on) for seed in group]
            if dense_only:
                execute([rep.trunk_job() for rep in mine], on)
                return
            train_chain(mine, rule.level, on)
            train_chain(mine, rule.level, on, rewind=0)
            execute([rep.branch_job(reinit, {}, rule.level, 0) for rep in mine], on)

        train_groups_side_by_side(train, setup.seeds, env, workers)  # in processes, when workers > 1
        train(setup.seeds, env)  # trains whatever the workers did not (everything when workers = 1)
        reps = [Replicate(exp, seed, env) for seed in setup.seeds]
        seconds = time.perf_counter() - t0
        for rep in reps:
            trunk = rep.trunk_record()
            row = {"candidate": cand.name, "overrides": cand.overrides, "config_hash": config_hash(exp),
                   "seed": rep.seed, "group_size": rule.group_size, "trained_with_seeds": trunk["trained_with_seeds"],
                   "dense": trunk["val_accuracy"]}
            if not dense_only:
                ticket = rep.record(rule.level)
                row |= {"level": rule.level, "percent_remaining": round(100 * ticket["sparsity"]["density"], 2),
                        "trained_with_seeds": ticket["trained_with_seeds"], "ticket": ticket["val_accuracy"],
                        "imp-rewind-0": rep.record(rule.level, rewind=0)["val_accuracy"],
                        "reinit": rep.branch_record("reinit", {}, rule.level, 0)["val_accuracy"]}
            row |= {"split": "validation", "test_evaluated": False, "seconds": round(seconds, 1),
                    "rule_sha256": rule_sha, **version}
            rows.append(row)
            print(json.dumps(row), flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in rows if r["candidate"] == cand.name))
    return rows


def print_choice(rule: Rule, rows: list[dict]) -> str:
    best, table, why = choose(rule, rows)
    print(f"{'candidate':<16} {'n':>3} {'dense':>7} {'ticket':>7} {'d-t':>6} {'t-ref [95% CI]':>24} "
          f"{'ref-reinit [95% CI]':>24}  stable  bars (miss)")
    for name, a in table.items():
        ci = "{:6.2f} [{:6.2f}, {:6.2f}]"
        misses = ", ".join(f"{k} {v:.2f}" for k, v in a["misses"].items() if v > 0) or "met"
        print(f"{name:<16} {a['n']:>3} {a['dense']:7.2f} {a['ticket']:7.2f} {a['dense_minus_ticket']:6.2f} "
              f"{ci.format(a['ticket_minus_ref'], *a['ticket_minus_ref_ci']):>24} "
              f"{ci.format(a['ref_minus_reinit'], *a['ref_minus_reinit_ci']):>24}  "
              f"{'yes' if a['stable'] else 'NO':<6}  {misses}" + (f"  ({'; '.join(a['unstable'])})"
                                                                   if a["unstable"] else ""))
    print(json.dumps({"CHOICE": best, "why": why, "assessment": table[best]}))
    return best


def print_survey(rule: Rule, rows: list[dict]) -> dict[str, dict]:
    """Dense-only rows: per candidate, the spread of dense validation accuracy and its collapsed seeds (the
    rule's criterion). Describes; chooses nothing."""
    st, summary = rule.stability, {}
    print(f"{'candidate':<16} {'n':>3} {'mean':>6} {'median':>6} {'worst (seed)':>15} {'below':>6}  collapsed")
    for cand in rule.candidates:
        mine = sorted((r for r in rows if r["candidate"] == cand.name), key=lambda r: r["seed"])
        if not mine:
            continue
        dense = [r["dense"] for r in mine]
        by_seed = {r["seed"]: r["dense"] for r in mine}
        median, worst = statistics.median(dense), min(range(len(mine)), key=lambda i: dense[i])
        fell = {seed: by_seed[seed] for seed in collapsed_seeds(mine, st)}
        summary[cand.name] = {"n": len(mine), "median": median, "worst": dense[worst],
                              "worst_seed": mine[worst]["seed"], "collapsed": fell}
        print(f"{cand.name:<16} {len(mine):>3} {statistics.fmean(dense):6.2f} {median:6.2f} "
              f"{dense[worst]:7.2f} ({mine[worst]['seed']}) {median - dense[worst]:6.2f}  {len(fell)}"
              + ("  (" + ", ".join(f"seed {k}: {v:.2f}" for k, v in fell.items()) + ")" if fell else ""))
    names = list(summary)
    for name in names[1:]:  # paired by seed against the first candidate (same W_0, same data order)
        summary[name]["vs_first"] = paired_to(rows, name, names[0], summary)
        v = summary[name]["vs_first"]
        print(f"{name} minus {names[0]}: dense {v['mean']:+.2f} [{v['low']:+.2f}, {v['high']:+.2f}], median "
              f"{v['median']:+.2f}, Wilcoxon p {v['p_wilcoxon']:.2g}; collapsed in one only: {v['only_first']} "
              f"({names[0]}) vs {v['only_this']} (this), exact McNemar p {v['p_mcnemar']:.2g}")
    print(json.dumps({"SURVEY": summary}))
    return summary


def paired_to(rows: list[dict], name: str, first: str, summary: dict[str, dict]) -> dict:
    """Dense accuracy of ``name`` minus ``first`` over their common seeds, and the seeds that collapsed under
    one of the two only (an exact McNemar test: are collapses rarer under one?)."""
    from scipy.stats import binomtest

    from bench.report.paired import paired

    mine, base = ({r["seed"]: r["dense"] for r in rows if r["candidate"] == c} for c in (name, first))
    d = paired(mine, base, wilcoxon=True)
    common = set(d.seeds)
    fell_first = set(summary[first]["collapsed"]) & common
    fell_this = set(summary[name]["collapsed"]) & common
    only_first, only_this = len(fell_first - fell_this), len(fell_this - fell_first)
    p = binomtest(min(only_first, only_this), only_first + only_this, 0.5).pvalue if only_first + only_this else 1.0
    return {"n": d.n, "mean": d.mean, "low": d.low, "high": d.high, "median": d.median,
            "p_wilcoxon": float(d.p_wilcoxon), "only_first": only_first, "only_this": only_this,
            "p_mcnemar": float(p)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rule", type=Path, help="the committed rule file, e.g. docs/search/rule.toml")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/search"))
    ap.add_argument("--out", type=Path, default=None, help="a new JSONL file the rows are written to")
    ap.add_argument("--workers", type=int, default=1,
                    help="seed groups trained at once, one process each (CPU); never moves a number")
    ap.add_argument("--dry-run", action="store_true", help="print the plan, train nothing")
    ap.add_argument("--rows", type=Path, default=None, help="apply the rule to rows recorded earlier; train nothing")
    ap.add_argument("--dense-only", action="store_true",
                    help="train the dense trunks only and count collapsed seeds (describes, chooses nothing)")
    args = ap.parse_args(argv)
    try:
        rule = load_rule(args.rule)
        rule_sha = hashlib.sha256(args.rule.read_bytes()).hexdigest()
        preset = get_preset(rule.preset)
        overlap = sorted(set(rule.seeds) & set(range(preset.seeds)))
        if overlap:
            raise BenchError(f"search seeds {overlap} are default seeds of preset {rule.preset} "
                             f"(0..{preset.seeds - 1}): search on other seeds.")
        if rule.level < 1:
            raise BenchError("level must be 1 or more: the reference chain (imp-rewind-0) starts at level 1.")
        for cand in rule.candidates:
            experiment_of(rule, cand.overrides)  # a bad override fails before anything trains
        if args.dry_run:
            runs = 1 if args.dense_only else 2 + 2 * rule.level  # dense trunk, two chains of `level` stages, reinit
            print(f"rule {args.rule} (sha256 {rule_sha[:12]}): preset {rule.preset}, level {rule.level}, "
                  f"seeds {rule.seeds}, fused groups of {rule.group_size}, test split never evaluated")
            for cand in rule.candidates:
                exp = experiment_of(rule, cand.overrides)
                print(f"  {cand.name:<16} {config_hash(exp)}  {json.dumps(cand.overrides)}")
            print(f"{len(rule.candidates)} candidates x {len(rule.seeds)} seeds x {runs} training runs = "
                  f"{len(rule.candidates) * len(rule.seeds) * runs} runs")
            return 0
        moved = moved_since_recorded(rule, args.rule, rule_sha)
        if args.rows is not None:
            rows = [json.loads(line) for line in args.rows.read_text().splitlines() if line.strip()]
            if moved:  # the rule applies to recorded rows all the same; say why training them again differs
                print(f"note: {moved}.")
        else:
            if moved:
                raise BenchError(f"{moved}.")
            if args.out is None:
                raise BenchError("give --out FILE: every row of the search is recorded there.")
            if args.out.exists() and args.out.stat().st_size:
                raise BenchError(f"{args.out} already holds rows: give a new --out file (--rows {args.out} "
                                 "applies the rule to the rows it holds).")
            rows = search(rule, rule_sha, args.cache, args.out, args.workers, args.dense_only)
        if args.dense_only or (rows and "ticket" not in rows[0]):
            print_survey(rule, rows)
        else:
            print_choice(rule, rows)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
