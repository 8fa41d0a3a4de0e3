"""The stages of one replicate: what is saved, what each level starts from."""

import pytest
import torch

from bench import execute, models, stages
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
    real_run = execute.run

    def spy(trainer, stream, start, end, **kw):
        starts[start] = {n: p.detach().clone() for n, p in trainer.model.state_dict().items()}
        return real_run(trainer, stream, start, end, **kw)

    replicate.trunk()
    monkeypatch.setattr(execute, "run", spy)
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
    assert execute.StageEvent("cached", "identity at level 1", 0) in fresh.env.events
    assert not any(e.kind == "trained" for e in fresh.env.events)
    assert first["drop"] == 0.0


def _spy_starts(monkeypatch) -> dict:
    starts = {}
    real_run = execute.run

    def spy(trainer, stream, start, end, **kw):
        starts[start] = ({n: p.detach().clone() for n, p in trainer.model.state_dict().items()},
                         [trainer.schedule.lr_at(s) for s in (start, end - 1)])
        return real_run(trainer, stream, start, end, **kw)

    monkeypatch.setattr(execute, "run", spy)
    return starts


def test_lottery_ticket_starts_at_step_0_from_w0_times_mask(replicate, monkeypatch):
    replicate.level(1)
    starts = _spy_starts(monkeypatch)
    record = replicate.branch(default_plugins().perturbation("lottery-ticket"), {}, 1, 0)
    assert list(starts) == [0]  # trained 0 -> T, not k -> T
    state, (lr_first, lr_last) = starts[0]
    w0, masks = replicate.state("w0.pt"), replicate.masks(1)
    for name, value in w0.items():
        expected = value * masks[name] if name in masks else value  # BatchNorm and biases at W_0 too
        assert torch.equal(state[name], expected), name
    assert lr_first == replicate.exp.train.lr and lr_last < lr_first  # the full schedule, from its start
    assert record["stage"] == "branch" and record["perturbation"] == "lottery-ticket"
    stored = replicate.branch_record("lottery-ticket", {}, 1, 0)
    assert stored["accuracy"] == record["accuracy"] and "drop" in stored


def test_rewind_to_init_keeps_batchnorm_at_wk_and_starts_at_k(replicate, monkeypatch):
    replicate.level(1)
    starts = _spy_starts(monkeypatch)
    replicate.branch(default_plugins().perturbation("rewind-to-init"), {}, 1, 0)
    assert list(starts) == [replicate.k]
    state = starts[replicate.k][0]
    w0, wk, masks = replicate.state("w0.pt"), replicate.state("wk.pt"), replicate.masks(1)
    for name in wk:
        expected = w0[name] * masks[name] if name in masks else wk[name]
        assert torch.equal(state[name], expected), name


def test_bad_start_attribute_names_the_plugin():
    from bench.errors import PluginError
    from bench.perturbation import start_point

    class Odd:
        name = "odd"
        start = "middle"

    with pytest.raises(PluginError, match="Perturbation 'odd' has start = 'middle'"):
        start_point(Odd())


def test_a_job_trains_with_the_data_order_it_is_given(tmp_path, replicate):
    """``Job.data_seed`` (default: the replicate's seed) sets the data order alone: the seed's own order gives
    bit-identical weights to the default, another order other weights from the same W_0."""
    def trunk(folder: str, data_seed: int | None) -> dict:
        env = stages.Env(cache=tmp_path / folder, device=replicate.env.device, data=replicate.env.data)
        rep = stages.Replicate(replicate.exp, 0, env)
        job = rep.trunk_job()
        job.data_seed = data_seed
        stages.execute([job], env)
        return rep.state("final.pt")

    default, same, other = trunk("default", None), trunk("same", 0), trunk("other", 7)
    assert all(torch.equal(default[n], same[n]) for n in default)
    assert not all(torch.equal(default[n], other[n]) for n in default)
