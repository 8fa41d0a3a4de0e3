import math

import pytest
import torch

from bench.errors import BenchError
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


# -- tie rules (issue 12): expectations written by hand or by brute force over ranks ---------------------
def _brute_exact(values, alive, count):
    """Pruned iff fewer than ``count`` surviving weights come before it in (magnitude, position) order."""
    out = []
    for i, (v, a) in enumerate(zip(values, alive)):
        before = sum(1 for j, (u, b) in enumerate(zip(values, alive)) if b and (abs(u), j) < (abs(v), i))
        out.append(int(a and before >= count))
    return out


def _brute_threshold(values, alive, count):
    """OpenLTH: pruned iff at most ``count`` surviving weights are strictly smaller in magnitude
    (then it is at or below the magnitude at sorted position ``count``)."""
    out = []
    for v, a in zip(values, alive):
        smaller = sum(1 for u, b in zip(values, alive) if b and abs(u) < abs(v))
        out.append(int(a and smaller > count))
    return out


def test_planted_ties_by_hand():
    w = {"x.weight": torch.tensor([1., -2., 2., 2., 3., 4., 5., 6., 7., 8.])}
    # count = ceil(0.2 * 10) = 2; the magnitude at sorted position 2 is 2, tied three ways
    assert prune(w, ones_like(w), 0.2, "exact")["x.weight"].tolist() == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert prune(w, ones_like(w), 0.2, "threshold")["x.weight"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    flat = {"x.weight": torch.ones(10)}
    assert prune(flat, ones_like(flat), 0.3, "exact")["x.weight"].tolist() == [0, 0, 0] + [1] * 7
    assert prune(flat, ones_like(flat), 0.3, "threshold")["x.weight"].tolist() == [0] * 10  # every tie goes
    distinct = {"x.weight": torch.arange(1., 11.)}
    # no ties: OpenLTH removes one more than the count (its threshold is the (count+1)-th smallest)
    assert prune(distinct, ones_like(distinct), 0.2, "threshold")["x.weight"].tolist() == [0, 0, 0] + [1] * 7


@pytest.mark.parametrize("ties", ["exact", "threshold"])
def test_ties_match_brute_force_across_levels(ties):
    g = torch.Generator().manual_seed(3)
    # small integers: many ties, across two tensors and both signs
    w = {"a.weight": torch.randint(-4, 5, (5, 6), generator=g).float(),
         "b.weight": torch.randint(-4, 5, (17,), generator=g).float()}
    masks = ones_like(w)
    values = torch.cat([t.flatten() for t in w.values()]).tolist()
    for _ in range(3):
        alive = torch.cat([m.flatten() for m in masks.values()]).bool().tolist()
        count = math.ceil(0.25 * sum(alive))
        expected = (_brute_exact if ties == "exact" else _brute_threshold)(values, alive, count)
        masks = prune(w, masks, 0.25, ties)
        assert torch.cat([m.flatten() for m in masks.values()]).int().tolist() == expected


def test_threshold_density_table_on_distinct_weights():
    w = _weights(2)  # continuous random weights: no ties
    total = sum(t.numel() for t in w.values())
    masks = ones_like(w)
    for level in range(1, 5):
        masks = prune(w, masks, 0.2, "threshold")
        assert density(masks) == expected_density(0.2, level, total, "threshold")
        assert density(masks) < expected_density(0.2, level, total, "exact")


def test_unknown_tie_rule():
    w = _weights()
    with pytest.raises(BenchError, match="Unknown prune.ties 'nearest'"):
        prune(w, ones_like(w), 0.2, "nearest")
