"""A validation-only search (issues 21 and 22): no stage evaluates the test split, its stages never reach a
normal run, and the search script applies a committed rule file itself."""

import importlib.util
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bench import paths
from bench.cache import record_problem
from bench.errors import BenchError
from bench.experiments.setup import RunOptions, prepare
from bench.plugins import default_plugins
from bench.presets import get_preset
from bench.search_rule import Candidate, Rule, choose, collapsed, drop_share, load_rule
from bench.stages import Replicate, execute, train_chain

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "search" / "rule.example.toml"
SEEDS = [0, 1]


def _script():
    spec = importlib.util.spec_from_file_location("search_default", ROOT / "scripts" / "search_default.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(cache: Path, data_dir: Path, evaluate_test: bool) -> dict[str, dict]:
    """Dense trunk, IMP level 1, the level-1 reference chain and reinit for seeds 0 and 1 (one fused group)."""
    preset = get_preset("smoke")
    options = RunOptions(cache=cache, data_dir=data_dir, group_size=2, evaluate_test=evaluate_test)
    env = prepare(preset, options, seeds=SEEDS, level=1, writes_results=evaluate_test).env
    reps = [Replicate(preset.experiment, seed, env) for seed in SEEDS]
    train_chain(reps, 1, env)
    train_chain(reps, 1, env, rewind=0)
    reinit = default_plugins().perturbation("reinit")
    execute([rep.branch_job(reinit, {}, 1, 0) for rep in reps], env)
    out = {}
    for rep in reps:
        out |= {f"trunk {rep.seed}": rep.trunk_record(), f"ticket {rep.seed}": rep.record(1),
                f"reference {rep.seed}": rep.record(1, rewind=0),
                f"reinit {rep.seed}": rep.branch_record("reinit", {}, 1, 0)}
    return out


def _numbers(records: dict[str, dict]) -> dict[str, tuple]:
    return {k: (r["accuracy"], r["val_accuracy"], r.get("drop")) for k, r in records.items()}


def test_validation_only_stores_no_test_accuracy_and_leaves_normal_numbers_exact(tmp_path, data_dir):
    fresh = _numbers(_run(tmp_path / "fresh", data_dir, evaluate_test=True))
    shared = tmp_path / "shared"
    search = _run(shared, data_dir, evaluate_test=False)
    for key, record in search.items():
        assert record["accuracy"] is None and record["test_evaluated"] is False and record.get("drop") is None
        assert record["val_accuracy"] == fresh[key][1]  # the same training: the same validation number
    records = list(shared.rglob("done.json"))
    assert records and all(paths.validation_only_dir(shared) in r.parents for r in records)
    for file in records:
        record = json.loads(file.read_text())
        assert record["accuracy"] is None and record.get("ticket_accuracy") is None and record_problem(record) is None
    test_values = {a for a, val, _ in fresh.values()} - {val for _, val, _ in fresh.values()}
    text = "".join(f.read_text() for f in shared.rglob("*.json"))
    assert test_values and not any(json.dumps(v) in text for v in test_values)
    # a normal run on the same cache afterwards: exactly the numbers of a fresh cache
    assert _numbers(_run(shared, data_dir, evaluate_test=True)) == fresh


def test_a_validation_only_stage_is_retrained_not_read_by_a_normal_run(tmp_path, data_dir):
    fresh = _numbers(_run(tmp_path / "fresh", data_dir, evaluate_test=True))
    _run(tmp_path / "search", data_dir, evaluate_test=False)
    moved = tmp_path / "moved"  # its stages copied where a normal run looks: each is retrained in its group
    shutil.copytree(paths.validation_only_dir(tmp_path / "search"), moved)
    with pytest.warns(UserWarning, match="trained without test evaluation"):
        assert _numbers(_run(moved, data_dir, evaluate_test=True)) == fresh


def test_results_are_refused_without_test_evaluation(tmp_path, data_dir):
    options = RunOptions(cache=tmp_path, data_dir=data_dir, evaluate_test=False)
    with pytest.raises(BenchError, match="results and the leaderboard need test accuracy"):
        prepare(get_preset("smoke"), options, seeds=1)


def test_record_checks_of_validation_only_stages():
    base = {"stage": "trunk", "seconds": 1.0, "accuracy": None, "val_accuracy": 50.0, "test_evaluated": False}
    assert record_problem(base) is None
    assert "carries a test accuracy" in record_problem(base | {"accuracy": 60.0})
    assert "val_accuracy" in record_problem(base | {"val_accuracy": None})
    assert record_problem(base | {"test_evaluated": True}) == "no numeric 'accuracy'"
    assert "not false" in record_problem(base | {"accuracy": 60.0, "test_evaluated": "no"})
    branch = base | {"stage": "branch", "ticket_accuracy": None, "generator_seed": 1, "effective_std": 1.0,
                     "relative_change": 1.0}
    assert record_problem(branch) is None


def _rule(**stability) -> Rule:
    return Rule("smoke", [1000, 1001, 1002, 1003], 4, 1, [Candidate(n, {}) for n in "abc"],
                bars={"ticket_within": 1.5, "reference_below": 1.5, "reinit_below": 2.0},
                stability={"collapse_points": 10.0, "collapse_robust_sds": 4.0, "max_drop_share": 0.6} | stability)


def _rows(name: str, dense: list[float], ticket: list[float], ref: list[float], reinit: list[float]) -> list[dict]:
    return [{"candidate": name, "seed": 1000 + i, "dense": d, "ticket": t, "imp-rewind-0": r, "reinit": x}
            for i, (d, t, r, x) in enumerate(zip(dense, ticket, ref, reinit))]


def test_the_rule_picks_the_largest_lower_bound_among_stable_candidates_meeting_the_bars():
    rows = (_rows("a", [90, 91, 90, 91], [90, 90.5, 90, 90.5], [87, 87.5, 87.2, 87.4], [80, 81, 80, 81])
            # b: a larger gap, but seed 1003's ticket collapses
            + _rows("b", [90, 91, 90, 91], [90, 90.5, 90, 60], [80, 80.5, 80, 50], [70, 71, 70, 40])
            # c: stable and meets the bars, a smaller lower bound than a
            + _rows("c", [90, 91, 90, 91], [90, 90.5, 90, 90.5], [88, 88.6, 88.2, 88.9], [80, 81, 80, 81]))
    best, table, why = choose(_rule(), rows)
    assert (best, why) == ("a", "stable and meets the bars")
    assert table["b"]["unstable"] == ["ticket of seed 1003 collapsed"] and table["c"]["meets_bars"]
    # none meets the bars: the best stable one, each miss reported
    low = [r | {"imp-rewind-0": r["ticket"] - 0.5} for r in rows if r["candidate"] != "b"]
    best, table, why = choose(_rule(), low)
    assert why == "none meets the bars: the best stable one"
    assert math.isclose(table[best]["misses"]["reference"], 1.0)


def test_the_smallest_miss_fallback_does_not_trade_a_small_miss_for_a_large_one():
    """fallback = "smallest-miss": with no candidate meeting the bars, the stable one whose summed miss is
    least wins, though another has the larger reference bound (which the default fallback prefers)."""
    # a: reference missed by 0.5 (mean 1.0), ticket met; b: reference met widely, ticket missed by 2.0
    rows = (_rows("a", [90, 91, 90, 91], [90, 91, 90, 91], [89, 90, 89, 90], [80, 81, 80, 81])
            + _rows("b", [90, 91, 90, 91], [86, 87, 87, 88], [80, 81, 80, 82], [70, 71, 70, 71]))
    rule = replace(_rule(), candidates=[Candidate(n, {}) for n in "ab"])
    assert choose(rule, rows)[0] == "b"
    best, table, why = choose(replace(rule, fallback="smallest-miss"), rows)
    assert (best, why) == ("a", "none meets the bars: the stable one missing them least")
    assert math.isclose(table["a"]["misses"]["reference"], 0.5)
    assert math.isclose(table["b"]["misses"]["ticket"], 2.0)


def test_a_rule_with_an_unknown_fallback_is_refused(tmp_path):
    bad = tmp_path / "rule.toml"
    bad.write_text(EXAMPLE.read_text().replace('preset = "smoke"', 'preset = "smoke"\nfallback = "best"'))
    with pytest.raises(BenchError, match="fallback must be one of lower-bound, smallest-miss"):
        load_rule(bad)
    assert load_rule(EXAMPLE).fallback == "lower-bound"


def test_a_committed_survey_makes_a_candidate_whose_dense_collapsed_there_unstable(tmp_path):
    """[stability] surveys: rows of a dense-only survey beside the rule file; a candidate whose config collapsed
    a dense seed there is unstable whatever the search's few seeds show; one absent from the survey is not."""
    survey = [{"candidate": "x", "config_hash": "aaa", "seed": 5000 + i, "dense": d, "rule_sha256": "s"}
              for i, d in enumerate([97.0, 97.2, 96.9, 97.1, 80.0, 97.3])]
    survey += [{"candidate": "y", "config_hash": "bbb", "seed": 5000 + i, "dense": 97.0 + 0.1 * (i % 3),
                "rule_sha256": "s"} for i in range(6)]
    (tmp_path / "survey.jsonl").write_text("".join(json.dumps(r) + "\n" for r in survey))
    text = EXAMPLE.read_text().replace("[stability]", '[stability]\nsurveys = ["survey.jsonl"]')
    (tmp_path / "rule.toml").write_text(text)
    assert len(load_rule(tmp_path / "rule.toml").surveys) == 12
    rule = replace(_rule(), surveys=load_rule(tmp_path / "rule.toml").surveys)
    good = [90, 91, 90, 91], [90, 90.5, 90, 90.5], [87, 87.5, 87.2, 87.4], [80, 81, 80, 81]
    rows = ([r | {"config_hash": "aaa"} for r in _rows("a", *good)]
            + [r | {"config_hash": "bbb"} for r in _rows("b", *good)]
            + [r | {"config_hash": "ccc"} for r in _rows("c", *good)])
    best, table, why = choose(rule, rows)
    assert table["a"]["unstable"] == ["dense collapsed in the survey on 1 seed (5004)"]
    assert table["b"]["stable"] and table["c"]["stable"] and best in ("b", "c")
    (tmp_path / "rule.toml").write_text(text.replace("survey.jsonl", "missing.jsonl"))
    with pytest.raises(BenchError, match="missing.jsonl"):
        load_rule(tmp_path / "rule.toml")


def test_stability_helpers():
    assert collapsed([95, 96, 94.5, 60], points=10, robust_sds=4) == [3]
    assert collapsed([95, 96, 94.5, 90], points=10, robust_sds=4) == []
    assert drop_share([1, 1, 1, 1]) == 0.25 and drop_share([0, 0, 0, 8]) == 1.0 and drop_share([0, 0]) == 0.0


def test_the_search_script_runs_the_example_rule_end_to_end_without_test_accuracy(tmp_path, capsys):
    script = _script()
    out = tmp_path / "rows.jsonl"
    assert script.main([str(EXAMPLE), "--dry-run"]) == 0
    assert "2 candidates x 2 seeds" in capsys.readouterr().out
    assert script.main([str(EXAMPLE), "--out", str(out), "--cache", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    rule = load_rule(EXAMPLE)
    assert [(r["candidate"], r["seed"]) for r in rows] == [(c.name, s) for c in rule.candidates for s in rule.seeds]
    assert all(r["test_evaluated"] is False and r["group_size"] == 2 and "git_commit" in r and "git_dirty" in r
               for r in rows)
    for file in (tmp_path / "cache").rglob("done.json"):
        assert json.loads(file.read_text())["accuracy"] is None
    choice = json.loads(printed.strip().splitlines()[-1])
    # the printed choice is the rule's on the recorded rows (which candidate wins depends on the CPU's rounding;
    # the rule itself is tested on planted numbers above)
    assert choice["CHOICE"] == choose(rule, rows)[0] and choice["CHOICE"] in {c.name for c in rule.candidates}
    assert script.main([str(EXAMPLE), "--out", str(out)]) == 2  # rows are never appended to an old search's
    assert "already holds rows" in capsys.readouterr().err
    # the rule applied again to the recorded rows gives the same choice
    assert script.main([str(EXAMPLE), "--rows", str(out)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == choice


def test_the_search_script_refuses_default_seeds(tmp_path, capsys):
    rule = tmp_path / "rule.toml"
    rule.write_text(EXAMPLE.read_text().replace("seeds = [1000, 1001]", "seeds = [0, 1000]"))
    assert _script().main([str(rule), "--dry-run"]) == 2
    assert "default seeds" in capsys.readouterr().err


def test_a_search_whose_preset_moved_on_is_reproduced_at_its_recorded_commit(tmp_path, capsys):
    """The fourth search's rows were trained before the preset took its clip: training that rule again today
    would give other rows, so the script refuses and names the commit; applying the rule to the rows still works."""
    rule = ROOT / "docs" / "search" / "rule-v4.toml"
    out = tmp_path / "rows.jsonl"
    assert _script().main([str(rule), "--out", str(out), "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "preset has moved" in err and "d9ed4a1" in err and not out.exists()
    assert _script().main([str(rule), "--rows", str(ROOT / "docs" / "search" / "validation-v4.jsonl")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("note: ") and "d9ed4a1" in printed and "lr0.8-warm32-clip1.0" in printed
    fresh = tmp_path / "rule.toml"  # a rule with no rows beside it trains as before
    fresh.write_text(rule.read_text().replace('surveys = ["survey-dense.jsonl", "survey-clip.jsonl"]', ""))
    assert _script().moved_since_recorded(_script().load_rule(fresh), fresh, "other") is None


def test_search_workers_train_the_same_groups_so_the_same_numbers(tmp_path, capsys):
    """--workers trains seed groups side by side in processes; the groups, hence the numbers, are unchanged."""
    text = EXAMPLE.read_text().replace("group_size = 2", "group_size = 1")
    rule = tmp_path / "rule.toml"
    rule.write_text(text[:text.index('[[candidate]]\nname = "lr-0.4-k20"')])  # the first candidate only
    keys = ("seed", "dense", "ticket", "imp-rewind-0", "reinit", "trained_with_seeds", "group_size")
    rows = {}
    for workers in (1, 2):
        out = tmp_path / f"rows-{workers}.jsonl"
        assert _script().main([str(rule), "--out", str(out), "--cache", str(tmp_path / f"cache-{workers}"),
                               "--workers", str(workers)]) == 0
        rows[workers] = [{k: r[k] for k in keys} for r in map(json.loads, out.read_text().splitlines())]
    capsys.readouterr()
    assert rows[1] == rows[2] and [r["trained_with_seeds"] for r in rows[1]] == [[1000], [1001]]


def test_a_dense_only_survey_trains_the_trunks_alone_and_counts_collapses(tmp_path, capsys):
    """--dense-only: one trunk per seed (no chain, no branch), validation only, the same dense numbers as the full
    search's rows, and a survey (collapsed seeds under the rule's criterion) instead of a choice."""
    script, rule = _script(), load_rule(EXAMPLE)
    out = tmp_path / "survey.jsonl"
    assert script.main([str(EXAMPLE), "--dense-only", "--dry-run"]) == 0
    assert "x 1 training runs" in capsys.readouterr().out
    assert script.main([str(EXAMPLE), "--dense-only", "--out", str(out), "--cache", str(tmp_path / "cache")]) == 0
    survey = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["SURVEY"]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["candidate"], r["seed"]) for r in rows] == [(c.name, s) for c in rule.candidates for s in rule.seeds]
    assert all("ticket" not in r and r["test_evaluated"] is False for r in rows)
    stages = {json.loads(f.read_text())["stage"] for f in (tmp_path / "cache").rglob("done.json")}
    assert stages == {"trunk"}
    assert set(survey) == {c.name for c in rule.candidates}
    assert all(s["n"] == len(rule.seeds) and s["collapsed"] == {} for s in survey.values())  # 2 seeds: none can
    full = tmp_path / "full.jsonl"  # the full search on the same seeds: its dense numbers are the survey's
    assert script.main([str(EXAMPLE), "--out", str(full), "--cache", str(tmp_path / "cache")]) == 0
    capsys.readouterr()
    assert [r["dense"] for r in map(json.loads, full.read_text().splitlines())] == [r["dense"] for r in rows]
    assert script.main([str(EXAMPLE), "--rows", str(out)]) == 0  # recorded survey rows: the survey again
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["SURVEY"] == survey
    # scripts/collapse_trace.py reads the survey's trunks at W_k: every seed evaluated, nothing trained
    spec = importlib.util.spec_from_file_location("collapse_trace", ROOT / "scripts" / "collapse_trace.py")
    tracer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tracer)
    before = sorted(p.name for p in (tmp_path / "cache").rglob("*.pt"))
    traced = tracer.trace(EXAMPLE, out, tmp_path / "cache")
    capsys.readouterr()
    assert set(traced) == {c.name for c in rule.candidates}
    assert all(0 <= t["min_at_k"] <= t["median_at_k"] <= 100 and t["collapsed"] == {} for t in traced.values())
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*.pt")) == before


@pytest.mark.parametrize("rule_file, rows_file, choice, why", [
    ("rule.toml", "validation-v2.jsonl", "lr0.8-k96-warm32", "stable and meets the bars"),
    ("rule-v3.toml", "validation-v3.jsonl", "lr0.8-warm32", "stable and meets the bars"),
    ("rule-v4.toml", "validation-v4.jsonl", "lr0.8-warm32-clip1.0", "none meets the bars: the best stable one"),
    ("rule-v5.toml", "validation-v5.jsonl", "clip1.0-prune0.7", "none meets the bars: the best stable one"),
    ("rule-v6.toml", "validation-v6.jsonl", "prune0.6-lr1.1", "stable and meets the bars"),
])
def test_the_committed_searches_rows_belong_to_their_rule_and_give_the_documented_choice(rule_file, rows_file,
                                                                                          choice, why):
    """Each committed search: every row from its committed rule file (sha256), a clean tree, no test split, one
    row per candidate and seed; the rule applied to them chooses what docs/default-preset.md says."""
    import hashlib

    folder = ROOT / "docs" / "search"
    rule = load_rule(folder / rule_file)
    rows = [json.loads(line) for line in (folder / rows_file).read_text().splitlines()]
    sha = hashlib.sha256((folder / rule_file).read_bytes()).hexdigest()
    assert all(r["rule_sha256"] == sha and r["git_dirty"] is False and r["test_evaluated"] is False
               and r["split"] == "validation" and r["group_size"] == rule.group_size for r in rows)
    assert sorted((r["candidate"], r["seed"]) for r in rows) == sorted(
        (c.name, s) for c in rule.candidates for s in rule.seeds)
    best, table, reason = choose(rule, rows)
    assert (best, reason) == (choice, why)
    assert choice in (ROOT / "docs" / "default-preset.md").read_text()


def test_builtin_table_reads_the_rule_whose_choice_is_todays_preset():
    """scripts/builtin_table.py takes its "no collapsed seed" criterion from the rule that chose the preset: the
    search whose chosen candidate's recorded config is the preset's config today (a new search moves it)."""
    from bench.config import config_hash

    spec = importlib.util.spec_from_file_location("builtin_table", ROOT / "scripts" / "builtin_table.py")
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    rule = load_rule(table.RULE)
    rows_file = table.RULE.with_name(table.RULE.name.replace("rule", "validation").replace(".toml", ".jsonl"))
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    best = choose(rule, rows)[0]
    assert {r["config_hash"] for r in rows if r["candidate"] == best} == {
        config_hash(get_preset(rule.preset).experiment)}


def test_the_committed_dense_survey_belongs_to_its_rule_and_gives_the_documented_counts(capsys):
    """docs/search/survey-dense.jsonl: every row from the committed survey file, a clean tree, validation only,
    dense only; its collapse counts are those docs/default-preset.md reports (2, 1 and 2 of 96)."""
    import hashlib

    folder = ROOT / "docs" / "search"
    rule = load_rule(folder / "survey-dense.toml")
    rows = [json.loads(line) for line in (folder / "survey-dense.jsonl").read_text().splitlines()]
    sha = hashlib.sha256((folder / "survey-dense.toml").read_bytes()).hexdigest()
    assert all(r["rule_sha256"] == sha and r["git_dirty"] is False and r["test_evaluated"] is False
               and "ticket" not in r for r in rows)
    assert sorted((r["candidate"], r["seed"]) for r in rows) == sorted(
        (c.name, s) for c in rule.candidates for s in rule.seeds)
    survey = _script().print_survey(rule, rows)
    capsys.readouterr()
    assert {name: sorted(s["collapsed"]) for name, s in survey.items()} == {
        "lr0.8-warm32": [2055, 2078], "lr0.7-warm32": [2089], "lr0.6": [2051, 2120]}
