"""The stages of one replicate: what is saved, what each level starts from."""

import pytest
import torch

from bench import models, stages
from bench.data import BatchStream, load_dataset
from bench.plugins import default_plugins
from bench.presets import get_preset
from bench.seeding import generator
from bench.training import Trainer, run


@pytest.fixture
def replicate(tmp_path, data_dir):
    exp = get_preset("smoke").experiment
    env = stages.Env(cache=tmp_path, device=torch.device("cpu"),
                     data=load_dataset(exp.data, data_dir, torch.device("cpu")))
    return stages.Replicate(exp, 0, env)


def test_trunk_saves_w0_and_wk(replicate):
    replicate.trunk()
    w0, wk = replicate.state("w0.pt"), replicate.state("wk.pt")
    model = replicate.new_model()
    models.initialize(model, generator(0, "init"))
    for name, value in model.state_dict().items():
        assert torch.equal(value, w0[name]), name
    # W_k is exactly what k steps of training from W_0 give
    trainer = Trainer(model, replicate.exp.train, replicate.schedule)
    run(trainer, BatchStream(replicate.env.data, replicate.exp.train.batch_size, 0), 0, replicate.k)
    for name, value in model.state_dict().items():
        assert torch.equal(value, wk[name]), name


def test_level_starts_from_wk_times_mask(replicate, monkeypatch):
    starts = {}
    real_run = stages.run

    def spy(trainer, stream, start, end, **kw):
        starts[start] = {n: p.detach().clone() for n, p in trainer.model.state_dict().items()}
        return real_run(trainer, stream, start, end, **kw)

    replicate.trunk()
    monkeypatch.setattr(stages, "run", spy)
    replicate.level(1)
    wk, masks = replicate.state("wk.pt"), replicate.masks(1)
    start = starts[replicate.k]
    for name, value in wk.items():
        expected = value * masks[name] if name in masks else value  # BatchNorm state rewinds too
        assert torch.equal(start[name], expected), name
    assert 0 < sum(int(m.sum()) for m in masks.values()) < sum(m.numel() for m in masks.values())


def test_rerun_uses_cache(replicate):
    first = replicate.branch(default_plugins().perturbation("identity"), {}, 1, 0)
    before = list(replicate.env.events)
    again = replicate.branch(default_plugins().perturbation("identity"), {}, 1, 0)
    assert again == first
    assert replicate.env.events == before  # read back from done.json: nothing new was trained
    fresh = stages.Replicate(replicate.exp, 0, stages.Env(replicate.env.cache, replicate.env.device,
                                                          replicate.env.data))
    assert fresh.branch(default_plugins().perturbation("identity"), {}, 1, 0) == first
    assert stages.StageEvent("cached", "identity at level 1", 0) in fresh.env.events
    assert not any(e.kind == "trained" for e in fresh.env.events)
    assert first["drop"] == 0.0
