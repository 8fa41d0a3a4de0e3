"""Pruning strategies (issue 24): each built-in's mask on planted weights, seeded and paired random
strategies, the default strategy's neutrality (hashes, masks), the command-line option, effective
density on planted masks, and the MNIST-1D notebook preset's model, optimizer and data order."""

import json
import math

import pytest
import torch
from click.testing import CliRunner

from bench import models
from bench.cli import cli
from bench.config import DataConfig, Experiment, ModelConfig, PruneConfig, TrainConfig, config_hash, from_dict, \
    canonical, validate
from bench.connectivity import effective_counts, effective_density, unit_graph
from bench.errors import BenchError, PluginError
from bench.plugins import default_plugins
from bench.presets import PRESETS, notebook_sparsities
from bench.pruning import level_masks, ones_like, prune, with_strategy
from bench.pruning_strategy import PruneContext, check_masks
from bench.seeding import derive_seed, generator
from bench.testing import check_pruning_strategy

# the config hashes of the presets before strategies existed: a default-valued field never enters the hash
# (cifar10-resnet20's as of issue 21, which set its prune.level1_prunes; mnist1d-resnet's as of issue 22's sixth
# search; test_config pins them all)
HASHES = {"mnist1d-resnet": "a31e4d77548e74f8", "cifar10-resnet20": "d79db2128af1f624", "smoke": "8633d013409faf8b"}


def strategy(name):
    return default_plugins().pruning_strategy(name).strategy


def planted():
    """Three layers whose magnitudes are planted: 'a' holds 1..24, 'b' 100..131 (so global ranking prunes
    'a' first), 'fc' 0.5 with a bias of ties (a layer whose weight and bias are pruned together)."""
    return {"a.weight": torch.arange(1.0, 25.0).view(6, 4), "b.weight": -torch.arange(100.0, 132.0).view(8, 4),
            "fc.weight": torch.full((2, 8), 0.5), "fc.bias": torch.tensor([0.5, 0.25])}


def ctx_for(weights, masks=None, *, level=1, fraction=0.5, sparsity=None, params=None, seed=0, ties="exact"):
    masks = masks or ones_like(weights)
    s = derive_seed(seed, "prune", level)
    return PruneContext(weights=weights, mask=masks, level=level, fraction=fraction, sparsity=sparsity,
                        ties=ties, params=params or {}, seed=s, generator=generator(s))


def kept(masks, layer_names):
    return sum(int(masks[n].sum()) for n in layer_names)


def run(name, ctx, **params):
    s = strategy(name)
    defaults = {p.name: p.default for p in s.params}
    ctx.params = {**defaults, **params}
    return check_masks(name, ctx, s.masks(ctx))


# -- the default is today's rule, bit for bit, and changes no hash ----------------------------------------------

def test_existing_presets_keep_their_config_hashes():
    assert {name: config_hash(PRESETS[name].experiment) for name in HASHES} == HASHES
    # the committed MNIST-1D comparison (docs/data/mnist1d-lottery.json) was run under this one
    assert config_hash(PRESETS["mnist1d-lottery"].experiment) == "91444f3270297b0d"
    assert config_hash(Experiment(prune=PruneConfig(strategy="magnitude", strategy_params=(), schedule=()))) == \
        config_hash(Experiment())


def test_the_default_strategy_is_todays_global_rule_with_both_tie_rules():
    g = torch.Generator().manual_seed(3)
    w = {"a.weight": torch.randn(6, 4, generator=g), "b.weight": torch.randn(8, 4, generator=g)}
    w["a.weight"][0, :2] = 0.25  # a planted tie
    w["b.weight"][0, :2] = 0.25
    for ties in ("exact", "threshold"):
        exp = Experiment(prune=PruneConfig(fraction=0.4, ties=ties))
        direct = level_masks(exp, w, ones_like(w), 1, seed=0)
        assert all(torch.equal(direct[n], prune(w, ones_like(w), 0.4, ties)[n]) for n in w)
        via_plugin = run("magnitude", ctx_for(w, fraction=0.4, ties=ties))
        assert all(torch.equal(direct[n], via_plugin[n]) for n in w)


def test_strategy_and_params_enter_the_hash_and_round_trip():
    base = PRESETS["smoke"].experiment
    chosen = with_strategy(base, "random-layerwise", {"dense": "fc"})
    assert chosen.prune.strategy_params == (("dense", "fc"),)
    assert config_hash(chosen) != config_hash(base) != config_hash(with_strategy(base, "random-layerwise", {}))
    assert from_dict(json.loads(json.dumps(canonical(chosen)))) == chosen
    # a parameter at its default is dropped, so the default strategy named explicitly is the default config
    assert config_hash(with_strategy(base, "magnitude", {"dense": ""})) == HASHES["smoke"]


# -- each strategy on planted weights --------------------------------------------------------------------------

