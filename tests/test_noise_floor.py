"""The noise-floor control (data-order: the ticket's own start retrained on another data order) and each
row's effective std measured against the mask it trains under (issue 21)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from bench import paths, stages
from bench.data import load_dataset
from bench.errors import PluginError
from bench.experiments.perturb import run_perturbations
from bench.experiments.setup import RunOptions
from bench.perturbation import change_size, data_order
from bench.plugins import BUILTIN_DIST, default_plugins, is_control
from bench.presets import get_preset
from bench.report.html import render_html
from bench.report.markdown import render_markdown
from bench.report.model import from_folders
from bench.report.render import render_json
from bench.report.terminal import render_table
from bench.seeding import branch_order_seed
from test_leaderboard import write_series

SMOKE = get_preset("smoke")


def _run(tmp_path, data_dir, names, level=1):
    return run_perturbations(SMOKE, [(n, {}) for n in names], RunOptions(cache=tmp_path, data_dir=data_dir),
                             seeds=1, level=level)


def _replicate(tmp_path, data_dir) -> stages.Replicate:
    env = stages.Env(tmp_path, torch.device("cpu"), load_dataset(SMOKE.experiment.data, data_dir, torch.device("cpu")))
    return stages.Replicate(SMOKE.experiment, 0, env)


def test_data_order_is_a_builtin_control_that_declares_another_order():
    registered = default_plugins().perturbation("data-order")
    assert is_control("data-order", BUILTIN_DIST) and registered.plugin.dist == BUILTIN_DIST
    assert data_order(registered.perturbation) == "other" and "noise floor" in registered.perturbation.description
    assert all(data_order(default_plugins().perturbation(n).perturbation) == "same"
               for n in ("identity", "imp-rewind-0", "lottery-ticket", "reinit"))
    # a pure function of the replicate seed and the perturbation seed, never the replicate's own order
    assert branch_order_seed(3, 0) == branch_order_seed(3, 0) != branch_order_seed(3, 1)
    assert all(branch_order_seed(s, 0) != s for s in range(5))


def test_a_bad_data_order_declaration_is_refused_with_the_plugin_named():
    class Odd:
        name, data_order = "odd", "sideways"

    class Chain:
        name, data_order, start = "chain", "other", "imp-from-init"

    with pytest.raises(PluginError, match="Perturbation 'odd' has data_order = 'sideways'"):
        data_order(Odd())
    with pytest.raises(PluginError, match="'chain' has data_order = 'other' with start = 'imp-from-init'"):
        data_order(Chain())


def test_with_the_replicates_own_order_it_is_identity_exactly(tmp_path, data_dir, monkeypatch):
    """The only thing data-order changes is the data order: given the replicate's own, it retrains the ticket
    bit for bit (its accuracy is the ticket's, its drop exactly 0)."""
    monkeypatch.setattr(stages, "branch_order_seed", lambda seed, perturbation_seed: seed)
    record = _run(tmp_path, data_dir, ["data-order"])[0].records[0]
    assert record["accuracy"]["perturbed"] == record["accuracy"]["ticket"] and record["drop"] == 0.0
    assert record["perturbation"]["data_seed"] == 0 and "no_op" not in record


def test_another_order_gives_a_finite_drop_recorded_and_cached(tmp_path, data_dir):
    identity, noise = _run(tmp_path, data_dir, ["identity", "data-order"])
    ident, rec = identity.records[0], noise.records[0]
    assert ident["drop"] == 0.0 and "data_seed" not in ident["perturbation"]  # identity as before
    assert rec["perturbation"]["data_seed"] == branch_order_seed(0, 0)
    assert math.isfinite(rec["drop"]) and rec["accuracy"]["ticket"] == ident["accuracy"]["ticket"]
    assert rec["effective_std"] == 0.0 and "no_op" not in rec  # the same start, so ranked (a control)
    rep = _replicate(tmp_path, data_dir)
    folder = rep.branch_folder("data-order", {}, 1, 0)
    assert json.loads((folder / paths.DONE).read_text())["data_seed"] == branch_order_seed(0, 0)
    again = _run(tmp_path, data_dir, ["data-order"])[0]
    assert again.records[0]["drop"] == rec["drop"] and not any(e.kind == "trained" for e in again.events)


def test_a_branch_trained_on_another_order_than_declared_is_retrained(tmp_path, data_dir, monkeypatch):
    _run(tmp_path, data_dir, ["data-order"])
    rep = _replicate(tmp_path, data_dir)
    registered = default_plugins().perturbation("data-order")
    assert rep.branch_job(registered, {}, 1, 0) is None  # cached, with the order it declares
    monkeypatch.setattr(stages, "branch_order_seed", lambda seed, perturbation_seed: seed)
    with pytest.warns(UserWarning, match="trained with data order"):
        job = rep.branch_job(registered, {}, 1, 0)
    assert job is not None and job.data_seed == 0 and job.start == rep.k


def test_imp_rewind_0_effective_std_is_measured_under_its_own_chains_mask(tmp_path, data_dir):
    identity, reference = _run(tmp_path, data_dir, ["identity", "imp-rewind-0"], level=2)
    rep = _replicate(tmp_path, data_dir)
    wk, w0 = rep.prunable(rep.state(paths.WK)), rep.prunable(rep.state(paths.W0))
    own, chained = rep.masks(2, rewind=0), rep.masks(2)
    assert any(not torch.equal(own[n], chained[n]) for n in own)  # the two chains' masks differ at level 2
    expected = change_size(wk, {n: w0[n] * own[n] for n in own}, own)
    record = reference.records[0]
    assert (record["effective_std"], record["relative_change"]) == expected
    assert record["effective_std"] != change_size(wk, {n: w0[n] * chained[n] for n in own}, chained)[0]


def test_the_noise_floor_is_shown_on_every_board_beside_identity(tmp_path):
    write_series(tmp_path, "identity", [0.0, 0.0, 0.0])
    write_series(tmp_path, "data-order", [0.5, -0.25, 0.25])
    write_series(tmp_path, "imp-rewind-0", [1.0, 2.0, 3.0])
    write_series(tmp_path, "identity", [0.0, 0.0, 0.0], level=1, density=0.5)  # a board without it
    lb = from_folders([tmp_path])
    level1, level2 = sorted(lb.boards, key=lambda b: b.level)
    rows = {r.name: r for r in level2.rows}
    assert rows["data-order"].control and not rows["data-order"].reference and level2.noise_floor is rows["data-order"]
    # mean 1/6, sd 0.3819: half-width 4.3027 * 0.3819 / sqrt(3) = 0.9487
    line = ("Noise floor, the ticket retrained on another data order (data-order): mean drop 0.17, 95% CI "
            "[-0.78, 1.12], per seed -0.25 to 0.50, n = 3; SGD noise alone moves a drop this much.")
    missing = "No noise floor at this sparsity: run bench run -p data-order --preset smoke --seeds 3 --level 1."
    text = render_markdown(lb)
    md_line = line.replace("[", "\\[").replace("]", "\\]")
    assert md_line in text and missing in text and "control: noise floor" in text
    assert text.index("## smoke: 25.0%") < text.index("Noise floor, the ticket") < text.rindex("| # |")
    page = render_html(lb)
    assert f'<p class="reference">{line}</p>' in page and missing in page
    table = " ".join(render_table(lb).split())
    assert line in table and missing in table
    board = [b for b in json.loads(render_json(lb))["boards"] if b["level"] == 2][0]
    assert any(r["perturbation"] == "data-order" and r["control"] for r in board["rows"])


def test_a_noise_floor_by_another_distribution_is_no_control(tmp_path):
    write_series(tmp_path, "identity", [0.0, 0.0, 0.0])
    write_series(tmp_path, "data-order", [0.5, -0.25, 0.25], dist="impostor")
    lb = from_folders([tmp_path])
    assert lb.boards[0].noise_floor is None and "No noise floor at this sparsity" in render_markdown(lb)


def test_instability_of_the_noise_floor_keeps_its_order_in_copy_a(tmp_path, data_dir):
    """bench instability on data-order: copy A is the branch on its own order, copy B on the instability order,
    each recorded with the order it trained on, and a second run reads both back."""
    from bench.experiments.instability import order_seed, run_instability

    def run():
        return run_instability(SMOKE, RunOptions(cache=tmp_path, data_dir=data_dir), seeds=1, ks_text="10",
                               points=3, dense=False, ticket=False, perturbations=[("data-order", {})])

    record = run().records[0]
    a, b = record["copies"]
    assert (a["data_seed"], b["data_seed"]) == (branch_order_seed(0, 0), order_seed(0))
    rep = _replicate(tmp_path, data_dir)
    copy_b = paths.branch_copy_dir(rep.branch_folder("data-order", {}, record["level"], 0), 1)
    assert json.loads((copy_b / paths.DONE).read_text())["data_seed"] == order_seed(0)
    again = run()
    assert again.records[0]["barrier"] == record["barrier"] and not any(e.kind == "trained" for e in again.events)
