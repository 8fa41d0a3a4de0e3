"""The idempotent stages of one replicate: dense trunk -> IMP levels -> perturbation branches.

Each stage writes its outputs atomically into its own folder and finishes by
writing ``done.json``. A stage whose ``done.json`` exists is read, not rerun;
a stage interrupted mid-training resumes from its checkpoint and ends with the
same numbers as an uninterrupted run.

Layout under ``<cache>/experiments/<config hash>/seed-<s>/``::

    trunk/    w0.pt  wk.pt  final.pt  done.json        (level 0: the dense network)
    level-L/  mask.pt  final.pt  done.json              (the ticket at level L)
    level-L/branch/<perturbation>-<params>-p<seed>/done.json
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from bench import models
from bench.cache import load_json, load_tensors, save_json, save_tensors
from bench.config import Experiment, config_hash, digest, parse_step
from bench.data import BatchStream, Dataset
from bench.perturbation import Context, perturb
from bench.pruning import ones_like, prune, report
from bench.seeding import derive_seed, generator
from bench.training import Schedule, Trainer, evaluate, run

ProgressFactory = Callable[[str, int], Callable[[int], None]]


def _no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda step: None


@dataclass
class Env:
    """Where and how to run; nothing here changes a result."""

    cache: Path
    device: torch.device
    data: Dataset
    progress: ProgressFactory = _no_progress
    checkpoint_every: int | None = None  # steps; default one epoch
    log: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        if line not in self.log:  # a stage read twice (trunk, then via a level) counts once
            self.log.append(line)


class Replicate:
    """All stages of one experiment for one replicate seed."""

    def __init__(self, experiment: Experiment, seed: int, env: Env):
        self.exp, self.seed, self.env = experiment, seed, env
        self.hash = config_hash(experiment)
        self.root = env.cache / "experiments" / self.hash / f"seed-{seed}"
        train_size = env.data.x_train.shape[0]
        self.per_epoch = experiment.iterations_per_epoch(train_size)
        self.T = parse_step(experiment.train.steps, self.per_epoch)
        self.k = parse_step(experiment.rewind, self.per_epoch)
        milestones = tuple(parse_step(m, self.per_epoch) for m in experiment.train.milestones)
        self.schedule = Schedule(experiment.train.lr, experiment.train.gamma, milestones)
        self.every = env.checkpoint_every or self.per_epoch

    # -- helpers -------------------------------------------------------------------------------
    def new_model(self) -> torch.nn.Module:
        model = models.build_model(self.exp.model, self.env.data.in_channels, self.env.data.num_classes)
        model = model.to(self.env.device)
        if self.env.device.type == "cuda" and self.exp.model.name == "cifar_resnet":
            model = model.to(memory_format=torch.channels_last)
        return model

    def prunable(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        names = models.prunable_names(self.new_model())
        return {n: state[n] for n in names}

    def _train(self, label: str, model: torch.nn.Module, masks, start: int, folder: Path,
               snapshots: dict[int, Path] | None = None) -> tuple[float, float]:
        """Train ``model`` from ``start`` to T (resuming if a checkpoint exists); return (accuracy, seconds)."""
        trainer = Trainer(model, self.exp.train, self.schedule, masks)
        stream = BatchStream(self.env.data, self.exp.train.batch_size, self.seed)
        checkpoint = folder / "checkpoint.pt"
        resumed = checkpoint.exists()
        update = self.env.progress(f"{label} seed {self.seed}" + (" (resumed)" if resumed else ""), self.T - start)
        t0 = time.perf_counter()
        run(trainer, stream, start, self.T, checkpoint=checkpoint, checkpoint_every=self.every,
            snapshots={**(snapshots or {}), self.T: folder / "final.pt"},
            progress=lambda step: update(step - start))
        seconds = time.perf_counter() - t0
        accuracy = evaluate(model, self.env.data.x_test, self.env.data.y_test)
        checkpoint.unlink(missing_ok=True)
        return accuracy, seconds

    def _cached(self, folder: Path, label: str) -> dict | None:
        done = folder / "done.json"
        if done.exists():
            self.env.note(f"cached: {label} seed {self.seed}")
            return load_json(done)
        return None

    # -- stages --------------------------------------------------------------------------------
    def trunk(self) -> dict:
        """Level 0: initialise W_0 from the seed, train densely 0 -> T, keep W_0, W_k and the end."""
        folder = self.root / "trunk"
        if (done := self._cached(folder, "dense trunk")) is not None:
            return done
        model = self.new_model()
        models.initialize(model, generator(self.seed, "init"))
        model.to(self.env.device)
        accuracy, seconds = self._train("dense trunk", model, None, 0, folder,
                               snapshots={0: folder / "w0.pt", self.k: folder / "wk.pt"})
        record = {"stage": "trunk", "accuracy": accuracy, "steps": self.T, "rewind_step": self.k,
                  "seconds": seconds, "config_hash": self.hash, "seed": self.seed}
        save_json(folder / "done.json", record)
        self.env.note(f"trained: dense trunk seed {self.seed}")
        return record

    def state(self, name: str) -> dict[str, torch.Tensor]:
        return load_tensors(self.root / "trunk" / name, self.env.device)

    def level(self, level: int) -> dict:
        """The ticket at ``level``: prune level-1's end weights, rewind survivors to W_k, train k -> T."""
        if level == 0:
            return self.trunk()
        folder = self.root / f"level-{level}"
        if (done := self._cached(folder, f"IMP level {level}")) is not None:
            return done
        self.level(level - 1)
        previous = self.root / ("trunk" if level == 1 else f"level-{level - 1}")
        prev_weights = self.prunable(load_tensors(previous / "final.pt"))
        prev_masks = ones_like(prev_weights) if level == 1 else load_tensors(previous / "mask.pt")
        masks_path = folder / "mask.pt"
        if not masks_path.exists():
            save_tensors(masks_path, prune(prev_weights, prev_masks, self.exp.prune.fraction))
        masks = load_tensors(masks_path)
        model = self.new_model()
        model.load_state_dict(self.state("wk.pt"))
        accuracy, seconds = self._train(f"IMP level {level}", model, masks, self.k, folder)
        record = {"stage": "level", "level": level, "accuracy": accuracy, "sparsity": report(masks),
                  "seconds": seconds, "config_hash": self.hash, "seed": self.seed}
        save_json(folder / "done.json", record)
        self.env.note(f"trained: IMP level {level} seed {self.seed}")
        return record

    def masks(self, level: int) -> dict[str, torch.Tensor]:
        if level == 0:
            return ones_like(self.prunable(self.state("wk.pt")))
        return load_tensors(self.root / f"level-{level}" / "mask.pt", self.env.device)

    def branch(self, registered: Any, params: dict[str, Any], level: int, perturbation_seed: int) -> dict:
        """Perturb the level's rewound weights W' = M * P(W_k), retrain k -> T, measure accuracy."""
        pert = registered.perturbation
        key = f"{pert.name}-{digest(params, 8)}-p{perturbation_seed}"
        folder = self.root / (f"level-{level}" if level else "trunk") / "branch" / key
        if (done := self._cached(folder, f"{pert.name} at level {level}")) is not None:
            return done
        ticket = self.level(level)
        masks = {n: m.to(self.env.device) for n, m in self.masks(level).items()}
        wk = self.state("wk.pt")
        w0 = self.prunable(self.state("w0.pt"))
        rewind = self.prunable(wk)
        ctx_seed = derive_seed(self.seed, "perturb", perturbation_seed)
        ctx = Context(
            rewind={n: t.clone() for n, t in rewind.items()},
            init={n: t.clone() for n, t in w0.items()},
            mask={n: m.clone() for n, m in masks.items()},
            generator=generator(ctx_seed, device=self.env.device),
            params=dict(params), seed=ctx_seed,
            initializer=models.init_tensor,
            init_stds={n: models.init_std(t) for n, t in rewind.items()},
        )
        applied = perturb(pert, ctx)
        model = self.new_model()
        model.load_state_dict({**wk, **applied.weights})
        accuracy, seconds = self._train(pert.name, model, masks, self.k, folder)
        record = {
            "stage": "branch", "perturbation": pert.name, "params": params,
            "perturbation_seed": perturbation_seed, "generator_seed": ctx_seed, "level": level,
            "accuracy": accuracy, "ticket_accuracy": ticket["accuracy"],
            "drop": ticket["accuracy"] - accuracy,
            "effective_std": applied.effective_std, "relative_change": applied.relative_change,
            "seconds": seconds, "config_hash": self.hash, "seed": self.seed,
        }
        save_json(folder / "done.json", record)
        (folder / "final.pt").unlink(missing_ok=True)  # branch weights are not reused; keep the cache small
        self.env.note(f"trained: {pert.name} at level {level} seed {self.seed}")
        return record


def clear(cache: Path, experiment: Experiment) -> None:
    shutil.rmtree(cache / "experiments" / config_hash(experiment), ignore_errors=True)
