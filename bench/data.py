"""Datasets as tensors on the run's device, and the seeded batch stream the training loop reads.

No DataLoader: the whole training set is one tensor on the device; each step's
batch is an index into it, and augmentation runs on the whole batch at once.
The batch for step t is a pure function of (seed, t), so training can start at
any step and a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench.cache import load_tensors, save_tensors
from bench.config import DataConfig
from bench.datasets import dataset_info
from bench.errors import BenchError
from bench.seeding import generator

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # OpenLTH normalises CIFAR-10 with these
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZATIONS = {"cifar10": (CIFAR_MEAN, CIFAR_STD), "imagenet": (IMAGENET_MEAN, IMAGENET_STD)}
MNIST1D_SEED = 42  # the dataset itself is fixed; replicate seeds vary only training
# The validation examples: the same generator, run again with a seed of their own, so they share no draw
# with the training and test examples. Every choice (the default preset's search) is made on them.
MNIST1D_VALIDATION_SEED = 4242


@dataclass
class Dataset:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    augment: bool = False
    pad_value: torch.Tensor | None = None  # per-channel fill of the crop's padding; None = 0
    x_val: torch.Tensor | None = None  # validation examples (None: the dataset has none)
    y_val: torch.Tensor | None = None
    order: str = "shuffled"  # shuffled: a seeded permutation per epoch; sequential: stored order (DataConfig.order)

    @property
    def in_channels(self) -> int:
        return self.x_train.shape[1]

    def to(self, device: torch.device) -> "Dataset":
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return Dataset(*(t.to(device) for t in (self.x_train, self.y_train, self.x_test, self.y_test)),
                       self.num_classes, self.augment, move(self.pad_value), move(self.x_val), move(self.y_val),
                       self.order)


def load_dataset(cfg: DataConfig, data_dir: Path, device: torch.device, download: bool = False) -> Dataset:
    info = dataset_info(cfg.dataset)  # an unknown name is refused there, listing the known ones
    if info.name == "mnist1d":
        data = _mnist1d(cfg, data_dir)
    elif info.name == "cifar10":
        data = cifar_dataset(_cifar10(data_dir, download), cfg)
    else:  # registered in bench/datasets.py but never given a loader: the harness's bug, not bad input
        raise NotImplementedError(f"bench/data.py has no loader for dataset '{info.name}'")
    data.augment, data.order = cfg.augment, cfg.order
    return data.to(device)


def _mnist1d(cfg: DataConfig, data_dir: Path) -> Dataset:
    path = data_dir / f"mnist1d-{cfg.train_examples}-{cfg.test_examples}-seed{MNIST1D_SEED}.pt"
    if not path.exists():
        save_tensors(path, _generate_mnist1d(cfg.train_examples, cfg.test_examples))
    raw = load_tensors(path)
    data = Dataset(raw["x"].unsqueeze(1), raw["y"], raw["x_test"].unsqueeze(1), raw["y_test"],
                   dataset_info("mnist1d").num_classes)
    if cfg.validation_examples:
        vpath = data_dir / f"mnist1d-validation-{cfg.validation_examples}-seed{MNIST1D_VALIDATION_SEED}.pt"
        if not vpath.exists():
            save_tensors(vpath, _generate_mnist1d(cfg.validation_examples, 0, MNIST1D_VALIDATION_SEED))
        val = load_tensors(vpath)
        data.x_val, data.y_val = val["x"].unsqueeze(1), val["y"]
    return data


def _generate_mnist1d(train: int, test: int, seed: int = MNIST1D_SEED) -> dict[str, torch.Tensor]:
    from mnist1d.data import get_dataset_args, make_dataset

    total, classes = train + test, dataset_info("mnist1d").num_classes
    if total % classes:
        raise BenchError(f"MNIST-1D example counts must add up to a multiple of {classes} (examples are generated "
                         f"per class).")
    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = total, train / total, seed
    # mnist1d seeds numpy's and random's global generators; keep the caller's state intact
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {
        "x": torch.tensor(data["x"], dtype=torch.float32),
        "y": torch.tensor(data["y"], dtype=torch.long),
        "x_test": torch.tensor(data["x_test"], dtype=torch.float32),
        "y_test": torch.tensor(data["y_test"], dtype=torch.long),
    }


def _cifar10(data_dir: Path, download: bool) -> dict[str, torch.Tensor]:
    """The raw CIFAR-10 images (uint8, NCHW) and labels, converted once into a tensor file."""
    root = data_dir / "cifar10"
    cached = root / "cifar10-tensors.pt"
    if not cached.exists():
        import torchvision

        if not download:
            check_cifar10_files(root)
        try:
            train = torchvision.datasets.CIFAR10(str(root), train=True, download=download)
            test = torchvision.datasets.CIFAR10(str(root), train=False, download=download)
        except RuntimeError:
            raise BenchError(
                f"CIFAR-10 not found in {root}: rerun with --download (needs internet), or put the "
                f"extracted 'cifar-10-batches-py' folder there (or point --data-dir elsewhere)."
            ) from None
        except OSError as exc:
            raise BenchError(f"Could not download CIFAR-10 into {root}: {exc}. Download it elsewhere and copy "
                             f"'cifar-10-batches-py' there.") from None
        save_tensors(cached, {
            "x": torch.from_numpy(train.data).permute(0, 3, 1, 2).contiguous(),
            "y": torch.tensor(train.targets),
            "x_test": torch.from_numpy(test.data).permute(0, 3, 1, 2).contiguous(),
            "y_test": torch.tensor(test.targets),
        })
    return load_tensors(cached)


def check_cifar10_files(root: Path) -> None:
    """A present but damaged 'cifar-10-batches-py' (e.g. a truncated download) is named as such.

    torchvision reports it as "not found or corrupted"; telling the two apart saves a wrong fix. An
    absent folder is left to torchvision (and its "not found" message)."""
    import torchvision
    from torchvision.datasets.utils import check_integrity

    cls = torchvision.datasets.CIFAR10
    folder = root / cls.base_folder
    if not folder.is_dir():
        return
    bad = [name for name, md5 in (*cls.train_list, *cls.test_list) if not check_integrity(str(folder / name), md5)]
    if bad:
        raise BenchError(f"CIFAR-10 files in {folder} are corrupt or incomplete (md5 check failed: {', '.join(bad)}): "
                         f"delete that folder and download again (--download, or copy a fresh "
                         f"'cifar-10-batches-py' there).")


def normalization(cfg: DataConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The per-channel (mean, std) that CIFAR inputs are normalised with."""
    if cfg.normalization not in NORMALIZATIONS:
        raise BenchError(f"Unknown data.normalization '{cfg.normalization}'. Known: {', '.join(NORMALIZATIONS)}.")
    return NORMALIZATIONS[cfg.normalization]