def test_global_magnitude_ranks_all_layers_together():
    w = planted()
    masks = run("magnitude", ctx_for(w, fraction=0.25))
    total = sum(t.numel() for t in w.values())
    assert total - kept(masks, w) == math.ceil(0.25 * total)  # 19 of 74
    # the 18 of 'fc' (0.25 and 0.5s) are the smallest, then 1 of 'a'; 'b' keeps everything
    assert (kept(masks, ["fc.weight", "fc.bias"]), kept(masks, ["a.weight"]), kept(masks, ["b.weight"])) == (0, 23, 32)
    gone = torch.cat([w[n][~masks[n].bool()].abs() for n in w])
    left = torch.cat([w[n][masks[n].bool()].abs() for n in w])
    assert gone.max() <= left.min()


def test_layerwise_magnitude_prunes_each_layer_by_the_same_share():
    w = planted()
    masks = run("magnitude-layerwise", ctx_for(w, fraction=0.25))
    assert kept(masks, ["a.weight"]) == 24 - 6 and kept(masks, ["b.weight"]) == 32 - 8
    assert kept(masks, ["fc.weight", "fc.bias"]) == 18 - math.ceil(0.25 * 18)  # weight and bias: one layer
    # within a layer the smallest go: 'a' loses 1..6, and 'fc' its bias of 0.25 first
    assert masks["a.weight"].flatten()[:6].sum() == 0 and masks["a.weight"].flatten()[6:].all()
    assert masks["fc.bias"][1] == 0


def test_exact_ties_break_by_position_and_threshold_ties_all_go():
    w = planted()  # fc holds 16 weights and one bias at 0.5: a tie across the whole pool
    exact = run("magnitude-layerwise", ctx_for(w, fraction=0.25, params={}), dense="a,b")
    # the 0.25 bias first, then 4 of the tied 0.5s, the first ones by position
    assert kept(exact, ["fc.weight", "fc.bias"]) == 13
    assert exact["fc.weight"].flatten()[:4].sum() == 0 and exact["fc.weight"].flatten()[4:].all()
    threshold = run("magnitude-layerwise", ctx_for(w, fraction=0.25, ties="threshold"), dense="a,b")
    assert kept(threshold, ["fc.weight", "fc.bias"]) == 0  # every weight tied with the threshold goes


def test_layers_left_dense_and_per_layer_rates():
    w = planted()
    masks = run("magnitude-layerwise", ctx_for(w, fraction=0.5), rates="b=0.5", dense="fc")
    assert kept(masks, ["fc.weight", "fc.bias"]) == 18  # left dense
    assert kept(masks, ["a.weight"]) == 12 and kept(masks, ["b.weight"]) == 32 - math.ceil(0.25 * 32)
    glob = run("magnitude", ctx_for(w, fraction=0.5), dense="a")
    assert kept(glob, ["a.weight"]) == 24  # the global ranking runs over the other layers only
    assert 50 - kept(glob, ["b.weight", "fc.weight", "fc.bias"]) == 25
    with pytest.raises(BenchError, match="names no layer"):
        run("magnitude-layerwise", ctx_for(w), dense="conv")
    with pytest.raises(BenchError, match="LAYER=SCALE"):
        run("magnitude-layerwise", ctx_for(w), rates="b")


def test_a_target_sparsity_prunes_each_layer_down_to_it_as_the_notebook_rounds():
    w = planted()
    masks = run("magnitude-layerwise", ctx_for(w, sparsity=0.3))
    for layer, names, total in (("a", ["a.weight"], 24), ("b", ["b.weight"], 32), ("fc", ["fc.weight", "fc.bias"], 18)):
        assert total - kept(masks, names) == int(0.3 * total)
    # the next level counts what is already pruned towards its target
    later = run("magnitude-layerwise", ctx_for(w, masks, level=2, sparsity=0.5))
    assert 24 - kept(later, ["a.weight"]) == 12 and not any((later[n] > masks[n]).any() for n in w)
    assert len(notebook_sparsities(7)) == 14 and notebook_sparsities(1)[-1] == 1.0


