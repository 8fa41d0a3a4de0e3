import math

import torch

from bench.pruning import density, expected_density, ones_like, prune, report


def _weights(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"a.weight": torch.randn(8, 4, 3, generator=g), "b.weight": 5 * torch.randn(16, 8, generator=g),
            "c.weight": 0.1 * torch.randn(10, 16, generator=g)}


def test_exact_fraction_and_global_threshold():
    w = _weights()
    total = sum(t.numel() for t in w.values())
    masks = prune(w, ones_like(w), 0.2)
    removed = total - sum(int(m.sum()) for m in masks.values())
    assert removed == math.ceil(0.2 * total)
    kept = torch.cat([w[n][masks[n].bool()].abs() for n in w])
    gone = torch.cat([w[n][~masks[n].bool()].abs() for n in w])
    assert gone.max() <= kept.min()  # one threshold across all layers, not per layer
    # global: the small-scale layer loses far more than its share
    assert density({"c": masks["c.weight"]}) < 0.6 < 0.99 < density({"b": masks["b.weight"]})


def test_levels_compound_and_never_revive():
    w = _weights(1)
    masks = ones_like(w)
    total = sum(t.numel() for t in w.values())
    for level in range(1, 6):
        new = prune(w, masks, 0.6)
        for n in w:
            assert not (new[n].bool() & ~masks[n].bool()).any()
        masks = new
        assert density(masks) == expected_density(0.6, level, total)
    assert abs(expected_density(0.2, 8, 10**6) - 0.8 ** 8) < 1e-5


def test_pruned_weights_with_equal_magnitude_are_ranked_by_position():
    w = {"x.weight": torch.ones(10)}
    masks = prune(w, ones_like(w), 0.3)
    assert masks["x.weight"].tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]


def test_report():
    w = _weights()
    r = report(prune(w, ones_like(w), 0.5))
    assert r["total"] == sum(t.numel() for t in w.values())
    assert r["remaining"] == sum(v["remaining"] for v in r["layers"].values())
