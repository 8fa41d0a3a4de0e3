"""The built-in perturbations: each one's defining property, on tiny synthetic tensors."""

from __future__ import annotations

import math

import pytest
import torch

from bench import models
from bench.errors import BenchError
from bench.perturbation import Context, perturb, resolve_params
from bench.plugins import load_plugins
from bench.testing import check_perturbation

BUILTINS = {
    "identity", "rewind-to-init", "reinit", "reinit-keep-sign", "init-magnitude-keep-sign",
    "keep-magnitude-init-sign", "random-sign", "shuffle-layer", "shuffle-layer-keep-sign", "shuffle-filter",
    "gaussian-noise", "lottery-ticket",
}
STOCHASTIC = {"reinit", "reinit-keep-sign", "random-sign", "shuffle-layer", "shuffle-layer-keep-sign",
              "shuffle-filter", "gaussian-noise"}
KEEP_SIGN = {"reinit-keep-sign", "init-magnitude-keep-sign", "shuffle-layer-keep-sign"}
# a conv, a linear layer, and a conv that is almost entirely pruned (an edge case IMP can produce)
SHAPES = {"conv.weight": (6, 3, 3), "fc.weight": (5, 8), "thin.weight": (2, 2, 3)}


@pytest.fixture(scope="module")
def registry():
    return load_plugins().perturbations()


def get(registry, name):
    return registry[name].perturbation


def make_ctx(seed: int = 0, shapes=SHAPES, density: float = 0.5, params=None, perturbation=None) -> Context:
    """A Context over random tensors; everything but the perturbation's generator is fixed."""
    data = torch.Generator().manual_seed(1234)
    init, rewind, mask = {}, {}, {}
    for name, shape in shapes.items():
        std = models.init_std(torch.empty(shape))
        init[name] = std * torch.randn(shape, generator=data)
        rewind[name] = init[name] + 0.5 * std * torch.randn(shape, generator=data)
        mask[name] = (torch.rand(shape, generator=data) < density).float()
    if "thin.weight" in mask:
        mask["thin.weight"].zero_().view(-1)[0] = 1.0
    values = resolve_params(perturbation, params or {}) if perturbation is not None else dict(params or {})
    return Context(rewind=rewind, init=init, mask=mask, generator=torch.Generator().manual_seed(seed),
                   params=values, seed=seed, initializer=models.init_tensor,
                   init_stds={n: models.init_std(t) for n, t in rewind.items()})


def run(registry, name, seed=0, **kwargs):
    pert = get(registry, name)
    ctx = make_ctx(seed, perturbation=pert, **kwargs)
    return ctx, perturb(pert, ctx)


def survivors(ctx, out, name):
    keep = ctx.mask[name].bool()
    return ctx.rewind[name][keep], ctx.init[name][keep], out.weights[name][keep]


def test_every_builtin_is_registered_with_a_one_line_description(registry):
    assert BUILTINS <= set(registry)
    for name in BUILTINS:
        reg = registry[name]
        assert reg.plugin.dist == "earlyphase-bench" and reg.plugin.name.startswith("builtin-")
        text = reg.perturbation.description
        assert text.strip() and "\n" not in text


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_contract(registry, name):
    check_perturbation(get(registry, name))


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_contract_on_cuda(registry, name):
    check_perturbation(get(registry, name), device="cuda")


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_mask_and_inputs_untouched_pruned_stay_zero(registry, name):
    pert = get(registry, name)
    ctx = make_ctx(perturbation=pert)
    before = make_ctx(perturbation=pert)
    out = perturb(pert, ctx)
    for n in ctx.names:
        assert torch.equal(ctx.mask[n], before.mask[n])
        assert torch.equal(ctx.rewind[n], before.rewind[n]) and torch.equal(ctx.init[n], before.init[n])
        assert (out.weights[n][ctx.mask[n] == 0] == 0).all()


@pytest.mark.parametrize("name", sorted(STOCHASTIC))
def test_same_seed_same_result_other_seed_different(registry, name):
    _, a = run(registry, name, seed=1)
    _, b = run(registry, name, seed=1)
    _, c = run(registry, name, seed=2)
    assert all(torch.equal(a.weights[n], b.weights[n]) for n in SHAPES)
    assert any(not torch.equal(a.weights[n], c.weights[n]) for n in SHAPES)


@pytest.mark.parametrize("name", sorted(BUILTINS - STOCHASTIC))
def test_deterministic_ones_ignore_the_seed(registry, name):
    _, a = run(registry, name, seed=1)
    _, b = run(registry, name, seed=2)
    assert all(torch.equal(a.weights[n], b.weights[n]) for n in SHAPES)


def test_identity_is_exact(registry):
    ctx, out = run(registry, "identity")
    for n in ctx.names:
        assert torch.equal(out.weights[n], ctx.rewind[n] * ctx.mask[n])
    assert out.effective_std == 0.0 and out.relative_change == 0.0


def test_rewind_to_init_is_w0_under_the_mask(registry):
    ctx, out = run(registry, "rewind-to-init")
    for n in ctx.names:
        assert torch.equal(out.weights[n], ctx.init[n] * ctx.mask[n])


