"""Contract checks for plugin authors: call them from your own pytest tests.

    from bench.testing import check_perturbation
    from my_plugin import MyPerturbation

    def test_contract():
        check_perturbation(MyPerturbation())
        check_perturbation(MyPerturbation(), params={"strength": "0.5"})

Each check runs the perturbation through the harness's own :func:`bench.perturbation.perturb`
on a tiny 1D ResNet (a few hundred weights), so it takes milliseconds. A broken contract
raises ``AssertionError`` with a message saying what to fix. ``check_pruning_strategy`` does the
same for a pruning strategy (``bench.pruning_strategy``).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from bench import models
from bench.config import ModelConfig
from bench.datasets import dataset_info
from bench.errors import BenchError
from bench.perturbation import Applied, Context, Param, perturb, resolve_params
from bench.pruning_strategy import PruneContext, check_masks
from bench.seeding import generator

TINY_MODEL = ModelConfig("resnet1d", widths=(4, 8), blocks_per_stage=1)
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def tiny_weights(seed: int = 0, device: str | torch.device = "cpu") -> tuple[dict, dict]:
    """(W_0, W_k) of the tiny model: W_0 from the model's initialiser, W_k a nearby point as if briefly trained."""
    mnist1d = dataset_info("mnist1d")  # the tiny model is shaped for MNIST-1D
    model = models.build_model(TINY_MODEL, in_channels=mnist1d.in_channels, num_classes=mnist1d.num_classes)
    models.initialize(model, generator(seed, "testing-init"))
    state = dict(model.named_parameters())
    w0 = {n: state[n].detach().to(device).clone() for n in models.prunable_names(model)}
    drift = generator(seed, "testing-drift", device=device)
    wk = {n: w + 0.3 * models.init_std(w) * torch.randn(w.shape, generator=drift, device=device)
          for n, w in w0.items()}
    return w0, wk


