import torch

from bench import models
from bench.config import ModelConfig, TrainConfig
from bench.data import BatchStream, Dataset, augment
from bench.pruning import ones_like, prune
from bench.seeding import generator
from bench.training import Schedule, Trainer, evaluate, run


def _setup(seed=0, masked=True):
    g = torch.Generator().manual_seed(123)
    data = Dataset(torch.randn(300, 1, 24, generator=g), torch.randint(0, 10, (300,), generator=g),
                   torch.randn(50, 1, 24, generator=g), torch.randint(0, 10, (50,), generator=g), 10)
    model = models.build_model(ModelConfig("resnet1d", (4, 8), 1), 1, 10)
    models.initialize(model, generator(seed, "init"))
    masks = None
    if masked:
        names = models.prunable_names(model)
        params = dict(model.named_parameters())
        weights = {n: params[n].detach() for n in names}
        masks = prune(weights, ones_like(weights), 0.7)
    return data, model, masks


def test_masked_weights_stay_exactly_zero():
    data, model, masks = _setup()
    cfg = TrainConfig(batch_size=32, weight_decay=1e-3)
    trainer = Trainer(model, cfg, Schedule(0.1, 0.1, (5,)), masks)
    run(trainer, BatchStream(data, 32, 0), 0, 12)
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert torch.all(params[name][mask == 0] == 0)
        assert torch.any(params[name][mask == 1] != 0)


def test_schedule_steps():
    s = Schedule(0.1, 0.1, (10, 20))
    assert [s.lr_at(t) for t in (0, 9, 10, 19, 20, 99)] == [0.1, 0.1, 0.1 * 0.1, 0.1 * 0.1, 0.1 * 0.1 ** 2,
                                                             0.1 * 0.1 ** 2]


def test_batch_stream_is_a_function_of_seed_and_step():
    data, _, _ = _setup()
    data.augment = False
    a, b = BatchStream(data, 32, 7), BatchStream(data, 32, 7)
    for step in range(25):  # walk one stream through several epochs
        a.batch(step)
    for step in (24, 3, 11):  # the other jumps straight there (fast-forward)
        assert torch.equal(a.batch(step)[0], b.batch(step)[0])
    assert not torch.equal(BatchStream(data, 32, 8).batch(0)[0], b.batch(0)[0])
    # every example appears once per epoch; the last batch of an epoch may be short
    seen = torch.cat([b.batch(s)[1] for s in range(b.per_epoch)])
    assert seen.numel() == 300


def test_fast_forward_lr_at_rewind_point():
    """Starting at k uses the schedule's value at k, not its value at 0."""
    data, model, masks = _setup()
    sched = Schedule(0.1, 0.1, (5,))
    trainer = Trainer(model, TrainConfig(batch_size=32), sched, masks)
    run(trainer, BatchStream(data, 32, 0), 7, 8)
    assert trainer.optimizer.param_groups[0]["lr"] == sched.lr_at(7) == 0.1 * 0.1


def test_resume_is_bit_identical(tmp_path):
    cfg = TrainConfig(batch_size=32)
    sched = Schedule(0.1, 0.1, (9,))
    data, straight, masks = _setup()
    run(Trainer(straight, cfg, sched, masks), BatchStream(data, 32, 0), 3, 15)

    _, first, _ = _setup()
    ckpt = tmp_path / "checkpoint.pt"
    run(Trainer(first, cfg, sched, masks), BatchStream(data, 32, 0), 3, 8, checkpoint=ckpt, checkpoint_every=4)
    assert ckpt.exists()  # saved at step 4, the last multiple of 4 before 8
    _, resumed, _ = _setup(seed=99)  # different start: everything must come from the checkpoint
    run(Trainer(resumed, cfg, sched, masks), BatchStream(data, 32, 0), 3, 15, checkpoint=ckpt, checkpoint_every=4)
    for (n, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), n


def test_augment_crop_and_flip():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float).view(2, 1, 6, 6)
    g = torch.Generator().manual_seed(0)
    out = augment(x, g, pad=0)  # no padding: only flips remain
    for i in range(2):
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1))
    out = augment(x, torch.Generator().manual_seed(1), pad=2)
    assert out.shape == x.shape
    assert torch.equal(augment(x, torch.Generator().manual_seed(1), pad=2), out)


def test_evaluate_counts_correct():
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
        model.bias.zero_()
    x = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [2.0, 0, 0], [0, 3.0, 0]])
    assert evaluate(model, x, torch.tensor([0, 1, 1, 1])) == 75.0


def test_a_checkpoint_that_does_not_fit_leaves_nothing_of_itself_in_the_model(tmp_path):
    """A refused checkpoint is moved aside and training starts from the given state, not a half-loaded one."""
    import warnings

    from bench.cache import save_tensors

    cfg, sched = TrainConfig(batch_size=32), Schedule(0.1, 0.1, ())
    data, straight, masks = _setup()
    run(Trainer(straight, cfg, sched, masks), BatchStream(data, 32, 0), 0, 4)

    _, model, _ = _setup()
    bad = {k: v + 1 for k, v in model.state_dict().items()}
    bad["fc.weight"] = torch.zeros(3, 3)  # one tensor of the wrong shape: the rest would load
    ckpt = tmp_path / "checkpoint.pt"
    save_tensors(ckpt, {"step": 2, "model": bad, "optimizer": {}, "identity": None})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(Trainer(model, cfg, sched, masks), BatchStream(data, 32, 0), 0, 4, checkpoint=ckpt, checkpoint_every=2)
    for (name, a), b in zip(straight.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name
