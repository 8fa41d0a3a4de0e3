"""Paired comparisons on planted per-seed data: the statistics, the board's verdicts, JSON and CSV, and
``bench compare``."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from bench.cli import cli
from bench.report.model import from_folders
from bench.report.paired import (bootstrap_ranks, hodges_lehmann, holm, paired, seeds_for_exact, seeds_needed,
                                 sign_flip_p)
from bench.report.render import render_csv
from bench.report.verdicts import board_verdicts, letter_groups
from test_leaderboard import record, write

NOISE = np.random.default_rng(7)


def planted(means: list[float], n: int, sd: float = 1.0, seed: int = 0) -> list[dict[int, float]]:
    """Rows with known means: each seed's drop is the row's mean plus a shared seed effect plus noise."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, 5, n)  # a seed effect every row has: pairing cancels it
    return [{s: float(m + shared[s] + rng.normal(0, sd)) for s in range(n)} for m in means]


# ------------------------------------------------------------------------------------------ one pair


def test_sign_flip_p_is_the_hand_counted_share_of_sign_patterns():
    # d = (1, 2, 3): sums over the 8 sign patterns are +-6, +-4, +-2, +-0; |sum| >= 6 in 2 of them
    assert sign_flip_p(np.array([1.0, 2.0, 3.0])) == pytest.approx(2 / 8)
    assert sign_flip_p(np.array([1.0, -1.0])) == 1.0
    assert sign_flip_p(np.ones(6)) == pytest.approx(2 / 64)  # the smallest p at 6 seeds
    assert seeds_for_exact(1) == 6 and seeds_for_exact(136) == 13


def test_paired_difference_interval_and_robust_centres():
    a = {0: 5.0, 1: 7.0, 2: 6.0, 3: 30.0}
    b = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0, 9: 100.0}  # seed 9 has no partner: left out
    p = paired(a, b, wilcoxon=True)
    d = np.array([4.0, 5.0, 3.0, 26.0])
    assert p.seeds == (0, 1, 2, 3) and p.n == 4 and p.diffs == tuple(d)
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert (p.mean, p.low, p.high) == pytest.approx((9.5, 9.5 - half, 9.5 + half))
    assert p.p_t == pytest.approx(stats.ttest_rel([5, 7, 6, 30], [1, 2, 3, 4]).pvalue)
    assert p.median == 4.5 and p.hodges_lehmann == hodges_lehmann(d)
    # Walsh averages of (3, 4, 5, 26): 3, 3.5, 4, 14.5, 4, 4.5, 15, 5, 15.5, 26 -> median 4.75
    assert p.hodges_lehmann == pytest.approx(4.75)
    assert p.p_exact == pytest.approx(2 / 16) and p.p == p.p_exact and p.p_wilcoxon is not None


def test_holm_adjusts_step_down():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.02, 0.9]) == pytest.approx([0.04, 0.9]) and holm([0.5, 0.9]) == [1.0, 1.0]


def test_seeds_needed_is_the_smallest_n_whose_interval_excludes_zero():
    n = seeds_needed(1.0, 2.0)
    for m, wanted in ((n - 1, False), (n, True)):
        assert bool(stats.t.ppf(0.975, m - 1) * 2.0 / math.sqrt(m) < 1.0) is wanted
    assert seeds_needed(0.0, 1.0) is None and seeds_needed(1.0, math.nan) is None and seeds_needed(1.0, 0.0) == 2


# ------------------------------------------------------------------------------------------ a board


def test_a_clear_gap_is_separated_and_equal_rows_are_not():
    rows = planted([10.0, 10.0, 0.0], n=12)
    v = board_verdicts(rows)
    assert not v.pair(0, 1).separated
    assert v.pair(0, 2).separated and v.pair(1, 2).separated
    assert [r.group for r in v.rows] == ["a", "a", "b"]
    assert [r.rank_ub for r in v.rows] == [1, 1, 3]


