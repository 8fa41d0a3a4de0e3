"""What is known of each dataset without loading it: input channels, classes, example counts.

The one registry of dataset facts: `bench presets`, the sweep planner and the level tables size a model
from it (so none of them generates or downloads data), and bench/data.py loads only what it lists. An
unknown dataset name is refused here, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.config import DataConfig
from bench.errors import unknown


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    in_channels: int
    num_classes: int
    # a fixed dataset's example counts; None for a generated one, whose counts are the DataConfig's own
    train_examples: int | None = None
    test_examples: int | None = None

    def train_size(self, cfg: DataConfig) -> int:
        """Training examples under ``cfg`` (a generated dataset has as many as it asks for)."""
        return cfg.train_examples if self.train_examples is None else self.train_examples

    def test_size(self, cfg: DataConfig) -> int:
        return cfg.test_examples if self.test_examples is None else self.test_examples


DATASETS = {
    d.name: d
    for d in [
        DatasetInfo("mnist1d", in_channels=1, num_classes=10),  # generated offline (bench/data.py)
        DatasetInfo("cifar10", in_channels=3, num_classes=10, train_examples=50000, test_examples=10000),
    ]
}


def dataset_info(name: str) -> DatasetInfo:
    """The facts of dataset ``name``; an unknown name is a one-line error listing the known ones."""
    if name not in DATASETS:
        raise unknown("dataset", name, list(DATASETS))
    return DATASETS[name]

