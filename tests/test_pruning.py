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


def _brute_force_ok(weights, before, after, fraction):
    """The rule, checked pairwise and independently of how prune() computes it: exactly ceil(fraction * n)
    survivors go, and each one that goes is smaller than every one that stays, or equal and earlier in the
    global order (the tensors in order, each flattened)."""
    names = list(weights)
    flat = [(abs(float(v)), i) for i, v in enumerate(torch.cat([weights[n].flatten() for n in names]))]
    alive = torch.cat([before[n].flatten() for n in names]).bool().tolist()
    kept = torch.cat([after[n].flatten() for n in names]).bool().tolist()
    assert not any(k and not a for k, a in zip(kept, alive)), "a pruned weight came back"
    gone = [flat[i] for i in range(len(flat)) if alive[i] and not kept[i]]
    stay = [flat[i] for i in range(len(flat)) if kept[i]]
    assert len(gone) == math.ceil(fraction * sum(alive))
    for g in gone:
        for k in stay:
            assert g < k, (g, k)  # (magnitude, position) tuples compare exactly as the rule says


def test_prune_agrees_with_a_brute_force_rule_over_levels_with_planted_ties():
    g = torch.Generator().manual_seed(3)
    # quantised magnitudes plant many exact ties, across tensors too
    w = {"a.weight": torch.randint(-4, 5, (6, 2, 3), generator=g).float(),
         "b.weight": torch.randint(-4, 5, (10, 4), generator=g).float() / 2,
         "c.weight": torch.randn(5, 7, generator=g)}
    masks = ones_like(w)
    for fraction in (0.2, 0.5, 0.35):
        new = prune(w, masks, fraction)
        _brute_force_ok(w, masks, new, fraction)
        masks = new


def test_pruned_weights_with_equal_magnitude_are_ranked_by_position():
    w = {"x.weight": torch.ones(10)}
    masks = prune(w, ones_like(w), 0.3)
    assert masks["x.weight"].tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]


def test_report():
    w = _weights()
    r = report(prune(w, ones_like(w), 0.5))
    assert r["total"] == sum(t.numel() for t in w.values())
    assert r["remaining"] == sum(v["remaining"] for v in r["layers"].values())
