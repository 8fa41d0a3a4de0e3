"""What `bench run` prints: one comparison table for several perturbations, intervals only from two seeds on
and clipped to what accuracy can be, and where the results went with the next commands."""

from __future__ import annotations

import json

from rich.console import Console

from bench.cli.output import comparison_table, seed_table
from bench.cli.run import RUN_COLUMNS
from bench.experiments.records import Outcome
from bench.plugins import PluginInfo
from bench.presets import get_preset

PLUGIN = PluginInfo("builtin-controls", "earlyphase-bench", "0.1.0", "plugins.controls")


def outcome(name: str, drops: list[float], tickets: list[float] | None = None) -> Outcome:
    tickets = tickets or [60.0] * len(drops)
    o = Outcome("smoke", get_preset("smoke").experiment, 2, 25.0, name, PLUGIN, {})
    o.records = [{"seed": s, "drop": d, "effective_std": 0.1, "config_hash": "h",
                  "accuracy": {"dense": 70.0, "ticket": t, "perturbed": t - d}}
                 for s, (d, t) in enumerate(zip(drops, tickets))]
    return o


def text(table) -> str:
    console = Console(record=True, width=200)
    console.print(table)
    return console.export_text()


def test_one_seed_has_no_mean_or_interval_rows():
    shown = text(seed_table(outcome("identity", [0.0]), RUN_COLUMNS))
    assert "mean" not in shown and "95% CI" not in shown and "interval" not in shown


def test_accuracy_intervals_are_clipped_to_0_100():
    # two seeds far apart: the raw t-interval of the ticket is about [-5.7, 121.3]
    shown = text(seed_table(outcome("identity", [0.0, 0.0], tickets=[50.0, 65.7]), RUN_COLUMNS))
    assert "[0.00, 100.00]" in shown and "121" not in shown and "-5." not in shown
    assert "mean" in shown and "95% CI" in shown


def test_several_perturbations_share_one_comparison_table():
    shown = text(comparison_table([outcome("identity", [0.0, 0.0, 0.0]), outcome("reinit", [3.0, 4.0, 5.0])]))
    assert shown.count("perturbation") == 2  # the title and one header: one table
    row = next(line for line in shown.splitlines() if "reinit" in line)
    assert "4.00" in row and "[1.52, 6.48]" in row and "3.00, 4.00, 5.00" in row and "56.00" in row
    one_seed = text(comparison_table([outcome("identity", [0.0]), outcome("reinit", [3.0])]))
    assert "95% CI" not in one_seed and "mean" not in one_seed


