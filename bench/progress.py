"""How training reports its progress: a typed protocol between the code that trains and what shows it.

``Progress.start(label, total)`` is called when a stage (or a pre-training, a trace) begins; the handle it
returns hears ``advance(done)`` after every iteration and, for a stage that measures one, ``done(accuracies,
seconds)`` once at the end. The command line implements it with bars or log lines (bench/cli/output.py),
the parallel runner by forwarding to its parent process (bench/experiments/parallel.py).
"""

from __future__ import annotations

from typing import Protocol, Sequence


class StageProgress(Protocol):
    """One running stage's progress."""

    def advance(self, done: int) -> None:
        """``done`` of the stage's ``total`` iterations are trained (a count from the stage's start)."""

    def done(self, accuracies: Sequence[float], seconds: float) -> None:
        """The stage finished: the test accuracy of each replicate trained together, and the seconds it took.
        Stages that measure no accuracy (pre-training, trace) never call it."""


class Progress(Protocol):
    """Where progress goes: one :class:`StageProgress` per stage started."""

    def start(self, label: str, total: int) -> StageProgress: ...


class _Silent:
    def advance(self, done: int) -> None:
        pass

    def done(self, accuracies: Sequence[float], seconds: float) -> None:
        pass


class NoProgress:
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
