import pytest
import torch

from bench.errors import BenchError
from bench.perturbation import perturb
from bench.testing import check_perturbation, tiny_context

from bench_plugin_template import SignFlipFraction


def test_follows_the_bench_contract():
    check_perturbation(SignFlipFraction())
    check_perturbation(SignFlipFraction(), params={"fraction": "0.5"})  # strings, as from --param


def test_fraction_zero_is_the_identity():
    ctx = tiny_context({"fraction": 0.0})
    out = perturb(SignFlipFraction(), ctx)
    for name in ctx.names:
        assert torch.equal(out.weights[name], ctx.rewind[name] * ctx.mask[name])


def test_fraction_one_flips_every_surviving_sign():
    ctx = tiny_context({"fraction": 1.0})
    out = perturb(SignFlipFraction(), ctx)
    for name in ctx.names:
        assert torch.equal(out.weights[name], -ctx.rewind[name] * ctx.mask[name])


def test_fraction_outside_zero_one_is_rejected():
    with pytest.raises(BenchError, match="fraction"):
        perturb(SignFlipFraction(), tiny_context({"fraction": 1.5}))
