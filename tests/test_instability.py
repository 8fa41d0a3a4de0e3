"""bench instability: the barrier, the BatchNorm modes, identical orders, endpoints, records, verify, the board."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from bench import paths
from bench.cli import cli
from bench.interpolation import alphas, barrier, interpolate, path_errors, recompute_stats
from bench.experiments.setup import RunOptions
from bench.presets import get_preset
from bench.results import load_results, validate


# -- the formula and the path ----------------------------------------------------------------------
def test_barrier_on_planted_curves():
    assert barrier([10.0, 10.0, 10.0]) == 0.0  # flat: no barrier
    assert barrier([10.0, 30.0, 20.0]) == 15.0  # a bump: max minus the endpoints' mean
    assert barrier([10.0, 12.0, 14.0, 20.0]) == 5.0  # monotone: the larger endpoint is the max
    assert barrier([4.0, 2.0, 4.0]) == 0.0  # a valley is no barrier
    assert alphas(5) == [0.0, 0.25, 0.5, 0.75, 1.0]


def _tiny(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 2))
    model.train()
    with torch.no_grad():  # different running statistics on each side
        model(torch.randn(16, 2, 2, 2) * (1 + seed) + seed)
    return model


def test_batchnorm_modes_differ_as_designed():
    a, b = _tiny(0).state_dict(), _tiny(1).state_dict()
    mean = "1.running_mean"
    assert not torch.equal(a[mean], b[mean])
    for mode in ("interpolate", "endpoint", "recompute"):  # the ends are the two networks, bit for bit
        assert all(torch.equal(interpolate(a, b, 0.0, mode)[n], a[n]) for n in a)
        assert all(torch.equal(interpolate(a, b, 1.0, mode)[n], b[n]) for n in a)
    mid = interpolate(a, b, 0.5, "interpolate")
    assert torch.allclose(mid[mean], (a[mean] + b[mean]) / 2)
    # endpoint: the nearer end's statistics, but the weights still interpolated
    assert torch.equal(interpolate(a, b, 0.25, "endpoint")[mean], a[mean])
    assert torch.equal(interpolate(a, b, 0.75, "endpoint")[mean], b[mean])
    weight = "0.weight"
    assert torch.equal(interpolate(a, b, 0.25, "endpoint")[weight], interpolate(a, b, 0.25, "interpolate")[weight])
    # recompute: the statistics the interpolated network itself produces on the batches, not an average
    model = _tiny(2)
    model.load_state_dict(mid)
    batches = [torch.randn(8, 2, 2, 2, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    recompute_stats(model, batches)
    recomputed = model.state_dict()
    assert not torch.allclose(recomputed[mean], mid[mean])
    assert torch.equal(recomputed["0.weight"], mid["0.weight"]) and not model.training
    with torch.no_grad():
        hidden = torch.cat([model[0](x) for x in batches])
    assert torch.allclose(recomputed[mean], hidden.mean(dim=(0, 2, 3)), atol=1e-6)


def test_path_errors_same_state_is_flat():
    a = _tiny(0).state_dict()
    x, y = torch.randn(20, 2, 2, 2), torch.randint(0, 2, (20,))
    for mode in ("interpolate", "endpoint", "recompute"):
        errors = path_errors(_tiny(3), a, a, 5, mode, {"test": (x, y)}, lambda: [x[:10]])
        assert len(errors["test"]) == 5
        if mode != "recompute":
            assert len(set(errors["test"])) == 1 and barrier(errors["test"]) == 0.0


# -- on the smoke preset ---------------------------------------------------------------------------
def _options(cache: Path, data_dir: Path) -> RunOptions:
    return RunOptions(cache=cache, device="cpu", data_dir=data_dir)


def test_identical_data_orders_give_a_barrier_of_exactly_zero(tmp_path, data_dir, monkeypatch):
    """Copy B trained with copy A's own data order, in the same group, is copy A bit for bit: every point on
    the path is that one network, so the barrier is exactly 0 (whatever the BatchNorm mode)."""
    from bench.experiments import instability

    monkeypatch.setattr(instability, "order_seed", lambda seed: seed)
    for bn in ("interpolate", "recompute"):
        result = instability.run_instability(get_preset("smoke"), _options(tmp_path, data_dir), seeds=1,
                                             ks_text="10", points=5, bn=bn)
        assert [r["subject"]["kind"] for r in result.records] == ["dense", "ticket"]
        for r in result.records:
            assert r["fingerprints"]["copy_a"] == r["fingerprints"]["copy_b"]
            assert r["barrier"] == {"train": 0.0, "test": 0.0}
            assert len(set(r["error"]["test"])) == 1 and len(set(r["error"]["train"])) == 1


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, data_dir):
    """Two seeds, k in {0, 10}, the dense network, the ticket and one perturbation, BatchNorm interpolated."""
    from bench.experiments.instability import run_instability

    cache = tmp_path_factory.mktemp("instability")
    result = run_instability(get_preset("smoke"), _options(cache, data_dir), seeds=2, ks_text="0,10", points=7,
                             bn="interpolate", perturbations=[("shuffle-layer", {})])
    return cache, result


def test_endpoints_reproduce_the_copies_own_accuracies(smoke_run):
    _, result = smoke_run
    assert {(r["subject"]["kind"], r["k"]) for r in result.records} == {
        ("dense", 0), ("dense", 10), ("ticket", 0), ("ticket", 10), ("perturbation", 10)}
    for r in result.records:
        a, b = r["copies"]
        assert math.isclose(100 - r["error"]["test"][0], a["accuracy"], abs_tol=1e-9)
        assert math.isclose(100 - r["error"]["test"][-1], b["accuracy"], abs_tol=1e-9)
        assert a["data_seed"] != b["data_seed"] and r["fingerprints"]["copy_a"] != r["fingerprints"]["copy_b"]
        assert r["barrier"]["test"] == barrier(r["error"]["test"]) and r["stable"] == (r["barrier"]["test"] < 2)
        assert validate(r) == []


def test_copy_a_is_the_ticket_and_the_branch(smoke_run):
    """The dense network's and the ticket's copy A are the stages bench run and rewind-curve use; the
    perturbation's is the ordinary branch, whose record bench run reads."""
    cache, result = smoke_run
    ticket = {r["seed"]: r for r in result.records if r["subject"]["kind"] == "ticket" and r["k"] == 10}
    pert = {r["seed"]: r for r in result.records if r["subject"]["kind"] == "perturbation"}
    for seed in (0, 1):
        root = paths.replicate_dir(cache, result.records[0]["config_hash"], seed)
        done = json.loads((root / "level-2" / "done.json").read_text())
        assert ticket[seed]["copies"][0]["accuracy"] == done["accuracy"]
        branch = next((root / "level-2" / "branch").iterdir())
        assert (branch / "final.pt").exists()  # kept for the path
        assert pert[seed]["copies"][0]["accuracy"] == json.loads((branch / "done.json").read_text())["accuracy"]
        assert (branch / "instability" / "copy-1" / "done.json").exists()


