"""Seed groups trained side by side, one forked process each, their progress shown by the parent.

Fusing changes rounding, so which seeds train together is fixed by the group size alone: the same
chunks that ``bench.execute.execute`` would train one after another. Running them at once changes when
they are computed, never what. Every process trains with one thread (docs/reproducibility.md), so one
process per core is what fills a CPU machine. Stages are locked (bench.execute), so two groups that
need one shared stage never train it twice.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue as queue_module
from dataclasses import astuple, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from bench.errors import BenchError
from bench.execute import Env, StageEvent, seed_groups
from bench.progress import Metrics, Progress, StageProgress, hook


class _Bar:
    """A child's stage progress: every update goes to the parent, which owns the real bar."""

    def __init__(self, channel: Any, key: tuple[int, int]):
        self.channel, self.key = channel, key

    def advance(self, done: int) -> None:
        self.channel.put(("step", self.key, done))

    def done(self, accuracies: Sequence[float], seconds: float) -> None:
        self.channel.put(("finish", self.key, list(accuracies), seconds))


class _Relay:
    """A child's tracker feed (bench.progress.Metrics): every call goes to the parent, which owns the loggers."""

    def __init__(self, channel: Any):
        self.channel = channel

    def stage(self, *args: Any) -> None:
        self.channel.put(("metrics", "stage", args))

    def loss(self, *args: Any) -> None:
        self.channel.put(("metrics", "loss", args))


class _Forward(Progress):
    """A child's progress: each stage started is announced to the parent under a key of its own; a wait on
    another process's stage lock is passed on as it is."""

    def __init__(self, channel: Any, index: int):
        self.channel, self.index, self.counter = channel, index, itertools.count()

    def start(self, label: str, total: int) -> StageProgress:
        key = (self.index, next(self.counter))
        self.channel.put(("bar", key, label, total))
        return _Bar(self.channel, key)

    def waiting(self, label: str, lock: Path) -> None:
        self.channel.put(("waiting", label, lock))

    def waited(self, label: str, seconds: float) -> None:
        self.channel.put(("waited", label, seconds))


def train_groups_side_by_side(train: Callable[[list[int], Env], None], seeds: list[int], env: Env,
                              workers: int) -> None:
    """``train(group, env)`` for every seed group (``env.group_size`` consecutive seeds) at once, one process
    each, when ``workers`` > 1, there are several groups and the device is a CPU; else nothing.

    The caller then runs its own pass over all seeds, which reads what the groups trained from the cache;
    the groups' stage events are added to ``env.events``."""
    groups = seed_groups(seeds, env.group_size)
    if workers <= 1 or len(groups) < 2 or env.device.type != "cpu":
        return

    def work(group: list[int], progress: Progress, metrics: Metrics | None) -> list[StageEvent]:
        mine = replace(env, progress=progress, events=[], metrics=metrics)  # a tracker is fed through the parent
        train(group, mine)
        return mine.events

    env.events.extend(run_groups(work, groups, workers, env.progress, env.metrics))


def run_groups(work: Callable[[list[int], Progress, Metrics | None], list[StageEvent]], groups: list[list[int]],
               workers: int, progress: Progress, metrics: Metrics | None = None) -> list[StageEvent]:
    """``work(group, progress, metrics)`` for every group, at most ``workers`` at once; returns their stage
    events. ``metrics`` (a tracker's feed, or None) is called in this process with what the children report.

    A failing group stops the others (what they finished stays cached) and is raised as one BenchError."""
    context = multiprocessing.get_context("fork")  # the data and setup are already in memory: share them
    channel = context.Queue()
    bars: dict[tuple[int, int], StageProgress] = {}
    events: list[StageEvent] = []
    pending = list(enumerate(groups))
    running: dict[int, Any] = {}
    failure: str | None = None

    def child(index: int, group: list[int]) -> None:
        try:
            found = work(group, _Forward(channel, index), _Relay(channel) if metrics is not None else None)
            channel.put(("done", index, [astuple(e) for e in found], None))
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
            message = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
            channel.put(("done", index, [], message))
            code = 1
        channel.close()
        channel.join_thread()
        os._exit(code)  # no atexit handlers or finalizers of the parent's state in a forked child

    def handle(message: tuple) -> None:
        nonlocal failure
        kind, key = message[0], message[1]
        if kind == "bar":
            bars[key] = progress.start(message[2], message[3])
        elif kind == "step":
            bars[key].advance(message[2])
        elif kind == "finish":
            bars[key].done(message[2], message[3])
        elif kind in ("waiting", "waited"):
            hook(progress, kind)(message[1], message[2])
        elif kind == "metrics" and metrics is not None:
            getattr(metrics, message[1])(*message[2])
        elif kind == "done":
            events.extend(StageEvent(*e) for e in message[2])
            if message[3] is not None and failure is None:
                failure = f"seeds {','.join(map(str, groups[key]))}: {message[3]}"
            running.pop(key).join()

    try:
        while (pending or running) and failure is None:
            while pending and len(running) < max(1, workers):
                index, group = pending.pop(0)
                running[index] = context.Process(target=child, args=(index, group), daemon=True)
                running[index].start()
            try:
                handle(channel.get(timeout=1.0))
            except queue_module.Empty:
                for index, process in list(running.items()):
                    if process.exitcode is not None and process.exitcode != 0:
                        failure = (f"the worker training seeds {','.join(map(str, groups[index]))} died "
                                   f"(exit code {process.exitcode}); rerun to resume from the cache")
    finally:
        for process in running.values():  # a failure or Ctrl-C: stop the others; their stages stay cached
            process.terminate()
            process.join()
    if failure is not None:
        raise BenchError(failure)
    return events
