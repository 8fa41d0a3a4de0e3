"""How training reports its progress: a typed protocol between the code that trains and what shows it.

``Progress.start(label, total)`` is called when a stage (or a pre-training, a trace) begins; the handle it
returns hears ``advance(done)`` after every iteration and, for a stage that measures one, ``done(accuracies,
seconds)`` once at the end. Three optional calls tell a batch log more: ``announce(fields)`` what is about
to run, ``waiting(label, lock)`` and ``waited(label, seconds)`` a wait on another process's stage lock.
The command line implements it with bars or log lines (bench/cli/output.py, bench/batchlog.py), the
parallel runner by forwarding to its parent process (bench/experiments/parallel.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence


class StageProgress(Protocol):
    """One running stage's progress."""

    def advance(self, done: int) -> None:
        """``done`` of the stage's ``total`` iterations are trained (a count from the stage's start)."""

    def done(self, accuracies: Sequence[float], seconds: float) -> None:
        """The stage finished: the test accuracy of each replicate trained together, and the seconds it took.
        Stages that measure no accuracy (pre-training, trace) never call it."""


class Progress(Protocol):
    """Where progress goes: one :class:`StageProgress` per stage started. Only ``start`` is required; a class
    that subclasses Progress inherits the optional calls below as no-ops (call them through :func:`hook`,
    which also spares a Progress that defines only ``start``)."""

    def start(self, label: str, total: int) -> StageProgress: ...

    def announce(self, fields: Mapping[str, Any]) -> None:
        """An experiment is set up and about to train: preset, config hash, device, seeds, level, ..."""

    def waiting(self, label: str, lock: Path) -> None:
        """Stage ``label`` is locked by another process (``lock``): this one waits for it to finish."""

    def waited(self, label: str, seconds: float) -> None:
        """The wait announced by ``waiting`` is over: the lock was acquired after ``seconds``."""


def hook(progress: Progress, name: str) -> Callable[..., None]:
    """``progress``'s optional call ``name`` ("announce", "waiting", "waited"), or a no-op where it has none."""
    return getattr(progress, name, None) or (lambda *args: None)


class _Silent:
    def advance(self, done: int) -> None:
        pass

    def done(self, accuracies: Sequence[float], seconds: float) -> None:
        pass


class NoProgress(Progress):
    """Progress that shows nothing (the default outside the command line)."""

    def start(self, label: str, total: int) -> StageProgress:
        return _Silent()


NO_PROGRESS: Progress = NoProgress()


class Metrics(Protocol):
    """A tracker's feed (bench.experiments.tracking): numbers the stages compute anyway, read, never moved."""

    def stage(self, label: str, seed: int, step: int, record: dict) -> None:
        """A stage's record, at its end step T (trained now, or read from the cache)."""

    def loss(self, label: str, seeds: list[int], step: int, loss: float) -> None:
        """The training loss of a (fused) stage at a checkpoint point: the mean over the replicates."""