def tiny_masks(weights: Mapping[str, torch.Tensor], density: float, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random float masks; below density 1 the first tensor is fully pruned and the second keeps one
    weight, because global magnitude pruning can produce both and plugins must cope."""
    gen = generator(seed, "testing-mask", device=next(iter(weights.values())).device)
    masks = {}
    for i, (name, w) in enumerate(weights.items()):
        mask = (torch.rand(w.shape, generator=gen, device=w.device) < density).to(w.dtype)
        if density < 1 and i == 0:
            mask.zero_()
        elif density < 1 and i == 1:
            mask.zero_().view(-1)[0] = 1
        masks[name] = mask
    return masks


def tiny_context(params: Mapping[str, Any] | None = None, *, seed: int = 0, density: float = 0.3,
                 device: str | torch.device = "cpu") -> Context:
    """A Context like the one the harness builds, on the tiny model. Every call returns fresh copies."""
    w0, wk = tiny_weights(0, device)
    masks = tiny_masks(wk, density)
    return Context(
        rewind={n: t.clone() for n, t in wk.items()},
        init={n: t.clone() for n, t in w0.items()},
        mask={n: m.clone() for n, m in masks.items()},
        generator=generator(seed, "testing-perturb", device=device),
        params=dict(params or {}), seed=seed,
        initializer=models.init_tensor,
        init_stds={n: models.init_std(t) for n, t in wk.items()},
    )


def check_perturbation(perturbation: Any, params: Mapping[str, Any] | None = None, *,
                       device: str | torch.device = "cpu") -> Applied:
    """Assert that ``perturbation`` honours the contract of ``bench.perturbation``; return one result.

    Checks: a kebab-case ``name``; a one-line ``description``; ``params`` are :class:`Param`
    whose defaults have their declared type; ``params`` (CLI-style strings are fine) resolve;
    ``apply`` passes the harness's validation (names, shapes, dtypes, finite values) on a dense
    and a sparse mask, including a fully pruned tensor; pruned weights stay zero; the inputs in
    ``ctx`` are not modified; the global torch RNG is not touched (use ``ctx.generator``); and the
    same seed gives the same result.
    """
    who = _check_declaration(perturbation, "Perturbation", "apply")
    try:
        values = resolve_params(perturbation, dict(params or {}))
    except BenchError as exc:
        raise AssertionError(str(exc)) from None

    results = []
    for density in (1.0, 0.3):
        # perturb() itself refuses inputs changed in place and draws from the global generator
        ctx = tiny_context(values, density=density, device=device)
        applied = _run(perturbation, ctx)
        for n in ctx.names:
            pruned = ctx.mask[n] == 0
            assert (applied.weights[n][pruned] == 0).all(), f"{who}: pruned weights of {n!r} are not zero"
        again = _run(perturbation, tiny_context(values, density=density, device=device))
        for n in ctx.names:
            assert torch.equal(applied.weights[n], again.weights[n]), \
                f"{who} is not reproducible: the same seed gave different values for {n!r}"
        results.append(applied)
    return results[0]


def _check_declaration(plugin: Any, kind: str, method: str) -> str:
    """The checks every plugin kind shares: a kebab-case name, a one-line description, the method it is called
    through, and params that are Param objects whose defaults have their declared type. Returns "Kind 'name'"."""
    name = getattr(plugin, "name", None)
    example = "my-" + kind.split()[-1].lower()
    assert isinstance(name, str) and _NAME.match(name), f"name must be kebab-case, e.g. '{example}'; got {name!r}"
    who = f"{kind} '{name}'"
    description = getattr(plugin, "description", None)
    assert isinstance(description, str) and description.strip() and "\n" not in description.strip(), \
        f"{who}: description must be one non-empty line"
    assert callable(getattr(plugin, method, None)), f"{who}: needs a {method}(ctx) method"
    for p in getattr(plugin, "params", ()):
        assert isinstance(p, Param), f"{who}: params must be bench.perturbation.Param objects, got {p!r}"
        assert p.convert(p.default, f"{kind.lower()} '{name}'") == p.default, \
            f"{who}: default of '{p.name}' is not a {p.type.__name__}"
    return who


def _run(perturbation: Any, ctx: Context) -> Applied:
    try:
        return perturb(perturbation, ctx)
    except BenchError as exc:  # show the harness's own message as a test failure
        raise AssertionError(str(exc)) from None


def tiny_prune_context(params: Mapping[str, Any] | None = None, *, seed: int = 0, level: int = 2,
                       sparsity: float | None = None, fraction: float = 0.5) -> PruneContext:
    """A PruneContext like the harness's, on the tiny model: W_k as the trained weights, a random previous
    mask (level 1: all ones), ``sparsity`` (a schedule's target) or ``fraction`` per level."""
    _, wk = tiny_weights(0)
    mask = {n: torch.ones_like(w) for n, w in wk.items()} if level == 1 else tiny_masks(wk, 0.8)
    return PruneContext(weights={n: w.clone() for n, w in wk.items()}, mask=mask, level=level,
                        fraction=fraction, sparsity=sparsity, params=dict(params or {}), seed=seed,
                        generator=generator(seed, "testing-prune"))


def check_pruning_strategy(strategy: Any, params: Mapping[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """Assert that ``strategy`` honours the contract of ``bench.pruning_strategy``; return one mask.

    Checks: a kebab-case ``name``; a one-line ``description``; ``params`` are :class:`Param` whose
    defaults have their type and ``params`` (CLI strings fine) resolve; ``masks`` passes the harness's
    validation (every tensor, shapes, 0/1, nothing revived) at level 1 and on a sparse previous mask,
    per level and with a target sparsity; it prunes something; the inputs in ``ctx`` are not modified;
    the global torch RNG is not touched (use ``ctx.generator``); the same seed gives the same mask."""
    from bench.pruning import resolve_strategy_params

    who = _check_declaration(strategy, "Pruning strategy", "masks")
    try:
        values = resolve_strategy_params(strategy, dict(params or {}))
    except BenchError as exc:
        raise AssertionError(str(exc)) from None
    first = None
    for level, sparsity in ((1, None), (2, None), (2, 0.6)):
        masks = []
        for _ in range(2):
            ctx = tiny_prune_context(values, level=level, sparsity=sparsity)
            before = ({n: t.clone() for n, t in ctx.weights.items()}, {n: m.clone() for n, m in ctx.mask.items()})
            rng = torch.get_rng_state()
            try:
                mask = check_masks(strategy.name, ctx, strategy.masks(ctx))
            except BenchError as exc:
                raise AssertionError(str(exc)) from None
            assert torch.equal(rng, torch.get_rng_state()), \
                f"{who} drew from torch's global generator: use ctx.generator"
            assert all(torch.equal(before[0][n], ctx.weights[n]) and torch.equal(before[1][n], ctx.mask[n])
                       for n in ctx.mask), f"{who} modified ctx.weights or ctx.mask in place: return new tensors"
            alive = sum(int(m.sum()) for m in ctx.mask.values())
            assert sum(int(m.sum()) for m in mask.values()) < alive, f"{who} pruned nothing at level {level}"
            masks.append(mask)
        assert all(torch.equal(masks[0][n], masks[1][n]) for n in masks[0]), \
            f"{who} is not reproducible: the same seed gave different masks"
        first = first or masks[0]
    return first