def test_run_prints_one_table_and_where_results_went(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from bench.cli import cli
    import bench.experiments.perturb as perturb

    monkeypatch.setattr(perturb, "run_perturbations", lambda *a, **k: [outcome("identity", [0.0, 0.0]),
                                                                       outcome("reinit", [3.0, 4.0])])
    monkeypatch.setenv("COLUMNS", "120")
    result = CliRunner().invoke(cli, ["run", "-p", "identity", "-p", "reinit", "--seeds", "2", "--device", "cpu",
                                      "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("Shared by every perturbation") == 1 and result.stdout.count("2 perturbations") == 1
    assert f"result files under {tmp_path / 'results'}" in result.stderr.replace("\n", "")
    assert "bench leaderboard" in result.stderr and "bench plot" in result.stderr


def test_batch_log_has_one_line_per_stage_start_and_finish(capsys):
    from bench.cli.output import log_lines

    with log_lines() as progress:
        stage = progress.start("dense trunk seeds 0,1", 10)
        stage.advance(5)
        stage.advance(10)
        stage.done([55.5, 60.25], 1.234)
        other = progress.start("pre-training blur seed 0", 4)  # a stage that reports no accuracy
        other.advance(4)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4, lines
    assert lines[0].endswith("start dense trunk seeds 0,1: 10 iterations")
    assert lines[1].endswith("finished dense trunk seeds 0,1: 10 iterations, 1.2 s, test accuracy 55.50%, 60.25%")
    assert "start pre-training blur seed 0" in lines[2] and "finished pre-training blur seed 0: 4 iterations" in lines[3]


def test_progress_in_a_batch_log_and_quiet(tmp_path, monkeypatch):
    """Outside a terminal (CliRunner's stderr is not one) a run logs its stages, also with --json;
    `bench --quiet` silences them."""
    from click.testing import CliRunner

    from bench.cli import cli
    import bench.experiments.perturb as perturb

    def fake(preset, chosen, options, **kw):
        stage = options.progress.start("dense trunk seeds 0,1", 3)
        stage.advance(3)
        stage.done([50.0, 51.0], 0.5)  # as bench.execute trains a stage
        return [outcome("identity", [0.0, 0.0])]

    monkeypatch.setattr(perturb, "run_perturbations", fake)
    args = ["run", "--seeds", "2", "--device", "cpu", "--cache-dir", str(tmp_path), "--json"]
    logged = CliRunner().invoke(cli, args)
    assert logged.exit_code == 0, logged.output
    assert "start dense trunk seeds 0,1: 3 iterations" in logged.stderr
    assert "test accuracy 50.00%, 51.00%" in logged.stderr
    assert json.loads(logged.stdout)["perturbation"] == "identity"  # stdout is only the JSON
    silent = CliRunner().invoke(cli, ["--quiet", *args])
    assert silent.exit_code == 0 and "dense trunk" not in silent.stderr


def test_tables_fit_80_columns_without_splitting_a_name(tmp_path):
    from click.testing import CliRunner

    from bench.cli import cli
    from bench.plugins import default_plugins
    from bench.presets import PRESETS
    from test_leaderboard import write_series

    runner = CliRunner(env={"COLUMNS": "80"})
    shown = runner.invoke(cli, ["presets"])
    assert shown.exit_code == 0, shown.output
    assert max(map(len, shown.stdout.splitlines())) <= 80
    for name, preset in PRESETS.items():
        assert name in shown.stdout  # whole on one line
        assert f"{preset.seeds} seed" in shown.stdout
    assert "(generated" in shown.stdout  # the description is shown
    listed = runner.invoke(cli, ["perturbations"])
    assert max(map(len, listed.stdout.splitlines())) <= 80
    for name in default_plugins().perturbations():
        assert name in listed.stdout
    write_series(tmp_path, "shuffle-layer-keep-sign", [1.0, 2.0, 3.0], dist="o")
    write_series(tmp_path, "keep-magnitude-init-sign", [0.5, 1.5, 2.0], dist="o")
    board = runner.invoke(cli, ["leaderboard", "--results", str(tmp_path)])
    assert board.exit_code == 0, board.output
    assert max(map(len, board.stdout.splitlines())) <= 80
    assert "shuffle-layer-keep-sign" in board.stdout and "keep-magnitude-init-sign" in board.stdout
    assert "n = 3 seeds" in " ".join(board.stdout.split())  # the constant column went into the title


def test_help_alias_epilog_and_leaderboard_json(tmp_path):
    from click.testing import CliRunner

    from bench.cli import cli
    from test_leaderboard import write_series

    runner = CliRunner()
    top = runner.invoke(cli, ["-h"])
    assert top.exit_code == 0
    for name in ("BENCH_CACHE_DIR", "BENCH_LOAD_PLUGINS", "BENCH_DEBUG", "CI"):
        assert name in top.output
    assert runner.invoke(cli, ["leaderboard", "-h"]).exit_code == 0  # -h reaches every subcommand
    write_series(tmp_path, "x", [1.0, 2.0], dist="o")
    as_json = runner.invoke(cli, ["leaderboard", "--results", str(tmp_path), "--json"])
    assert as_json.exit_code == 0 and as_json.stdout == runner.invoke(
        cli, ["leaderboard", "--results", str(tmp_path), "--format", "json"]).stdout
    clash = runner.invoke(cli, ["leaderboard", "--results", str(tmp_path), "--json", "--format", "csv"])
    assert clash.exit_code == 1 and "disagree" in clash.stderr
