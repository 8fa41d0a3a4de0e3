"""The training loop: model, optimizer, masks and one batch step, in one place.

Training is step based. ``run`` trains from any step to any later step: the
learning-rate schedule and the data order are functions of the step, so
starting at the rewind point k needs no replay. The optimizer is created fresh
by each Trainer, so retraining from k starts with zero momentum (as OpenLTH
does). Pruned weights are multiplied by their mask after every optimizer step,
so they are exactly zero in every checkpoint.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.allocator import keep_freed_memory
from bench.cache import load_tensors, move_aside, save_tensors
from bench.config import TrainConfig
from bench.data import BatchStream
from bench.errors import BenchError


@dataclass(frozen=True)
class Schedule:
    """Step-wise learning rate: ``lr * gamma ** (number of milestones <= step)``, times a linear warm-up
    ``min(1, step / warmup)`` over the first ``warmup`` steps (OpenLTH's rule) when ``warmup`` > 0."""

    lr: float
    gamma: float
    milestones: tuple[int, ...]
    warmup: int = 0

    def lr_at(self, step: int) -> float:
        lr = self.lr * self.gamma ** sum(step >= m for m in self.milestones)
        return lr * min(1.0, step / self.warmup) if self.warmup else lr


Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The training loss: mean cross-entropy over the batch."""
    return F.cross_entropy(logits, y)


PRECISIONS = ("auto", "fp32", "bf16")


def autocast_dtype(precision: str, device_type: str) -> torch.dtype | None:
    """The autocast dtype of a training step, or None for plain fp32.

    ``auto`` keeps the original behaviour (bf16 autocast on CUDA, fp32 elsewhere); the paper and
    OpenLTH train in fp32, which the paper preset asks for explicitly."""
    if precision not in PRECISIONS:
        raise BenchError(f"Unknown train.precision '{precision}'. Known: {', '.join(PRECISIONS)}.")
    if precision == "bf16" or (precision == "auto" and device_type == "cuda"):
        return torch.bfloat16
    return None


class Trainer:
    """One model, its fresh optimizer (SGD, or Adam when the config asks), its masks, and the step that trains it.

    ``loss`` maps (logits, labels) to the scalar to minimise; several replicates trained as one
    model (bench.fused) pass their own."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, schedule: Schedule,
                 masks: dict[str, torch.Tensor] | None = None, compile: bool = False, loss: Loss = cross_entropy,
                 replicas: int = 1):
        self.model, self.schedule, self.loss = model, schedule, loss
        self.clip_norm, self.replicas = cfg.clip_norm, replicas
        keep_freed_memory()  # reuse the step's pages instead of faulting fresh ones in (bench/allocator.py)
        # compile the forward only: parameter names (and so masks and checkpoints) stay those of `model`
        self.forward = torch.compile(model) if compile else model
        self.device = next(model.parameters()).device
        if cfg.optimizer == "adam":  # Adam's default betas and eps, as MNIST-1D's notebooks use it
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr,
                                                                     weight_decay=cfg.weight_decay)
        else:
            self.optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                             weight_decay=cfg.weight_decay)
        params = dict(model.named_parameters())
        masks = masks or {}
        self.masked = [params[n] for n in masks]
        self.masks = [masks[n].to(self.device, params[n].dtype) for n in masks]
        self.params = list(params.values())
        self.mask_of = {id(p): m for p, m in zip(self.masked, self.masks)}
        self.apply_masks()
        model.train()  # set once: evaluation happens only after training, in its own mode
        dtype = autocast_dtype(cfg.precision, self.device.type)
        if self.device.type == "cuda":
            # fp32 means fp32 convolutions too: PyTorch lets cuDNN use TF32 by default on Ampere and later
            torch.backends.cudnn.allow_tf32 = cfg.precision != "fp32"
        self.autocast = (torch.autocast(self.device.type, dtype=dtype) if dtype is not None
                         else contextlib.nullcontext())

    @torch.no_grad()
    def apply_masks(self) -> None:
        if self.masked:
            torch._foreach_mul_(self.masked, self.masks)

    def step(self, step: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One SGD step at ``step``; returns the loss without synchronising the device."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.lr_at(step)
        with self.autocast:
            loss = self.loss(self.forward(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_norm:
            self.clip_gradients()
        self.optimizer.step()
        self.apply_masks()
        return loss.detach()

    @torch.no_grad()
    def clip_gradients(self) -> None:
        """Scale each replicate's gradient to at most ``clip_norm`` (L2 over its unpruned weights), as
        torch.nn.utils.clip_grad_norm_ would for that network alone. Replicate r owns block r of dimension 0 of
        every parameter (bench.fused), so replicates never share a factor; a factor of exactly 1 changes no bit."""
        r = self.replicas
        factor = (self.clip_norm / (self.gradient_norms() + 1e-6)).clamp(max=1.0)
        for p in self.params:
            if p.grad is not None:
                p.grad.unflatten(0, (r, -1)).mul_(factor.view(r, *([1] * p.grad.dim())))

    @torch.no_grad()
    def gradient_norms(self) -> torch.Tensor:
        """Each replicate's gradient L2 norm over its unpruned weights, shape (replicas,)."""
        r = self.replicas
        return torch.stack([(p.grad if id(p) not in self.mask_of else p.grad * self.mask_of[id(p)])
                            .unflatten(0, (r, -1)).pow(2).flatten(1).sum(1)
                            for p in self.params if p.grad is not None]).sum(0).sqrt()

    def state(self, step: int) -> dict:
        return {"step": step, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load(self, state: dict) -> int:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        return int(state["step"])


def run(trainer: Trainer, stream: BatchStream, start: int, end: int, *,
        checkpoint: Path | None = None, checkpoint_every: int = 0,
        snapshot: Callable[[int], None] | None = None, snapshot_steps: tuple[int, ...] = (),
        progress: Callable[[int], None] | None = None, identity: dict | None = None,
        accept: Callable[[dict], str | None] | None = None,
        losses: Callable[[int, torch.Tensor], None] | None = None) -> None:
    """Train steps [start, end). Resumes from ``checkpoint`` if one exists there.

    ``snapshot(step)`` is called with the model at each of ``snapshot_steps``
    (before that step is trained; ``end`` means after the last), e.g. to keep
    W_0 and W_k of the dense trunk. It must be idempotent: after a resume it
    may see a step it already saved.

    ``identity`` is saved in every checkpoint; ``accept(state)`` returns why a found checkpoint must not
    be resumed (None to resume it). A checkpoint that cannot be loaded or is refused is moved aside and
    training starts at ``start``.

    ``losses(step, loss)`` sees, after each step, the loss that step computed (a tensor on the device, not
    synchronised): a tracker reads it without any extra computation.
    """
    step = start
    if checkpoint is not None and checkpoint.exists():
        try:
            state = load_tensors(checkpoint, trainer.device)
            problem = accept(state) if accept else None
        except (BenchError, KeyError, TypeError, ValueError, AttributeError) as exc:
            state, problem = None, f"cannot be loaded ({type(exc).__name__})"
        if problem is None:
            # load_state_dict copies every tensor that fits before it complains about the rest: keep the start
            # state, so a refused checkpoint can never leave half of itself in the model
            start_state = {k: v.clone() for k, v in trainer.model.state_dict().items()}
            try:
                step = trainer.load(state)
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # wrong shapes or keys
                problem = f"does not fit this model ({type(exc).__name__})"
                trainer.model.load_state_dict(start_state)
                trainer.optimizer.state.clear()  # fresh, as at the start
                step = start
        if problem is not None:
            move_aside(checkpoint, f"checkpoint not resumed: {problem}")
    while step < end:
        if snapshot and step in snapshot_steps:
            snapshot(step)
        x, y = stream.batch(step)
        loss = trainer.step(step, x, y)
        step += 1
        if progress:
            progress(step)
        if losses:
            losses(step, loss)
        if checkpoint is not None and checkpoint_every and step % checkpoint_every == 0 and step < end:
            save_tensors(checkpoint, {**trainer.state(step), "identity": identity})
    if snapshot and end in snapshot_steps:
        snapshot(end)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2000) -> float:
    """Accuracy in percent of one model on (x, y), in eval mode (BatchNorm running statistics)."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    for i in range(0, x.shape[0], batch_size):
        correct += (model(x[i:i + batch_size]).argmax(-1) == y[i:i + batch_size]).sum()
    return 100.0 * int(correct) / x.shape[0]
