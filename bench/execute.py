"""Training stage jobs: jobs that start at the same step train together as one fused model.

A :class:`Job` says where one replicate's training run starts (step, state, masks), where its files go and
how to write its record; the stage jobs themselves are made in ``bench.stages``. :func:`execute` fuses
jobs of one experiment and start step (``bench.fused``), up to the group size, and each job still writes
its own files, so fused and one-at-a-time runs share one cache. A job whose ``done.json`` appeared while
it waited for its lock is read, not rerun; one interrupted mid-training resumes from its checkpoint and
ends with the same numbers.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Protocol, TypeVar

import torch
from filelock import FileLock, Timeout

from bench import fused, paths
from bench.cache import save_tensors
from bench.config import Experiment
from bench.data import BatchStream, Dataset
from bench.errors import BenchError
from bench.progress import NO_PROGRESS, Metrics, Progress, hook
from bench.provenance import fingerprint
from bench.stage_checks import group_of, invalidate
from bench.training import Schedule, Trainer, run


@dataclass(frozen=True)
class StageEvent:
    """What happened to one stage of one replicate in this process: trained, read from the cache, ..."""

    kind: Literal["trained", "cached", "replayed", "traced"]
    stage: str  # e.g. "dense trunk", "IMP level 2", "shuffle-layer at level 2"
    seed: int


@dataclass
class Env:
    """Where and how to run. Fusing (``group_size``) changes float rounding, and so the numbers: a stage
    records the seeds it was trained with, and work that must follow it trains in the same group."""

    cache: Path
    device: torch.device
    data: Dataset
    progress: Progress = NO_PROGRESS
    checkpoint_every: int | None = None  # steps; default one epoch
    group_size: int = 16  # most replicates trained together in one fused model; 1 = one at a time
    compile: bool = False  # torch.compile the model (pays back only on long runs)
    apply_timeout: float | None = None  # seconds a perturbation's apply() may take (None: no limit)
    events: list[StageEvent] = field(default_factory=list)
    metrics: Metrics | None = None  # `bench run --logger`: fed when a stage finishes or is read from the cache
    # False: a search on validation (scripts/search_default.py) never measures the test split; its stages record
    # `accuracy: null, test_evaluated: false` and live in their own cache tree (bench.experiments.setup.prepare)
    evaluate_test: bool = True

    def note(self, kind: str, stage: str, seed: int) -> None:
        event = StageEvent(kind, stage, seed)  # type: ignore[arg-type]
        # a stage counts once: read twice (trunk, then via a level), or read back after training (or tracing) it,
        # in this process or in a worker of it
        if event in self.events or (kind == "cached" and any(e.stage == stage and e.seed == seed and e.kind != "cached"
                                                              for e in self.events)):
            return
        self.events.append(event)

    def count(self, kind: str) -> int:
        return sum(e.kind == kind for e in self.events)


class Owner(Protocol):
    """What the executor reads from the replicate a job belongs to (``bench.stages.Replicate``)."""

    exp: Experiment
    seed: int
    hash: str  # the experiment's config hash: jobs fuse only within one experiment
    base: Path  # the experiment's folder (a fused group's resume point lives under it)
    schedule: Schedule
    T: int
    every: int  # checkpoint interval in steps

    def sibling(self, seed: int) -> Any:  # the same kind of replicate for another seed (run_stage's groups)
        ...


@dataclass
class Job:
    """One replicate's training run from ``start`` to T, and what to do with the result."""

    replicate: Owner
    label: str
    folder: Path
    start: int
    state: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor] | None
    finish: Callable[..., dict]  # (accuracy, seconds, seeds trained together, val_accuracy=) -> record
    snapshots: dict[int, str | tuple[str, ...]] = field(default_factory=dict)  # step -> file name(s) in folder
    end: int | None = None  # train to this step instead of T (a replay that only needs early states)
    # the seed of the data order (batches and augmentation); None: the replicate's seed, as every stage of a
    # replicate uses. Another order trains another network: give such a job its own folder and record it.
    data_seed: int | None = None

    @property
    def order_seed(self) -> int:
        return self.replicate.seed if self.data_seed is None else self.data_seed


T = TypeVar("T")


def seed_groups(items: list[T], size: int) -> list[list[T]]:
    """Consecutive chunks of up to ``size``, in order: how replicates are fused into groups. ``execute``,
    the parallel runner and the sweep planner all group by this one rule, so they fuse the same seeds."""
    return [items[i:i + max(1, size)] for i in range(0, len(items), max(1, size))]