def test_adding_a_row_never_changes_a_pairs_test():
    rows = planted([10.0, 10.0, 0.0, 5.0], n=12)
    two = board_verdicts(rows[:2] + rows[2:3])
    three = board_verdicts(rows)  # one more row: more pairs, so only Holm's family grows
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert three.pair(i, j).paired == two.pair(i, j).paired
        assert three.pair(i, j).separated == two.pair(i, j).separated


def test_bootstrap_rank_intervals_cover_the_planted_ranks():
    rows = planted([30.0, 20.0, 20.0, 0.0], n=8)  # the middle two are equal: either may come second
    intervals = bootstrap_ranks(rows)
    assert intervals == [(1, 1), (2, 3), (2, 3), (4, 4)]
    assert bootstrap_ranks(rows) == intervals  # a fixed seed: the same table every time


def test_letters_are_runs_of_rows_no_pair_of_which_is_separated():
    assert letter_groups(3, {(0, 2)}) == ["a", "ab", "b"]
    assert letter_groups(3, set()) == ["a", "a", "a"]
    assert letter_groups(3, {(0, 1), (1, 2), (0, 2)}) == ["a", "b", "c"]


def test_reference_comparisons_are_holm_corrected_over_the_rows_compared():
    rows = planted([20.0, 10.0, 10.0], n=10)
    v = board_verdicts(rows, reference=1)
    assert v.rows[1].vs_reference is None
    assert v.rows[0].differs_from_reference and not v.rows[2].differs_from_reference
    raw = [v.rows[0].vs_reference.p, v.rows[2].vs_reference.p]
    assert [v.rows[0].reference_p_holm, v.rows[2].reference_p_holm] == pytest.approx(holm(raw))


# ------------------------------------------------------------------------------------------ files and CLI


def _write_board(root, means: dict[str, float], n: int = 8, **kw) -> None:
    shared = NOISE.normal(0, 3, n)
    for name, mean in means.items():
        for s in range(n):
            write(root, record(name, seed=s, drop=round(mean + shared[s] + NOISE.normal(0, 0.5), 2), ticket=90.0,
                               dist="other", **kw))