@pytest.mark.parametrize("name", ["shuffle-layer", "shuffle-filter"])
def test_shuffles_preserve_the_multiset_of_surviving_values_per_layer(registry, name):
    ctx, out = run(registry, name, shapes={"conv.weight": (6, 4, 3), "fc.weight": (5, 12)})
    for n in ctx.names:
        wk, _, new = survivors(ctx, out, n)
        assert torch.equal(new.sort().values, wk.sort().values)
        assert not torch.equal(new, wk)  # and it did move something


def test_shuffle_filter_stays_within_each_output_filter(registry):
    ctx, out = run(registry, "shuffle-filter", shapes={"conv.weight": (6, 4, 3), "fc.weight": (5, 12)})
    for n in ctx.names:
        for row in range(ctx.rewind[n].shape[0]):
            keep = ctx.mask[n][row].bool()
            assert torch.equal(out.weights[n][row][keep].sort().values, ctx.rewind[n][row][keep].sort().values)


def test_shuffle_layer_keep_sign_permutes_magnitudes_and_keeps_positions_signs(registry):
    ctx, out = run(registry, "shuffle-layer-keep-sign", shapes={"conv.weight": (6, 4, 3), "fc.weight": (5, 12)})
    for n in ctx.names:
        wk, _, new = survivors(ctx, out, n)
        assert torch.equal(new.abs().sort().values, wk.abs().sort().values)
        assert not torch.equal(new, wk)


def test_shuffle_layer_mixes_across_filters(registry):
    # a layer shuffle must not be a per-filter shuffle in disguise
    shapes = {"conv.weight": (8, 4, 3)}
    ctx, out = run(registry, "shuffle-layer", shapes=shapes, density=1.0)
    new, wk = out.weights["conv.weight"].flatten(1), ctx.rewind["conv.weight"].flatten(1)
    rows_same = [torch.equal(new[r].sort().values, wk[r].sort().values) for r in range(8)]
    assert not all(rows_same)


@pytest.mark.parametrize("name", sorted(KEEP_SIGN))
def test_keep_sign_variants_keep_every_surviving_sign_of_wk(registry, name):
    ctx, out = run(registry, name)
    for n in ctx.names:
        wk, _, new = survivors(ctx, out, n)
        assert torch.equal(new.sign(), wk.sign())


def test_sign_magnitude_mixes(registry):
    ctx, a = run(registry, "init-magnitude-keep-sign")
    _, b = run(registry, "keep-magnitude-init-sign")
    for n in ctx.names:
        wk, w0, new_a = survivors(ctx, a, n)
        _, _, new_b = survivors(ctx, b, n)
        assert torch.equal(new_a, wk.sign() * w0.abs())
        assert torch.equal(new_b, w0.sign() * wk.abs())


def test_random_sign_keeps_magnitudes_and_flips_about_half(registry):
    ctx, out = run(registry, "random-sign", shapes={"fc.weight": (40, 50)}, density=1.0)
    wk, new = ctx.rewind["fc.weight"], out.weights["fc.weight"]
    assert torch.equal(new.abs(), wk.abs())
    flipped = (new.sign() != wk.sign()).float().mean().item()
    assert 0.45 < flipped < 0.55  # 2000 fair coins: 4.5 standard deviations either side


def test_reinit_matches_each_layers_init_std(registry):
    # two layers whose fan-ins differ by 4x: the per-layer std must follow fan-in
    shapes = {"conv.weight": (64, 16, 3), "fc.weight": (64, 192)}
    ctx, out = run(registry, "reinit", shapes=shapes, density=1.0)
    for n in ctx.names:
        new = out.weights[n]
        assert new.std().item() == pytest.approx(ctx.init_std(n), rel=0.05)
        assert abs(new.mean().item()) < 0.05 * ctx.init_std(n)
        assert not torch.equal(new, ctx.init[n])
    assert ctx.init_std("conv.weight") == pytest.approx(2 * ctx.init_std("fc.weight"))


def test_reinit_keep_sign_magnitudes_are_a_fresh_draw(registry):
    ctx, out = run(registry, "reinit-keep-sign", shapes={"fc.weight": (64, 192)}, density=1.0)
    magnitude = out.weights["fc.weight"].abs()
    # |N(0, s^2)| has mean s * sqrt(2 / pi)
    assert magnitude.mean().item() == pytest.approx(ctx.init_std("fc.weight") * math.sqrt(2 / math.pi), rel=0.05)


def test_gaussian_noise_scale_zero_is_identity(registry):
    ctx, out = run(registry, "gaussian-noise", params={"scale": "0"})
    for n in ctx.names:
        assert torch.equal(out.weights[n], ctx.rewind[n] * ctx.mask[n])
    assert out.effective_std == 0.0


def test_gaussian_noise_std_is_scale_times_init_std(registry):
    ctx, out = run(registry, "gaussian-noise", params={"scale": 0.5}, shapes={"fc.weight": (64, 192)}, density=1.0)
    expected = 0.5 * ctx.init_std("fc.weight")
    assert out.effective_std == pytest.approx(expected, rel=0.05)  # the harness's measure of the same thing


def test_gaussian_noise_rejects_negative_scale(registry):
    with pytest.raises(BenchError, match="scale"):
        run(registry, "gaussian-noise", params={"scale": -1})


def test_gaussian_noise_scale_has_a_float_default(registry):
    (param,) = get(registry, "gaussian-noise").params
    assert (param.name, param.type, param.default) == ("scale", float, 1.0)