def execute(jobs: list[Job | None], env: Env) -> None:
    """Train the given jobs, fusing those that share an experiment and start step.

    Each stage is locked while it trains, so two processes sharing a cache (two ``bench run``, sweep
    workers) never train a stage twice: the second waits, then reads what the first wrote."""
    pending = [j for j in jobs if j is not None]
    groups: dict[tuple[str, int], list[Job]] = {}
    for job in pending:
        groups.setdefault((job.replicate.hash, job.start), []).append(job)
    for group in groups.values():
        for chunk in seed_groups(group, env.group_size):
            labels = {j.folder: f"{j.label} seed {j.replicate.seed}" for j in chunk}
            with stage_locks(list(labels), env.progress, labels):
                _train_unless_done(chunk, env)


def _train_unless_done(chunk: list[Job], env: Env) -> None:
    """Train ``chunk`` as one fused group (its stage locks held), less the stages finished meanwhile."""
    todo = []
    for job in chunk:  # finished by another process while this one waited
        if job.end is None and (job.folder / paths.DONE).exists():
            env.note("cached", job.label, job.replicate.seed)
        else:
            todo.append(job)
    if todo:
        _train_group(todo, env)


def run_stage(reps: list[Any], make: Callable[[Any], Job | None], env: Env) -> None:
    """``execute`` the stage ``make(rep)`` makes for every replicate, recomputing a stage in its recorded group.

    A stage to (re)compute whose siblings' records name it in their seed group (``trained_with_seeds``: its
    record was damaged or deleted, or one of its files, see bench.stage_checks) is retrained with exactly
    that group, its healthy members included, in the recorded order: alone, or in another group, it would
    follow another rounding path and no longer pair with its siblings' work. Fresh stages go to ``execute``."""
    jobs = [make(rep) for rep in reps]
    by_seed = {rep.seed: rep for rep in reps}
    plain, recovered = [], set()
    for job in (j for j in jobs if j is not None):
        owner = job.replicate
        if owner.seed in recovered:
            continue
        group = group_of(job.folder, owner.base, owner.seed)
        if group is None:
            plain.append(job)
            continue
        recovered.update(group)
        members = [by_seed.get(s) or owner.sibling(s) for s in group]
        relative = job.folder.relative_to(owner.base / f"seed-{owner.seed}")  # group_of found it there
        folders = [owner.base / f"seed-{s}" / relative for s in group]
        with stage_locks(folders):
            if all((f / paths.DONE).exists() for f in folders):
                continue  # retrained by another process while this one waited
            for folder in folders:  # the healthy members too: their stage is recomputed with the damaged one's
                invalidate(folder, f"retrained with its seed group {group}: a member's {relative.as_posix()} "
                                   f"had to be recomputed")
            chunk = [make(m) for m in members]
            _train_unless_done([j for j in chunk if j is not None], replace(env, group_size=len(group)))
    execute([j for j in plain if j.replicate.seed not in recovered], env)


@contextlib.contextmanager
def stage_locks(folders: list[Path], progress: Progress = NO_PROGRESS,
                labels: dict[Path, str] | None = None) -> Iterator[None]:
    """Hold the lock of every stage folder, taken in one global order so two processes cannot deadlock.
    A lock another process holds is reported to ``progress`` (``waiting``, then ``waited`` once acquired),
    under the folder's label in ``labels``: a batch log says why nothing happens.

    filelock's FileLock is an OS lock (flock), released by the kernel when a process dies, so a killed
    run never leaves a stale lock; Linux NFS clients map it to POSIX locks, which NFS servers honour."""
    with contextlib.ExitStack() as stack:
        for folder in sorted(set(folders)):
            folder.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(folder / paths.LOCK))
            try:
                lock.acquire(blocking=False)
            except Timeout:  # held by another process: say so once, then wait for it
                label = (labels or {}).get(folder, str(folder))
                hook(progress, "waiting")(label, folder / paths.LOCK)
                t0 = time.perf_counter()
                lock.acquire()
                hook(progress, "waited")(label, time.perf_counter() - t0)
            stack.callback(lock.release)
        yield


