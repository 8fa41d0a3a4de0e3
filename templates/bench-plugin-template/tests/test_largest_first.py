import torch

from bench.testing import check_pruning_strategy, tiny_prune_context

from bench_plugin_template import LargestFirst


def test_follows_the_bench_contract():
    check_pruning_strategy(LargestFirst())


def test_the_largest_survivors_go_first():
    ctx = tiny_prune_context(level=1, fraction=0.25)
    masks = LargestFirst().masks(ctx)
    kept = torch.cat([ctx.weights[n][masks[n].bool()].abs().flatten() for n in masks])
    gone = torch.cat([ctx.weights[n][~masks[n].bool()].abs().flatten() for n in masks])
    assert gone.numel() == ctx.removal(kept.numel() + gone.numel(), kept.numel() + gone.numel())
    assert kept.max() <= gone.min()
