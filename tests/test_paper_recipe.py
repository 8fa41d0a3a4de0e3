"""The paper preset against OpenLTH's defaults (issue 12), with OpenLTH's values written down here, not imported.

OpenLTH (facebookresearch/open_lth): models/cifar_resnet.py and models/bn_initializers.py (BatchNorm
weight uniform [0, 1)), models/initializers.py (Kaiming normal on conv/linear weights only, so the
linear bias keeps nn.Linear's default), datasets/cifar10.py (ImageNet mean/std; RandomCrop(32, 4) on
the PIL image, so black padding before Normalize), fp32 training, pruning/sparse_global.py.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from bench import models
from bench.cache import save_tensors
from bench.config import DataConfig, Experiment, PruneConfig, TrainConfig, check_schedule, validate
from bench.data import BatchStream, Dataset, augment, load_dataset
from bench.errors import BenchError
from bench.presets import PRESETS
from bench.seeding import generator
from bench.training import autocast_dtype

OPENLTH_MEAN = (0.485, 0.456, 0.406)
OPENLTH_STD = (0.229, 0.224, 0.225)
PAPER = PRESETS["cifar10-resnet20"].experiment


def _bn_weights(model: nn.Module) -> torch.Tensor:
    return torch.cat([m.weight.detach().flatten() for m in model.modules()
                      if isinstance(m, nn.modules.batchnorm._BatchNorm)])


def _paper_model(seed: int = 0) -> nn.Module:
    model = models.build_model(PAPER.model, 3, 10)
    models.initialize(model, generator(seed, "init"), PAPER.model)
    return model


def _fake_cifar(data_dir, n: int = 24) -> dict[str, torch.Tensor]:
    """A tiny stand-in for the converted CIFAR-10 tensor file, so no download is needed."""
    g = torch.Generator().manual_seed(5)
    raw = {"x": torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
           "y": torch.randint(0, 10, (n,), generator=g),
           "x_test": torch.randint(0, 256, (8, 3, 32, 32), generator=g, dtype=torch.uint8),
           "y_test": torch.randint(0, 10, (8,), generator=g)}
    save_tensors(data_dir / "cifar10" / "cifar10-tensors.pt", raw)
    return raw


# -- 1. the paper preset's choices are OpenLTH's --------------------------------------------------------
def test_batchnorm_weights_uniform_in_unit_interval():
    bn = _bn_weights(_paper_model())
    assert bn.min() >= 0 and bn.max() <= 1 and not torch.all(bn == 1)
    assert 0.35 < float(bn.mean()) < 0.65  # uniform: mean 1/2 over ~700 draws
    model = _paper_model()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            assert torch.all(m.bias == 0) and torch.all(m.running_mean == 0) and torch.all(m.running_var == 1)


def test_fc_bias_pytorch_default_bound_and_seeded():
    model = _paper_model()
    bound = 1 / math.sqrt(model.fc.in_features)  # nn.Linear.reset_parameters: 1/sqrt(fan_in) = 1/8
    bias = model.fc.bias.detach()
    assert torch.all(bias.abs() <= bound) and torch.all(bias != 0)
    assert torch.equal(bias, _paper_model().fc.bias.detach())  # from the seeded generator
    assert not torch.equal(bias, _paper_model(seed=1).fc.bias.detach())
    # construction uses PyTorch's own init (global RNG); initialize overwrites all of it without touching it
    fresh = models.build_model(PAPER.model, 3, 10)
    state = torch.get_rng_state()
    models.initialize(fresh, generator(0, "init"), PAPER.model)
    assert torch.equal(state, torch.get_rng_state())
    with torch.random.fork_rng():
        torch.manual_seed(123)  # and the global RNG has no say in the values
        assert torch.equal(_paper_model().fc.bias.detach(), bias)
    # Kaiming normal on the weights (fan-in), unchanged
    w = model.fc.weight.detach()
    assert abs(float(w.std()) - math.sqrt(2 / 64)) < 0.03


def test_normalisation_and_black_padding(tmp_path):
    raw = _fake_cifar(tmp_path)
    data = load_dataset(PAPER.data, tmp_path, torch.device("cpu"))
    mean = torch.tensor(OPENLTH_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENLTH_STD).view(1, 3, 1, 1)
    assert torch.allclose(data.x_train, (raw["x"].float() / 255 - mean) / std)
    black = (0 - torch.tensor(OPENLTH_MEAN)) / torch.tensor(OPENLTH_STD)  # ToTensor(black) = 0, then Normalize
    assert torch.allclose(data.pad_value, black)
    # white images: after crop + flip every pixel is white or padding, and padding is normalised black
    white = ((1 - mean) / std).expand(64, 3, 32, 32).contiguous()
    out = augment(white, torch.Generator().manual_seed(0), fill=data.pad_value)
    is_white = torch.isclose(out, white)
    is_black = torch.isclose(out, black.view(1, 3, 1, 1).expand_as(out))
    assert torch.all(is_white | is_black) and is_black.any()
    # the batch stream pads with it too
    stream = BatchStream(data, 8, 0)
    x, _ = stream.batch(0)
    assert x.shape == (8, 3, 32, 32)


def test_fp32_selected_for_the_paper_preset_bf16_on_request():
    assert PAPER.train.precision == "fp32"
    assert autocast_dtype(PAPER.train.precision, "cuda") is None
    assert autocast_dtype(PAPER.train.precision, "cpu") is None
    assert autocast_dtype("auto", "cuda") is torch.bfloat16  # the original CUDA behaviour, kept for MNIST-1D
    assert autocast_dtype("auto", "cpu") is None
    assert autocast_dtype("bf16", "cuda") is torch.bfloat16


def test_paper_preset_fields_are_openltHs():
    assert (PAPER.data.normalization, PAPER.data.pad) == ("imagenet", "black")
    assert (PAPER.model.batchnorm_init, PAPER.model.fc_bias_init) == ("uniform", "pytorch")
    assert PAPER.prune.ties == "threshold" and PAPER.train.precision == "fp32"


@pytest.mark.parametrize("name", ["mnist1d-resnet", "smoke"])
def test_mnist_presets_keep_the_original_choices(name):
    exp = PRESETS[name].experiment
    assert exp.data.normalization == "cifar10" and exp.data.pad == "zero-normalized"
    assert (exp.model.batchnorm_init, exp.model.fc_bias_init) == ("ones", "zeros")
    assert exp.train.precision == "auto" and exp.prune.ties == "exact"
    plain, configured = (models.build_model(exp.model, 1, 10) for _ in range(2))
    models.initialize(plain, generator(0, "init"))
    models.initialize(configured, generator(0, "init"), exp.model)
    for (n, a), b in zip(plain.state_dict().items(), configured.state_dict().values()):
        assert torch.equal(a, b), n  # bit-identical to the initialiser before the new options
    assert torch.all(_bn_weights(plain) == 1) and torch.all(plain.fc.bias == 0)


def test_unknown_choice_is_refused():
    with pytest.raises(BenchError, match="Unknown prune.ties 'nearest'. Known: exact, threshold"):
        validate(Experiment(prune=PruneConfig(ties="nearest")))
    with pytest.raises(BenchError, match="Unknown train.precision"):
        validate(Experiment(train=TrainConfig(precision="fp16")))
    with pytest.raises(BenchError, match="Unknown data.normalization"):
        validate(Experiment(data=DataConfig(normalization="mnist")))


# -- 3. errors --------------------------------------------------------------------------------------------
def test_truncated_cifar_download_is_called_corrupt(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        (folder / name).write_bytes(b"truncated")
    with pytest.raises(BenchError) as err:
        load_dataset(PAPER.data, tmp_path, torch.device("cpu"))
    message = str(err.value)
    assert f"CIFAR-10 files in {folder} are corrupt or incomplete" in message
    assert "data_batch_1" in message and "delete that folder and download again" in message
    assert "\n" not in message


def test_absent_cifar_is_called_not_found(tmp_path):
    with pytest.raises(BenchError, match="CIFAR-10 not found in"):
        load_dataset(PAPER.data, tmp_path, torch.device("cpu"))


def test_rewind_point_must_be_before_the_end():
    with pytest.raises(BenchError, match=r"^rewind point k = 500 iterations is not before the end of training "
                                         r"T = 400 iterations \(10 iterations per epoch\); "):
        check_schedule(400, 500, 10)
    with pytest.raises(BenchError, match="k = 400 iterations"):
        check_schedule(400, 400, 10)
    check_schedule(400, 399, 10)


def test_replicate_refuses_k_not_before_t(tmp_path, data_dir):
    from bench import stages

    exp = PRESETS["smoke"].experiment
    data = load_dataset(exp.data, data_dir, torch.device("cpu"))
    short = exp.with_overrides(train={"steps": "1ep", "milestones": ()}, data={})  # 10 iterations = k
    env = stages.Env(cache=tmp_path, device=torch.device("cpu"), data=data)
    with pytest.raises(BenchError, match="rewind point k = 10 iterations is not before the end of training "
                                         "T = 10 iterations"):
        stages.Replicate(short, 0, env)
    assert not (tmp_path / "experiments").exists()  # refused before anything was written


# -- 5. blur after augmentation ---------------------------------------------------------------------------
def _pretrain_ctx(data: Dataset, factor: int = 4):
    from bench.pretraining import PretrainContext

    return PretrainContext(data=data, spatial_dims=data.x_train.dim() - 2, num_classes=10,
                           params={"factor": factor, "group": "auto", "steps": "1it"},
                           generator=torch.Generator().manual_seed(0), seed=0)


def _stream(data: Dataset, task):
    from bench.experiments.pretrain import TaskStream, task_data

    outputs = task.outputs or 10
    return TaskStream(BatchStream(task_data(data, task, outputs, "t"), 16, 3), task, outputs, "t", 7)


def test_blur_without_augmentation_order_does_not_matter():
    from bench.pretraining import blur
    from earlyphase_bench_plugins.pretraining import Blur

    g = torch.Generator().manual_seed(0)
    data = Dataset(torch.randn(64, 1, 40, generator=g), torch.randint(0, 10, (64,), generator=g),
                   torch.randn(8, 1, 40), torch.randint(0, 10, (8,)), 10)
    task = Blur().prepare(_pretrain_ctx(data))
    assert task.x_train is not None and task.batch is None  # MNIST-1D: the original path, unchanged
    plain = BatchStream(data, 16, 3)
    blurred_first = _stream(data, task)
    for step in (0, 5, 9):
        x_then, y_then = blurred_first.batch(step)
        x_raw, y_raw = plain.batch(step)
        assert torch.equal(x_then, blur(x_raw, 4)) and torch.equal(y_then, y_raw)


def test_blur_follows_crop_and_flip_on_augmented_data(tmp_path):
    from bench.pretraining import blur
    from earlyphase_bench_plugins.pretraining import Blur, BlurRotation

    _fake_cifar(tmp_path, n=32)
    data = load_dataset(PAPER.data, tmp_path, torch.device("cpu"))
    task = Blur().prepare(_pretrain_ctx(data))
    assert task.x_train is None and task.batch is not None
    plain = BatchStream(data, 16, 3)
    stream = _stream(data, task)
    for step in (0, 3):
        x_aug, y = plain.batch(step)  # crop (black padding) + flip
        x, y2 = stream.batch(step)
        assert torch.equal(x, blur(x_aug, 4)) and torch.equal(y, y2)
    # blurring before augmenting differs: the padding would stay sharp
    early = BatchStream(Dataset(blur(data.x_train, 4), data.y_train, data.x_test, data.y_test, 10, True,
                                data.pad_value), 16, 3)
    assert not torch.allclose(early.batch(0)[0], stream.batch(0)[0])
    rot = BlurRotation().prepare(_pretrain_ctx(data))
    assert rot.x_train is None and rot.outputs == 4


# -- 5. pre-training length per preset --------------------------------------------------------------------
def test_pretraining_steps_default_per_preset():
    from bench.presets import pretrain_defaults
    from bench.pretraining import resolve
    from earlyphase_bench_plugins.pretraining import Blur

    assert PRESETS["mnist1d-resnet"].pretrain_steps == "10ep"  # its committed results used 10ep
    assert PRESETS["cifar10-resnet20"].pretrain_steps == "16000it"
    paper = PRESETS["cifar10-resnet20"]
    defaults = pretrain_defaults(paper, paper.experiment)
    # OpenLTH's pre-training hyperparameters default to the training ones: 0.1, no warm-up (milestones never reached)
    assert resolve(Blur(), {}, defaults) == {"factor": 4, "steps": "16000it", "lr": 0.1, "warmup": "0it",
                                             "schedule": "constant"}
    assert resolve(Blur(), {"steps": "60it"}, defaults)["steps"] == "60it"
    assert resolve(Blur(), {})["steps"] == "10ep"
