"""The fused path (several replicates as one grouped model) matches training each replicate alone."""

import json

import pytest
import torch
from click.testing import CliRunner

from bench import fused, models
from bench.cli import cli
from bench.config import ModelConfig, TrainConfig
from bench.data import BatchStream, Dataset
from bench.pruning import ones_like, prune
from bench.seeding import generator
from bench.training import Schedule, Trainer, evaluate, run

# End to end the fused and one-at-a-time paths are two samples of training noise, not the same numbers: early
# training is chaotic and amplifies float32 rounding differences (docs/harness.md). In float64 the same
# computation is exact to within ~1e-15 per step, so there the two paths must agree over dozens of steps.
FLOAT64_ATOL = 1e-9


def _replicate(seed, cfg, data):
    model = models.build_model(cfg, data.in_channels, 10)
    models.initialize(model, generator(seed, "init"))
    names = models.prunable_names(model)
    weights = {n: p.detach() for n, p in model.named_parameters() if n in names}
    return model.double(), prune(weights, ones_like(weights), 0.5)


@pytest.mark.parametrize("dims", [1, 2])
def test_fused_matches_one_at_a_time_in_float64(dims):
    """R replicates trained as one grouped model follow exactly the paths they follow alone (in float64,
    where rounding cannot hide a real difference): weights, BatchNorm statistics, masks, accuracy."""
    g = torch.Generator().manual_seed(0)
    shape = (200, 1, 24) if dims == 1 else (200, 3, 8, 8)
    data = Dataset(torch.randn(*shape, generator=g).double(), torch.randint(0, 10, (200,), generator=g),
                   torch.randn(40, *shape[1:], generator=g).double(), torch.randint(0, 10, (40,), generator=g), 10,
                   augment=dims == 2)
    cfg = ModelConfig("resnet1d" if dims == 1 else "cifar_resnet", (4, 8), 1)
    train = TrainConfig(batch_size=32, weight_decay=1e-3)
    sched = Schedule(0.1, 0.1, (20,))
    seeds, steps = [0, 1, 2], 40  # several epochs, across a learning-rate drop
    alone = []
    for seed in seeds:
        model, masks = _replicate(seed, cfg, data)
        run(Trainer(model, train, sched, masks), BatchStream(data, 32, seed), 0, steps)
        alone.append((model, masks))

    starts = [_replicate(seed, cfg, data) for seed in seeds]
    big = fused.build(cfg, data.in_channels, 10, len(seeds)).double()
    big.load_state_dict(fused.fuse([m.state_dict() for m, _ in starts]))
    trainer = Trainer(big, train, sched, fused.fuse([k for _, k in starts]), loss=fused.loss)
    run(trainer, fused.FusedStream([BatchStream(data, 32, s) for s in seeds]), 0, steps)

    for (model, masks), state in zip(alone, fused.unfuse(big.state_dict(), len(seeds))):
        for name, value in model.state_dict().items():
            assert torch.allclose(value.double(), state[name].double(), rtol=0, atol=FLOAT64_ATOL), name
        for name, mask in masks.items():
            assert torch.all(state[name][mask == 0] == 0)
    accs = fused.evaluate(big, data.x_test, data.y_test, len(seeds))
    assert accs == [evaluate(m, data.x_test, data.y_test) for m, _ in alone]


def test_fuse_unfuse_roundtrip():
    cfg = ModelConfig("resnet1d", (4, 8), 1)
    states = [_replicate(s, cfg, Dataset(*(torch.zeros(1, 1, 4),) * 4, 10))[0].float().state_dict() for s in range(3)]
    back = fused.unfuse(fused.fuse(states), 3)
    for a, b in zip(states, back):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_seeds_fused_by_default_match_one_at_a_time(tmp_path, data_dir):
    def go(cache, *extra):
        out = CliRunner().invoke(cli, ["run", "--preset", "smoke", "--seeds", "3", "--perturbation", "identity",
                                       "--cache-dir", str(cache), "--data-dir", str(data_dir), "--json", *extra])
        assert out.exit_code == 0, out.output
        return json.loads(out.stdout)["results"]

    together, alone = go(tmp_path / "fused"), go(tmp_path / "alone", "--group-size", "1")
    assert [r["timings"]["replicas_trained_together"] for r in together] == [3, 3, 3]
    assert [r["timings"]["replicas_trained_together"] for r in alone] == [1, 1, 1]
    for a, b in zip(together, alone):
        # two rounding paths of one experiment: the same replicate (W_0), then two samples of training noise
        # (float32 rounding grows to points within tens of steps; test_fused_matches_one_at_a_time_in_float64
        # proves the computation itself equal), each learning, each pairing its branch exactly
        assert a["seed"] == b["seed"] and a["fingerprints"]["w0"] == b["fingerprints"]["w0"]
        assert min(a["accuracy"]["ticket"], b["accuracy"]["ticket"]) > 20  # well above chance (10%)
        assert a["drop"] == b["drop"] == 0.0  # within each path, the ticket and its branch pair exactly


def test_several_perturbations_pair_exactly_with_their_tickets(tmp_path, data_dir):
    args = ["run", "--preset", "smoke", "--seeds", "2", "-p", "identity", "-p", "shuffle-layer",
            "--cache-dir", str(tmp_path), "--data-dir", str(data_dir), "--json"]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    runs = json.loads(out.stdout)["runs"]
    assert [r["perturbation"] for r in runs] == ["identity", "shuffle-layer"]
    for run_ in runs:
        # each perturbation's branches train as its tickets did: the 2 seeds together, in order
        assert [r["trained_with_seeds"] for r in run_["results"]] == [{"trunk": [0, 1], "ticket": [0, 1], "branch": [0, 1]}] * 2
    assert runs[0]["summary"]["drop"]["values"] == [0.0, 0.0]  # same path as the ticket: exactly 0
    again = CliRunner().invoke(cli, args + ["-p", "identity"])  # a repeated name runs once; all cached
    assert again.exit_code == 0, again.output
    assert len(json.loads(again.stdout)["runs"]) == 2
    assert json.loads(again.stdout)["runs"][0]["stages"]["trained"] == 0
    with_param = CliRunner().invoke(cli, args + ["--param", "scale=1"])
    assert with_param.exit_code == 1 and "--param applies to one perturbation" in with_param.output


def test_branches_follow_their_tickets_groups_across_runs(tmp_path, data_dir):
    """Tickets trained by a 3-seed run; a later 2-seed run still trains each branch in its ticket's group."""
    base = ["run", "--preset", "smoke", "--cache-dir", str(tmp_path), "--data-dir", str(data_dir), "--json"]
    first = CliRunner().invoke(cli, base + ["--seeds", "3", "-p", "reinit"])
    assert first.exit_code == 0, first.output
    later = CliRunner().invoke(cli, base + ["--seeds", "2", "-p", "identity"])
    assert later.exit_code == 0, later.output
    data = json.loads(later.stdout)
    assert [r["trained_with_seeds"] for r in data["results"]] == [{"trunk": [0, 1, 2], "ticket": [0, 1, 2], "branch": [0, 1, 2]}] * 2
    assert data["summary"]["drop"]["values"] == [0.0, 0.0]