def pad_value(cfg: DataConfig) -> torch.Tensor | None:
    """The crop padding's per-channel value after normalising: None (0, the mean) or normalised black."""
    if cfg.pad == "zero-normalized":
        return None
    if cfg.pad == "black":  # OpenLTH pads the PIL image with 0 before Normalize: (0 - mean) / std
        mean, std = normalization(cfg)
        return (0 - torch.tensor(mean)) / torch.tensor(std)
    raise BenchError(f"Unknown data.pad '{cfg.pad}'. Known: zero-normalized, black.")


def cifar_dataset(raw: dict[str, torch.Tensor], cfg: DataConfig) -> Dataset:
    """Normalised float tensors from raw uint8 CIFAR-shaped images (real or synthetic)."""
    mean_, std_ = normalization(cfg)
    mean = torch.tensor(mean_).view(1, 3, 1, 1)
    std = torch.tensor(std_).view(1, 3, 1, 1)

    def norm(x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255 - mean) / std

    return Dataset(norm(raw["x"]), raw["y"].long(), norm(raw["x_test"]), raw["y_test"].long(),
                   dataset_info("cifar10").num_classes, pad_value=pad_value(cfg))


class BatchStream:
    """The batch for any step, from (seed, step) alone. Epochs are seeded permutations."""

    def __init__(self, data: Dataset, batch_size: int, seed: int):
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.size = data.x_train.shape[0]
        self.per_epoch = math.ceil(self.size / batch_size)
        self._epoch, self._order = -1, None

    def order(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            if self.data.order == "sequential":  # every epoch reads the stored order, batch after batch
                perm = torch.arange(self.size)
            else:
                perm = torch.randperm(self.size, generator=generator(self.seed, "order", epoch))
            self._epoch, self._order = epoch, perm.to(self.data.x_train.device)
        return self._order

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = divmod(step, self.per_epoch)
        idx = self.order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        x, y = self.data.x_train[idx], self.data.y_train[idx]
        if self.data.augment:
            x = augment(x, generator(self.seed, "augment", step), fill=self.data.pad_value)
        return x, y


def augment(x: torch.Tensor, gen: torch.Generator, pad: int = 4, fill: torch.Tensor | None = None) -> torch.Tensor:
    """Random crop with padding and horizontal flip, for a whole NCHW batch at once.

    The padding is 0 (the mean, inputs being normalised), or ``fill[c]`` per channel c (e.g. the
    normalised value of black, which is what padding before normalising gives)."""
    n, _, h, w = x.shape
    shifts = torch.randint(0, 2 * pad + 1, (2, n), generator=gen).to(x.device)
    flips = (torch.rand(n, generator=gen) < 0.5).to(x.device)
    if fill is None:
        padded = F.pad(x, (pad, pad, pad, pad))
    else:  # copy x into a filled canvas: x's own values stay bit-exact
        padded = fill.to(x.device, x.dtype).view(1, -1, 1, 1).expand(n, -1, h + 2 * pad, w + 2 * pad).clone()
        padded[:, :, pad:pad + h, pad:pad + w] = x
    rows = (shifts[0].view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (shifts[1].view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    cols = torch.where(flips.view(n, 1, 1, 1), cols.flip(-1), cols)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    chans = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, chans, rows, cols]