def test_records_are_stored_validated_and_reused(smoke_run, data_dir):
    from bench.experiments.instability import run_instability

    cache, result = smoke_run
    loaded = load_results([paths.results_dir(cache)])
    assert not loaded.problems and len(loaded.results) == 10
    record = dict(loaded.results[0].data)
    tampered = {**record, "barrier": {**record["barrier"], "test": record["barrier"]["test"] + 1}}
    assert any("barrier.test" in p for p in validate(tampered))
    assert any("points" in p for p in validate({**record, "points": record["points"] + 1}))
    again = run_instability(get_preset("smoke"), _options(cache, data_dir), seeds=2, ks_text="0,10", points=7,
                            bn="interpolate", perturbations=[("shuffle-layer", {})])
    assert not any(e.kind == "trained" for e in again.events)
    assert [r["created"] for r in again.records] == [r["created"] for r in result.records]


def test_workers_walk_their_groups_paths_to_the_same_records(tmp_path, data_dir, monkeypatch):
    """Two workers (one seed group each) train and walk their own groups' paths: the records are those of one
    process, bit for bit (errors, barriers, fingerprints), and the final pass only reads them."""
    from dataclasses import replace

    from bench.experiments import instability
    from bench.experiments.instability import run_instability

    options = replace(_options(tmp_path, data_dir), group_size=1, workers=2)
    alone = run_instability(get_preset("smoke"), replace(options, cache=tmp_path / "alone", workers=1), seeds=2,
                            ks_text="10", points=5, bn="recompute")
    walked_here, walk = [], instability.path_errors  # paths walked in this process (a forked worker's count is its own)
    monkeypatch.setattr(instability, "path_errors", lambda *a, **kw: walked_here.append(1) or walk(*a, **kw))
    side = run_instability(get_preset("smoke"), replace(options, cache=tmp_path / "side"), seeds=2, ks_text="10",
                           points=5, bn="recompute")
    assert walked_here == []  # every path was walked by a worker
    keys = ("seed", "subject", "error", "barrier", "fingerprints", "copies")
    assert [{k: r[k] for k in keys} for r in side.records] == [{k: r[k] for k in keys} for r in alone.records]
    assert len({r["seed"] for r in side.records}) == 2
    assert all(r["timings"]["path_s"] > 0 for r in side.records)