def test_json_gives_rank_intervals_groups_and_every_pair(tmp_path):
    _write_board(tmp_path, {"big": 20.0, "small": 1.0, "tiny": 0.5})
    result = CliRunner().invoke(cli, ["leaderboard", "--results", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["leaderboard_version"] == 2
    (board,) = data["boards"]
    assert board["estimand"] == "mask-fixed" and "ranks" in board
    for row in board["rows"]:
        assert len(row["rank_interval"]) == 2 and row["group"] and row["rank_ub"] >= 1
        assert isinstance(row["ci_excludes_zero"], bool) and "tied_with" not in row
    assert len(board["pairs"]) == 3 and board["statistics"]["comparisons"] == 3
    pair = next(p for p in board["pairs"] if (p["a"], p["b"]) == ("big", "small"))
    for key in ("mean", "low", "high", "p_t", "p_exact", "p_holm", "median", "hodges_lehmann", "seeds_needed",
                "separated", "diffs", "seeds"):
        assert key in pair
    assert pair["separated"] and pair["p_exact"] == pytest.approx(2 / 256)
    assert board["statistics"]["bootstrap"]["resamples"] == 2000


def test_csv_carries_each_files_rank_interval_and_group(tmp_path):
    _write_board(tmp_path, {"big": 20.0, "small": 1.0}, n=4)
    rows = list(csv.DictReader(io.StringIO(render_csv(from_folders([tmp_path])))))
    assert len(rows) == 8 and {r["group"] for r in rows} == {"a"}
    assert {(r["perturbation"], r["row_rank"], r["rank_low"], r["rank_high"], r["rank_ub"]) for r in rows} == \
        {("big", "1", "1", "1", "1"), ("small", "2", "2", "2", "1")}


def test_pretraining_entries_get_a_board_of_their_own(tmp_path):
    _write_board(tmp_path, {"shuffle": 5.0, "noise": 1.0}, n=3)
    _write_board(tmp_path, {"pretrain:rotation": 30.0}, n=3, kind="pretraining")
    lb = from_folders([tmp_path])
    assert [(b.pretraining, [r.name for r in b.rows]) for b in lb.boards] == \
        [(False, ["shuffle", "noise"]), (True, ["pretrain:rotation"])]
    assert "pre-training entries" in lb.boards[1].ranks


def test_compare_prints_the_paired_difference_and_names_candidates(tmp_path):
    _write_board(tmp_path, {"big": 20.0, "noise": 1.0}, n=6)
    _write_board(tmp_path, {"noise": 3.0}, n=6, params={"scale": 2.0})
    runner = CliRunner()
    result = runner.invoke(cli, ["compare", "big", "noise:scale=2", "--results", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "big minus noise:scale=2.0, paired by seed" in result.stdout
    assert "exact sign-flip p = 0.031 (64 sign patterns" in result.stdout and "Hodges-Lehmann" in result.stdout
    assert "Seeds needed:" in result.stdout and result.stdout.count("\n   ") >= 6  # a line per seed
    as_json = json.loads(runner.invoke(cli, ["compare", "big", "noise:scale=2.0", "--results", str(tmp_path),
                                             "--json"]).stdout)
    assert as_json["n"] == 6 and as_json["a"] == "big" and as_json["p_wilcoxon"] is not None
    ambiguous = runner.invoke(cli, ["compare", "big", "noise", "--results", str(tmp_path)])
    assert ambiguous.exit_code == 1 and "Traceback" not in ambiguous.output
    assert ambiguous.stderr.strip() == ("Error: 'noise' names 2 rows: noise:scale=2.0, noise; give one of them.")
    unknown = runner.invoke(cli, ["compare", "bgi", "noise", "--results", str(tmp_path)])
    assert unknown.exit_code == 1 and "No ranked row matches 'bgi'. Ranked: big, noise, noise:scale=2.0." in \
        unknown.stderr


def test_a_parameter_sweep_is_drawn_as_a_curve(tmp_path):
    from bench.report.figures import parameter_sweep

    for scale, mean in ((0.5, 0.2), (1.0, 1.0), (2.0, 4.0)):
        _write_board(tmp_path, {"noise": mean}, n=3, params={"scale": scale})
    _write_board(tmp_path, {"big": 20.0}, n=3)
    data = parameter_sweep(from_folders([tmp_path]), "noise")
    assert data.param == "scale" and [x for x, _ in data.curves[0][1]] == [0.5, 1.0, 2.0]
    runner = CliRunner()
    out = tmp_path / "sweep.svg"
    result = runner.invoke(cli, ["plot", "--results", str(tmp_path), "--sweep", "noise", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<?xml") and "scale (noise)" in out.read_text()
    bad = runner.invoke(cli, ["plot", "--results", str(tmp_path), "--sweep", "big", "--output", str(out)])
    assert bad.exit_code == 1 and "differ in exactly one numeric parameter" in bad.stderr


def test_committed_boards_fit_80_columns_with_their_verdicts():
    from pathlib import Path

    from rich.console import Console

    from bench.report.terminal import rich_tables

    results = Path(__file__).resolve().parent.parent / "leaderboard" / "results"
    if not any(results.rglob("*.json")):
        pytest.skip("no committed results")
    lb = from_folders([results], min_seeds=3)
    assert all(not any(r.pretraining for r in b.rows) or all(r.pretraining for r in b.rows) for b in lb.boards)
    console = Console(record=True, width=80)
    for table in rich_tables(lb, 80):
        console.print(table)
    text = console.export_text()
    assert max(map(len, text.splitlines())) <= 80
    assert "keep-magnitude-init-sign" in text and "ranks" in text and "grp" in text
    flat = " ".join(text.split())
    assert "n = 24 seeds" in flat and "pairs separated" in flat  # the verdicts, at the committed 24 seeds