def test_random_strategies_keep_the_counts_and_are_seeded_and_paired():
    w = planted()
    global_mag = run("magnitude", ctx_for(w, fraction=0.5))
    matched = run("random-matched", ctx_for(w, fraction=0.5))
    layerwise_mag = run("magnitude-layerwise", ctx_for(w, fraction=0.5))
    layerwise = run("random-layerwise", ctx_for(w, fraction=0.5))
    rand = run("random", ctx_for(w, fraction=0.5))
    for layer in (["a.weight"], ["b.weight"], ["fc.weight", "fc.bias"]):
        assert kept(matched, layer) == kept(global_mag, layer)
        assert kept(layerwise, layer) == kept(layerwise_mag, layer)
    assert kept(rand, w) == kept(global_mag, w)
    assert not all(torch.equal(matched[n], global_mag[n]) for n in w)  # same counts, other positions
    # same seed and level: the same mask; another seed or level: another one
    again = run("random-layerwise", ctx_for(w, fraction=0.5))
    assert all(torch.equal(layerwise[n], again[n]) for n in w)
    other_seed = run("random-layerwise", ctx_for(w, fraction=0.5, seed=1))
    other_level = run("random-layerwise", ctx_for(w, fraction=0.5, level=2))
    assert not all(torch.equal(layerwise[n], other_seed[n]) for n in w)
    assert not all(torch.equal(layerwise[n], other_level[n]) for n in w)
    # the random mask does not depend on the trained weights: a ticket and its random control are paired
    scaled = run("random-layerwise", ctx_for({n: 7 * t for n, t in w.items()}, fraction=0.5))
    assert all(torch.equal(layerwise[n], scaled[n]) for n in w)


@pytest.mark.parametrize("name", ["magnitude", "magnitude-layerwise", "random", "random-layerwise", "random-matched"])
def test_every_builtin_honours_the_contract(name):
    check_pruning_strategy(strategy(name))


def test_the_harness_rejects_a_mask_that_revives_or_is_not_binary():
    w = planted()
    masks = ones_like(w)
    masks["a.weight"][0, 0] = 0
    ctx = ctx_for(w, masks)
    with pytest.raises(PluginError, match="revived"):
        check_masks("bad", ctx, ones_like(w))
    with pytest.raises(PluginError, match="other than 0 and 1"):
        check_masks("bad", ctx, {n: 0.5 * m for n, m in masks.items()})
    with pytest.raises(PluginError, match="no mask for"):
        check_masks("bad", ctx, {"a.weight": masks["a.weight"]})


# -- the command line and sweep files ---------------------------------------------------------------------------

def test_run_refuses_an_unknown_strategy_naming_the_closest_and_the_known():
    result = CliRunner().invoke(cli, ["run", "--preset", "smoke", "--pruning", "random-layer"])
    assert result.exit_code != 0
    line = result.output.strip()
    assert "\n" not in line and "Did you mean 'random-layerwise'?" in line and "magnitude-layerwise" in line
    bad = CliRunner().invoke(cli, ["run", "--preset", "smoke", "--pruning", "random", "--pruning-param", "rate=1"])
    assert bad.exit_code != 0 and "Unknown parameter 'rate' of pruning strategy 'random'" in bad.output


def test_pruning_strategies_are_listed():
    result = CliRunner().invoke(cli, ["pruning-strategies", "--json"])
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"magnitude", "magnitude-layerwise", "random", "random-layerwise", "random-matched"} <= set(rows)
    assert [p["name"] for p in rows["magnitude-layerwise"]["params"]] == ["rates", "dense"]


@pytest.mark.slow
def test_run_selects_the_strategy_and_records_it(tmp_path, data_dir):
    args = ["run", "--preset", "smoke", "--seeds", "1", "--level", "1", "--pruning", "random-layerwise",
            "--pruning-param", "dense=fc", "--cache-dir", str(tmp_path), "--data-dir", str(data_dir), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)["results"]
    assert record["pruning"] == {"strategy": "random-layerwise", "params": {"dense": "fc"}}
    assert record["config_hash"] != HASHES["smoke"] and 0 < record["effective_density"] <= record["density"]
    # ranked on a board of its own, its rows naming the strategy
    board = CliRunner().invoke(cli, ["leaderboard", "--cache-dir", str(tmp_path), "--format", "json", "--min-seeds", "1"])
    boards = json.loads(board.stdout)["boards"]
    assert [(b["config_hash"], b["rows"][0]["pruning"]) for b in boards] == \
        [(record["config_hash"], "random-layerwise (dense=fc)")]


def test_a_sweep_file_sets_the_strategy_through_its_overrides(tmp_path):
    from bench.sweep.file import experiment_of, load_sweep

    path = tmp_path / "sweep.toml"
    path.write_text('presets = ["smoke"]\n[perturbations]\nidentity = {}\n[overrides]\n'
                    'prune = { strategy = "random-layerwise", strategy_params = { dense = "fc" } }\n')
    exp = experiment_of(load_sweep(path), "smoke")
    assert exp == with_strategy(PRESETS["smoke"].experiment, "random-layerwise", {"dense": "fc"})


# -- effective density on planted masks -------------------------------------------------------------------------

def mlp_masks(widths=(3, 3), biases=True):
    model = models.build_model(ModelConfig("mlp", widths=widths, inputs=2, prune_biases=biases), 1, 2)
    params = dict(model.named_parameters())
    return model, {n: torch.ones_like(params[n]) for n in models.prunable_names(model)}