def test_verify_reruns_an_instability_record_exactly(smoke_run, data_dir):
    from bench.experiments.verify import verify

    cache, _ = smoke_run
    loaded = load_results([paths.results_dir(cache)]).results
    chosen = [r for r in loaded if r.data["subject"]["kind"] == "perturbation" and r.data["seed"] == 0]
    verdicts = verify(chosen, _options(cache, data_dir))
    assert [v.status for v in verdicts] == ["exact"], verdicts[0].differences


def test_leaderboard_shows_and_exports_instability(smoke_run, data_dir):
    import csv
    import io

    from bench.report.model import from_folders
    from bench.report.render import render_csv, render_json
    from bench.report.terminal import render_table

    cache, result = smoke_run
    out = CliRunner().invoke(cli, ["run", "--preset", "smoke", "--seeds", "2", "-p", "shuffle-layer", "--cache-dir",
                                   str(cache), "--data-dir", str(data_dir), "--json"])
    assert out.exit_code == 0, out.output
    lb = from_folders([paths.results_dir(cache)])
    row = next(r for r in lb.rows + lb.ineligible if r.name == "shuffle-layer")
    barriers = {r["seed"]: r["barrier"]["test"] for r in result.records if r["subject"]["kind"] == "perturbation"}
    assert row.instability == barriers and row.instability_setting == "interpolate, 7 points"
    data = json.loads(render_json(lb))
    assert len(data["instability"]) == 10
    rows = list(csv.DictReader(io.StringIO(render_csv(lb))))
    assert sum(r["kind"] == "instability" for r in rows) == 10
    pert = [r for r in rows if r["kind"] == "perturbation" and r["perturbation"] == "shuffle-layer"]
    assert {int(r["seed"]): float(r["barrier"]) for r in pert} == barriers
    assert "instab." in render_table(lb)


def test_command_from_an_empty_cache_prints_barriers_per_seed(tmp_path, data_dir):
    args = ["instability", "--preset", "smoke", "--seeds", "2", "--k", "10", "--points", "5", "--cache-dir",
            str(tmp_path), "--data-dir", str(data_dir)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "0: " in result.stdout and "1: " in result.stdout and "dense" in result.stdout
    data = json.loads(CliRunner().invoke(cli, [*args, "--json"]).stdout)
    assert {c["name"] for c in data["curves"]} == {"dense", "ticket"}
    assert all(len(c["barrier"]) == 2 for c in data["curves"]) and Path(data["files"]["plot"]).exists()
    bad = CliRunner().invoke(cli, [*args, "--param", "x=1"])
    assert bad.exit_code != 0 and "--param applies to one perturbation" in bad.output
