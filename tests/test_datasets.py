"""The dataset registry (bench/datasets.py): presets, the sweep planner and the loaders agree with it, and an
unknown dataset is refused with one line naming the known ones."""

import json
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner

from bench.cli import cli
from bench.config import DataConfig, ModelConfig
from bench.data import cifar_dataset, load_dataset
from bench.datasets import DATASETS, dataset_info
from bench.errors import BenchError
from bench.presets import PRESETS, describe

RESNET20 = ModelConfig("cifar_resnet", widths=(16, 32, 64), blocks_per_stage=3)


def on(preset_name: str, data: DataConfig, model: ModelConfig | None = None):
    """A preset moved onto another dataset (and model)."""
    preset = PRESETS[preset_name]
    exp = replace(preset.experiment, data=data, model=model or preset.experiment.model)
    return replace(preset, name=f"{preset.name}-on-{data.dataset}", experiment=exp)


def test_a_preset_moved_to_cifar10_is_described_with_its_channels_and_sizes():
    described = describe(on("smoke", DataConfig("cifar10"), RESNET20))
    # ResNet-20 with 3 input channels: its first convolution has 3 x 16 x 9 = 432 weights (144 with one
    # channel, the MNIST-1D shape, which would give 272,186 parameters)
    assert (described["parameters"], described["prunable"]) == (272474, 270896)
    assert described["dataset"] == "cifar10" and described["train_examples"] == 50000
    assert described["iterations_per_epoch"] == 782  # ceil(50,000 / smoke's batch of 64)


def test_the_sweep_planner_sizes_an_override_dataset_from_the_registry(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text('presets = ["smoke"]\nseeds = 1\n[perturbations]\nidentity = {}\n'
                    '[overrides]\ndata = { dataset = "cifar10" }\nmodel = { name = "cifar_resnet" }\n'
                    'train = { steps = "1ep" }\n')
    result = CliRunner().invoke(cli, ["sweep", str(path), "--dry-run", "--json", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    tickets = json.loads(result.stdout)["units"][0]
    # one epoch of 50,000 CIFAR-10 examples at batch 64 is 782 iterations (640 MNIST-1D examples: 10);
    # rewinding to 10it, each of smoke's 2 levels retrains 772
    assert tickets["iterations"] == 782 + 2 * 772


def test_unknown_dataset_is_refused_in_one_line_with_the_closest_match():
    with pytest.raises(BenchError) as caught:
        dataset_info("cifar100")
    assert str(caught.value) == "Unknown dataset 'cifar100'. Did you mean 'cifar10'? Known: cifar10, mnist1d."
    with pytest.raises(BenchError, match=r"^Preset 'smoke-on-mnist-1d': Unknown dataset 'mnist-1d'\. Did you mean "
                                         r"'mnist1d'\?"):
        describe(on("smoke", DataConfig("mnist-1d")))
    with pytest.raises(BenchError, match=r"^Unknown dataset 'cifar100'"):
        load_dataset(DataConfig("cifar100"), None, torch.device("cpu"))  # refused before any file is touched


def test_unknown_dataset_in_a_sweep_file_names_the_key(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text('presets = ["smoke"]\n[perturbations]\nidentity = {}\n'
                    '[overrides]\ndata = { dataset = "mnist-1d" }\n')
    result = CliRunner().invoke(cli, ["sweep", str(path), "--dry-run", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert result.output.endswith("overrides.data: Unknown dataset 'mnist-1d'. Did you mean 'mnist1d'? Known: "
                                  "cifar10, mnist1d.\n")


def test_loaded_data_matches_the_registry(data_dir):
    cfg = PRESETS["smoke"].experiment.data
    data = load_dataset(cfg, data_dir, torch.device("cpu"))
    info = DATASETS["mnist1d"]
    assert (data.in_channels, data.num_classes) == (info.in_channels, info.num_classes)
    assert (len(data.x_train), len(data.x_test)) == (info.train_size(cfg), info.test_size(cfg))
    raw = {"x": torch.zeros(2, 3, 32, 32, dtype=torch.uint8), "y": torch.zeros(2, dtype=torch.long)}
    cifar = cifar_dataset({**raw, "x_test": raw["x"], "y_test": raw["y"]}, DataConfig("cifar10"))
    info = DATASETS["cifar10"]
    assert (cifar.in_channels, cifar.num_classes) == (info.in_channels, info.num_classes)