def test_effective_density_removes_units_cut_off_from_the_input_or_the_output():
    model, masks = mlp_masks()
    assert effective_density(model, masks) == 1.0
    masks["hidden.0.weight"][0] = 0  # unit 0 of the first layer hears no input: its bias and outgoing weights idle
    counts = effective_counts(unit_graph(model), masks)
    assert counts["hidden.0.bias"] == 2 and counts["hidden.1.weight"] == 6  # column 0 of the next layer is dead
    assert counts["fc.weight"] == 6  # the residual keeps every unit of the second layer reachable
    model, masks = mlp_masks()
    masks["fc.weight"][:, 1] = 0  # unit 1 of the last hidden layer reaches no output
    counts = effective_counts(unit_graph(model), masks)
    assert counts["hidden.1.weight"] == 6 and counts["hidden.1.bias"] == 2
    assert counts["hidden.0.weight"] == 6  # unit 1 of the first layer still feeds live units of the second


def test_effective_density_of_a_resnet_follows_the_shortcuts():
    model = models.build_model(ModelConfig("resnet1d", widths=(4, 8), blocks_per_stage=1), 1, 10)
    params = dict(model.named_parameters())
    masks = {n: torch.ones_like(params[n]) for n in models.prunable_names(model)}
    masks["blocks.0.conv1.weight"].zero_()  # the first block's residual branch is cut; its identity shortcut is not
    total = sum(m.numel() for m in masks.values())
    expected = (total - masks["blocks.0.conv1.weight"].numel() - masks["blocks.0.conv2.weight"].numel()) / total
    assert effective_density(model, masks) == pytest.approx(expected)
    masks["conv.weight"].zero_()  # nothing leaves the input
    assert effective_density(model, masks) == 0.0


# -- the MNIST-1D notebook preset -------------------------------------------------------------------------------

def test_the_notebook_mlp_its_init_and_biases_pruned():
    exp = PRESETS["mnist1d-lottery"].experiment
    validate(exp)
    model = models.build_model(exp.model, 1, 10)
    assert sum(p.numel() for p in model.parameters()) == 40 * 500 + 500 + 500 * 500 + 500 + 500 * 10 + 10
    assert models.prunable_names(model) == ["hidden.0.weight", "hidden.0.bias", "hidden.1.weight", "hidden.1.bias",
                                            "fc.weight", "fc.bias"]
    models.initialize(model, generator(0, "init"), exp.model)
    bound = 1 / math.sqrt(500)
    assert model.hidden[1].bias.abs().max() <= bound and model.hidden[1].bias.abs().max() > bound / 2
    x = torch.randn(3, 1, 40)
    h1 = torch.relu(model.hidden[0](x.flatten(1)))
    expected = model.fc(h1 + torch.relu(model.hidden[1](h1)))  # h = relu(W1 x); h = h + relu(W2 h); W3 h
    assert torch.allclose(model(x), expected)


def test_adam_and_the_sequential_order_on_a_tiny_config(tmp_path, data_dir):
    from bench.stages import Env, Replicate, train_chain
    from bench.data import BatchStream, load_dataset

    exp = Experiment(data=DataConfig(train_examples=200, test_examples=100, order="sequential"),
                     model=ModelConfig("mlp", widths=(16, 16), init="pytorch", prune_biases=True),
                     train=TrainConfig(steps="12it", batch_size=50, lr=0.02, weight_decay=0.0, optimizer="adam"),
                     prune=PruneConfig(levels=2, strategy="magnitude-layerwise", schedule=(0.5, 0.75)), rewind="0it")
    data = load_dataset(exp.data, data_dir, torch.device("cpu"))
    stream = BatchStream(data, 50, seed=5)
    assert torch.equal(stream.batch(5)[0], data.x_train[50:100])  # step 5 of 4 per epoch: the second batch
    env = Env(cache=tmp_path, device=torch.device("cpu"), data=data, group_size=2)
    reps = [Replicate(exp, seed, env) for seed in (0, 1)]
    from bench.training import Trainer
    trainer = Trainer(reps[0].initial_model(), exp.train, reps[0].schedule)
    assert isinstance(trainer.optimizer, torch.optim.Adam) and trainer.optimizer.defaults["weight_decay"] == 0.0
    train_chain(reps, 2, env)
    for rep in reps:
        record = rep.record(2)
        layers = record["sparsity"]["layers"]
        assert layers["hidden.0.weight"]["remaining"] + layers["hidden.0.bias"]["remaining"] == 656 - int(0.75 * 656)
        assert 0 <= record["accuracy"] <= 100
    # paired: the random arm of the same seeds starts from the same W_0
    rand = with_strategy(exp, "random-layerwise", {})
    w0 = reps[0].initial_model().hidden[0].weight
    assert torch.equal(Replicate(rand, 0, env).initial_model().hidden[0].weight, w0)
