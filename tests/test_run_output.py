"""What `bench run` prints: one comparison table for several perturbations, intervals only from two seeds on
and clipped to what accuracy can be, and where the results went with the next commands."""

from __future__ import annotations

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