def _train_group(jobs: list[Job], env: Env) -> None:
    rep = jobs[0].replicate
    if not env.evaluate_test and env.data.x_val is None:
        raise BenchError("A run that does not evaluate the test split needs a validation split to measure: "
                         "set data.validation_examples.")
    replicas = len(jobs)
    model = fused.build(rep.exp.model, env.data.in_channels, env.data.num_classes, replicas).to(env.device)
    model.load_state_dict(fused.fuse([j.state for j in jobs]))
    masks = fused.fuse([j.masks for j in jobs]) if jobs[0].masks is not None else None
    trainer = Trainer(model, rep.exp.train, rep.schedule, masks, compile=env.compile, loss=fused.loss,
                      replicas=replicas)
    stream = fused.FusedStream([BatchStream(env.data, rep.exp.train.batch_size, j.order_seed) for j in jobs])
    if replicas == 1:
        workdir = jobs[0].folder
    else:  # a fused group resumes only as the same group
        workdir = paths.fused_dir(rep.base, [j.folder for j in jobs])
    checkpoint = workdir / paths.CHECKPOINT
    end = jobs[0].end or rep.T
    steps = sorted({s for j in jobs for s in j.snapshots} | {rep.T})

    def snapshot(step: int) -> None:
        states = None
        for job in jobs:
            files = list(names(job.snapshots[step])) if step in job.snapshots else []
            if step == rep.T:
                files.append(paths.FINAL)
            for name in files:
                if not (job.folder / name).exists():
                    states = states or fused.unfuse(model.state_dict(), replicas)
                    save_tensors(job.folder / name, states[jobs.index(job)])

    # a checkpoint carries its stage's identity: one found in the wrong folder, or copied from another
    # configuration or group, is not resumed
    identity = {"stages": [paths.stage_id(j.folder, env.cache) for j in jobs],
                "group": [j.replicate.seed for j in jobs], "start": jobs[0].start, "end": end,
                # and its start state: a checkpoint of weights that were since retrained (a ticket, W_k) is stale
                "from": [fingerprint({**j.state, **{f"mask:{n}": m for n, m in (j.masks or {}).items()}})
                         for j in jobs]}
    if any(j.data_seed is not None for j in jobs):  # only then: every existing checkpoint keeps its identity
        identity["data_seeds"] = [j.order_seed for j in jobs]

    def accept(state: dict) -> str | None:
        found = state.get("identity")
        if isinstance(found, dict) and {k: v for k, v in found.items() if k != "from"} == {
                k: v for k, v in identity.items() if k != "from"} and found.get("from") != identity["from"]:
            return "it started from other weights than this stage starts from now (they were retrained since)"
        if found != identity:
            return "it belongs to another stage or group"
        # a snapshot step already passed whose file is gone (deleted by hand after a crash) cannot be
        # produced by resuming: train from the start instead of "finishing" without W_0/W_k
        lost = [j.folder / n for j in jobs for s in j.snapshots for n in names(j.snapshots[s])
                if s < int(state["step"]) and not (j.folder / n).exists()]
        return f"{lost[0]} it should have saved is missing" if lost else None

    def names(value: str | tuple[str, ...]) -> tuple[str, ...]:
        return (value,) if isinstance(value, str) else value

    label = jobs[0].label + (f" seed {jobs[0].replicate.seed}" if replicas == 1
                             else f" seeds {','.join(str(j.replicate.seed) for j in jobs)}")
    bar = env.progress.start(label + (" (resumed)" if checkpoint.exists() else ""), end - jobs[0].start)

    def losses(step: int, loss: torch.Tensor) -> None:  # the loss the step computed anyway, read at checkpoints
        if env.metrics is not None and (step % rep.every == 0 or step == end):
            env.metrics.loss(jobs[0].label, [j.replicate.seed for j in jobs], step, loss.item() / replicas)

    t0 = time.perf_counter()
    run(trainer, stream, jobs[0].start, end, checkpoint=checkpoint, checkpoint_every=rep.every,
        snapshot=snapshot, snapshot_steps=tuple(steps), progress=lambda step: bar.advance(step - jobs[0].start),
        identity=identity, accept=accept, losses=losses if env.metrics is not None else None)
    seconds = time.perf_counter() - t0
    accuracies: list[float | None] = [None] * replicas
    if env.evaluate_test:
        accuracies = list(fused.evaluate(model, env.data.x_test, env.data.y_test, replicas))
    validation: list[float | None] = [None] * replicas
    if env.data.x_val is not None:
        validation = list(fused.evaluate(model, env.data.x_val, env.data.y_val, replicas))
    # a batch log's finish line carries the stage's accuracy (bench/cli/output.py); a search's has none
    bar.done([a for a in accuracies if a is not None], seconds)
    group = [j.replicate.seed for j in jobs]
    for job, accuracy, val in zip(jobs, accuracies, validation):
        job.finish(accuracy, seconds, group, val_accuracy=val)
    checkpoint.unlink(missing_ok=True)
    if replicas > 1:
        shutil.rmtree(workdir, ignore_errors=True)
