"""The idempotent stages of one replicate: dense trunk -> IMP levels -> perturbation branches.

Each stage is described by a :class:`Job` (start state, masks, where its files
go, how to write its record). :func:`execute` trains jobs that start at the
same step together, as one fused model (``bench.fused``), and each job still
writes its own files, so fused and one-at-a-time runs share one cache. A stage
whose ``done.json`` exists is read, not rerun; a stage interrupted mid-training
resumes from its checkpoint and ends with the same numbers. Where the files
live is in ``bench.paths``.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, TypeVar

import torch
from filelock import FileLock

from bench import fused, models, paths
from bench.cache import load_json, load_tensors, move_aside, read_record, save_json, save_tensors
from bench.config import Experiment, check_schedule, config_hash, parse_step, validate
from bench.data import BatchStream, Dataset
from bench.perturbation import Context, perturb, start_point
from bench.provenance import fingerprint, hardware_class
from bench.pruning import level_masks, ones_like, report
from bench.seeding import derive_seed, generator
from bench.training import Schedule, Trainer, run

ProgressFactory = Callable[[str, int], Callable[[int], None]]


def no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda step: None


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
    progress: ProgressFactory = no_progress
    checkpoint_every: int | None = None  # steps; default one epoch
    group_size: int = 16  # most replicates trained together in one fused model; 1 = one at a time
    compile: bool = False  # torch.compile the model (pays back only on long runs)
    apply_timeout: float | None = None  # seconds a perturbation's apply() may take (None: no limit)
    events: list[StageEvent] = field(default_factory=list)

    def note(self, kind: str, stage: str, seed: int) -> None:
        event = StageEvent(kind, stage, seed)  # type: ignore[arg-type]
        # a stage counts once: read twice (trunk, then via a level), or read back after training it
        if event in self.events or (kind == "cached" and StageEvent("trained", stage, seed) in self.events):
            return
        self.events.append(event)

    def count(self, kind: str) -> int:
        return sum(e.kind == kind for e in self.events)


@dataclass
class Job:
    """One replicate's training run from ``start`` to T, and what to do with the result."""

    replicate: "Replicate"
    label: str
    folder: Path
    start: int
    state: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor] | None
    finish: Callable[..., dict]  # (accuracy, seconds, seeds trained together, val_accuracy=) -> record
    snapshots: dict[int, str | tuple[str, ...]] = field(default_factory=dict)  # step -> file name(s) in folder
    end: int | None = None  # train to this step instead of T (a replay that only needs early states)


class Replicate:
    """All stages of one experiment for one replicate seed."""

    def __init__(self, experiment: Experiment, seed: int, env: Env):
        self.exp, self.seed, self.env = experiment, seed, env
        self.hash = config_hash(experiment)
        self.base = paths.experiment_dir(env.cache, self.hash)
        self.root = paths.replicate_dir(env.cache, self.hash, seed)
        train_size = env.data.x_train.shape[0]
        self.per_epoch = experiment.iterations_per_epoch(train_size)
        self.T = parse_step(experiment.train.steps, self.per_epoch)
        self.k = parse_step(experiment.rewind, self.per_epoch)
        validate(experiment)
        check_schedule(self.T, self.k, self.per_epoch)  # refused here, before anything trains
        milestones = tuple(parse_step(m, self.per_epoch) for m in experiment.train.milestones)
        self.schedule = Schedule(experiment.train.lr, experiment.train.gamma, milestones,
                                 parse_step(experiment.train.warmup, self.per_epoch))
        self.every = env.checkpoint_every or self.per_epoch
        self._names: list[str] | None = None

    # -- helpers -------------------------------------------------------------------------------
    def new_model(self) -> torch.nn.Module:
        model = models.build_model(self.exp.model, self.env.data.in_channels, self.env.data.num_classes)
        return model.to(self.env.device)

    def initial_model(self) -> torch.nn.Module:
        """The network at W_0: a seeded draw from the model's initialiser, the same for every stage."""
        # drawn on the CPU (the generator lives there), so W_0 is the same on every device
        model = models.build_model(self.exp.model, self.env.data.in_channels, self.env.data.num_classes)
        models.initialize(model, generator(self.seed, "init"), self.exp.model)
        return model.to(self.env.device)

    def prunable(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self._names is None:
            self._names = models.prunable_names(self.new_model())
        return {n: state[n] for n in self._names}

    def state(self, name: str) -> dict[str, torch.Tensor]:
        return load_tensors(self.stage_dir(0) / name, self.env.device)

    def trunk_state(self, step: int) -> dict[str, torch.Tensor]:
        """The dense trunk's full state before iteration ``step`` (W_0, W_k, or a rewind curve's state)."""
        return load_tensors(paths.trunk_state_file(self.root, step, self.k), self.env.device)

    def stage_dir(self, level: int) -> Path:
        return paths.stage_dir(self.root, level)

    def ticket_dir(self, level: int, rewind: int | None = None) -> Path:
        return paths.ticket_dir(self.root, level, self.k if rewind is None else rewind, self.k)

    def ticket_label(self, level: int, rewind: int | None = None) -> str:
        if rewind is None or rewind == self.k:
            return f"IMP level {level}" if level else "ticket at level 0"
        return f"IMP level {level} rewound to {rewind}" if level else f"level 0 rewound to {rewind}"

    def _cached(self, folder: Path, label: str) -> dict | None:
        """The stage's record, or None when it must be (re)computed: a done.json that is not a valid record
        is moved aside, so the stage is trained again instead of its number being trusted."""
        done = folder / "done.json"
        if done.exists():
            record, problem = read_record(done)
            if problem is None:
                self.env.note("cached", label, self.seed)
                return record
            move_aside(done, problem)
        return None

    def _finisher(self, folder: Path, label: str, fields: dict[str, Any]) -> Callable[..., dict]:
        def finish(accuracy: float, seconds: float, group: list[int], val_accuracy: float | None = None) -> dict:
            # the group and the hardware class are part of a result's identity: grouped kernels round
            # differently per group, and kernels differ per CPU capability and GPU model
            record = {**fields, "accuracy": accuracy, "val_accuracy": val_accuracy, "seconds": seconds,
                      "replicas_trained_together": len(group),
                      "trained_with_seeds": group, "config_hash": self.hash, "seed": self.seed,
                      "hardware": hardware_class(self.env.device)}
            save_json(folder / "done.json", record)
            self.env.note("trained", label, self.seed)
            return record
        return finish

    # -- jobs: None when the stage is already done ----------------------------------------------
    def trunk_job(self) -> Job | None:
        """Level 0: W_0 from the seed, dense training 0 -> T, keeping W_0, W_k and the end."""
        folder = self.stage_dir(0)
        if self._cached(folder, "dense trunk") is not None:
            return None
        model = self.initial_model()
        fields = {"stage": "trunk", "steps": self.T, "rewind_step": self.k}
        # k = 0 (IMP rewound to the start): W_k is W_0, saved under both names
        snapshots = {0: ("w0.pt", "wk.pt")} if self.k == 0 else {0: "w0.pt", self.k: "wk.pt"}
        return Job(self, "dense trunk", folder, 0, model.state_dict(), None,
                   self._finisher(folder, "dense trunk", fields), dict(snapshots))

    def level_job(self, level: int, rewind: int | None = None) -> Job | None:
        """The ticket at ``level`` of the chain rewound to ``rewind`` (default: the preset's k).

        Level L >= 1 prunes level L-1's end weights (level 0's being the dense trunk's, as in IMP), puts
        the survivors back at the trunk's state at the rewind point, and trains rewind -> T with a fresh
        optimizer. Level 0 is compared like every other level: W_rewind retrained to T with a fresh
        optimizer and no mask, so a branch at level 0 (identity included) starts exactly as its ticket.
        Needs the trunk and level L-1 done (see :func:`train_chain`)."""
        r = self.k if rewind is None else rewind
        folder, label = self.ticket_dir(level, r), self.ticket_label(level, r)
        if self._cached(folder, label) is not None:
            return None
        masks_path = folder / "mask.pt"
        if level == 0:
            masks = ones_like(self.prunable(self.trunk_state(r)))
        else:
            if not masks_path.exists():
                previous = self.stage_dir(0) if level == 1 else self.ticket_dir(level - 1, r)
                prev_weights = self.prunable(load_tensors(previous / "final.pt"))
                prev_masks = ones_like(prev_weights) if level == 1 else load_tensors(previous / "mask.pt")
                save_tensors(masks_path, level_masks(self.exp, prev_weights, prev_masks, level, self.seed))
            masks = load_tensors(masks_path, self.env.device)
        fields = {"stage": "level", "level": level, "rewind_step": r, "sparsity": report(masks)}
        return Job(self, label, folder, r, self.trunk_state(r), masks, self._finisher(folder, label, fields))

    def sibling(self, seed: int) -> "Replicate":
        """The same kind of replicate for another seed (a member of this one's training group)."""
        return Replicate(self.exp, seed, self.env)

    def replay_job(self, end: int, snapshots: dict[int, str]) -> Job:
        """Retrace the finished trunk from W_0 to ``end``, saving the states at ``snapshots``.

        Trained by ``execute`` in the trunk's own seed group (see :func:`training_groups`), it follows
        the trunk's rounding path, so the states are the ones the trunk passed through, bit for bit."""
        folder = self.stage_dir(0)
        return Job(self, "replaying dense trunk", folder, 0, self.state("w0.pt"), None,
                   lambda accuracy, seconds, group, val_accuracy=None: {}, snapshots, end)

    def masks(self, level: int, rewind: int | None = None) -> dict[str, torch.Tensor]:
        if level == 0:
            return ones_like(self.prunable(self.trunk_state(self.k)))
        return load_tensors(self.ticket_dir(level, rewind) / "mask.pt", self.env.device)

    def record(self, level: int, rewind: int | None = None) -> dict:
        """The ticket's record at ``level`` (level 0: W_k retrained with a fresh optimizer)."""
        return load_json(self.ticket_dir(level, rewind) / "done.json")

    def trunk_record(self) -> dict:
        """The dense network's record: trained 0 -> T uninterrupted."""
        return load_json(self.stage_dir(0) / "done.json")

    def fingerprints(self, level: int) -> dict[str, str | None]:
        """sha256 of W_0, W_k, the level's mask (None at level 0) and the trained ticket, from the stage files:
        two results that claim the same replicate and level must share the first three."""
        def fp(path: Path) -> str:
            return fingerprint(load_tensors(path))

        trunk = self.stage_dir(0)
        return {"w0": fp(trunk / "w0.pt"), "wk": fp(trunk / "wk.pt"),
                "mask": fp(self.ticket_dir(level) / "mask.pt") if level else None,
                "ticket": fp(self.ticket_dir(level) / "final.pt")}

    def branch_folder(self, name: str, params: dict[str, Any], level: int, perturbation_seed: int) -> Path:
        return paths.branch_dir(self.root, level, name, params, perturbation_seed)

    def branch_job(self, registered: Any, params: dict[str, Any], level: int, perturbation_seed: int) -> Job | None:
        """Perturb the level's rewound weights W' = M * P(W_k) and retrain k -> T like the ticket.

        A perturbation with ``start = "init"`` starts from W_0's full state at step 0 instead, and
        trains 0 -> T (bench.perturbation)."""
        pert = registered.perturbation
        folder = self.branch_folder(pert.name, params, level, perturbation_seed)
        label = f"{pert.name} at level {level}"
        if self._cached(folder, label) is not None:
            return None
        ticket = self.record(level)
        masks = self.masks(level)
        wk = self.state("wk.pt")
        rewind, w0 = self.prunable(wk), self.prunable(self.state("w0.pt"))
        ctx_seed = derive_seed(self.seed, "perturb", perturbation_seed)
        # the plugin works on CPU copies with a CPU generator: the same recorded seed gives the same
        # perturbation on every device (the result is moved to the device with the rest of the state)
        ctx = Context(
            rewind={n: t.detach().cpu().clone() for n, t in rewind.items()},
            init={n: t.detach().cpu().clone() for n, t in w0.items()},
            mask={n: m.detach().cpu().clone() for n, m in masks.items()},
            generator=generator(ctx_seed),
            params=dict(params), seed=ctx_seed,
            initializer=models.init_tensor,
            init_stds={n: models.init_std(t) for n, t in rewind.items()},
        )
        applied = perturb(pert, ctx, timeout=self.env.apply_timeout)
        fields = {"stage": "branch", "perturbation": pert.name, "params": params,
                  "perturbation_seed": perturbation_seed, "generator_seed": ctx_seed, "level": level,
                  "ticket_accuracy": ticket["accuracy"], "effective_std": applied.effective_std,
                  "relative_change": applied.relative_change}
        finish = self._finisher(folder, label, fields)

        def finish_branch(accuracy: float, seconds: float, group: list[int], val_accuracy: float | None = None) -> dict:
            (folder / "final.pt").unlink(missing_ok=True)  # branch weights are never reused
            return finish(accuracy, seconds, group, val_accuracy) | {"drop": ticket["accuracy"] - accuracy}

        if start_point(pert) == "imp-from-init":  # its own chain, trained by train_chain(rewind=0)
            chain = self.record(level, rewind=0)
            finish_branch(chain["accuracy"], chain["seconds"], chain.get("trained_with_seeds", [self.seed]),
                          chain.get("val_accuracy"))
            return None
        if start_point(pert) == "init":
            return Job(self, label, folder, 0, {**self.state("w0.pt"), **applied.weights}, masks, finish_branch)
        return Job(self, label, folder, self.k, {**wk, **applied.weights}, masks, finish_branch)

    # -- one stage for this replicate alone (convenience; runs its prerequisites) ---------------
    def trunk(self) -> dict:
        execute([self.trunk_job()], self.env)
        return self.trunk_record()

    def level(self, level: int, rewind: int | None = None) -> dict:
        train_chain([self], level, self.env, rewind)
        return self.record(level, rewind)

    def branch(self, registered: Any, params: dict[str, Any], level: int, perturbation_seed: int) -> dict:
        self.level(level)
        execute([self.branch_job(registered, params, level, perturbation_seed)], self.env)
        return self.branch_record(registered.perturbation.name, params, level, perturbation_seed)

    def branch_record(self, name: str, params: dict[str, Any], level: int, perturbation_seed: int) -> dict:
        """The record of a finished branch, read from its done.json."""
        record = load_json(self.branch_folder(name, params, level, perturbation_seed) / "done.json")
        return record | {"drop": record["ticket_accuracy"] - record["accuracy"]}


T = TypeVar("T")


def seed_groups(items: list[T], size: int) -> list[list[T]]:
    """Consecutive chunks of up to ``size``, in order: how replicates are fused into groups. ``execute``,
    the parallel runner and the sweep planner all group by this one rule, so they fuse the same seeds."""
    return [items[i:i + max(1, size)] for i in range(0, len(items), max(1, size))]


def train_chain(reps: list[Replicate], level: int, env: Env, rewind: int | None = None) -> None:
    """Everything the tickets at ``level`` need, stage by stage across the replicates (each stage's
    replicates train together as fused groups): the dense trunk, then IMP levels 1..level of the chain
    rewound to ``rewind`` (default: the preset's k), or the level-0 ticket when ``level`` is 0."""
    execute([rep.trunk_job() for rep in reps], env)
    for lvl in range(1, level + 1):
        execute([rep.level_job(lvl, rewind) for rep in reps], env)
    if level == 0:
        execute([rep.level_job(0, rewind) for rep in reps], env)


def training_groups(reps: list[Replicate], level: int | None) -> list[list[Replicate]]:
    """The replicates grouped as their ticket at ``level`` (None: the dense trunk) was trained, in order.

    Grouped kernels round differently per group, and early training amplifies rounding, so work that
    must follow a finished stage's path (a ticket's branches, a replay of the trunk) trains in that
    stage's group. A member the caller did not ask for (an earlier run had more seeds) comes along.
    """
    by_seed = {rep.seed: rep for rep in reps}
    groups, seen = [], set()
    for rep in reps:
        if rep.seed in seen:
            continue
        record = rep.trunk_record() if level is None else rep.record(level)
        members = record.get("trained_with_seeds", [rep.seed])
        groups.append([by_seed.get(s) or rep.sibling(s) for s in members])
        seen.update(members)
    return groups


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
            with stage_locks([j.folder for j in chunk]):
                todo = []
                for job in chunk:  # finished by another process while this one waited
                    if job.end is None and (job.folder / "done.json").exists():
                        env.note("cached", job.label, job.replicate.seed)
                    else:
                        todo.append(job)
                if todo:
                    _train_group(todo, env)


@contextlib.contextmanager
def stage_locks(folders: list[Path]) -> Iterator[None]:
    """Hold the lock of every stage folder, taken in one global order so two processes cannot deadlock.

    filelock's FileLock is an OS lock (flock), released by the kernel when a process dies, so a killed
    run never leaves a stale lock; Linux NFS clients map it to POSIX locks, which NFS servers honour."""
    with contextlib.ExitStack() as stack:
        for folder in sorted(set(folders)):
            folder.mkdir(parents=True, exist_ok=True)
            stack.enter_context(FileLock(str(folder / ".lock")))
        yield


def _relative(folder: Path, root: Path) -> str:
    try:
        return folder.relative_to(root).as_posix()
    except ValueError:
        return str(folder)


def _train_group(jobs: list[Job], env: Env) -> None:
    rep = jobs[0].replicate
    replicas = len(jobs)
    model = fused.build(rep.exp.model, env.data.in_channels, env.data.num_classes, replicas).to(env.device)
    model.load_state_dict(fused.fuse([j.state for j in jobs]))
    masks = fused.fuse([j.masks for j in jobs]) if jobs[0].masks is not None else None
    trainer = Trainer(model, rep.exp.train, rep.schedule, masks, compile=env.compile, loss=fused.loss)
    stream = fused.FusedStream([BatchStream(env.data, rep.exp.train.batch_size, j.replicate.seed) for j in jobs])
    if replicas == 1:
        workdir = jobs[0].folder
    else:  # a fused group resumes only as the same group
        workdir = paths.fused_dir(rep.base, [j.folder for j in jobs])
    checkpoint = workdir / "checkpoint.pt"
    end = jobs[0].end or rep.T
    steps = sorted({s for j in jobs for s in j.snapshots} | {rep.T})

    def snapshot(step: int) -> None:
        states = None
        for job in jobs:
            files = list(names(job.snapshots[step])) if step in job.snapshots else []
            if step == rep.T:
                files.append("final.pt")
            for name in files:
                if not (job.folder / name).exists():
                    states = states or fused.unfuse(model.state_dict(), replicas)
                    save_tensors(job.folder / name, states[jobs.index(job)])

    # a checkpoint carries its stage's identity: one found in the wrong folder, or copied from another
    # configuration or group, is not resumed
    identity = {"stages": [_relative(j.folder, env.cache) for j in jobs], "group": [j.replicate.seed for j in jobs],
                "start": jobs[0].start, "end": end}

    def accept(state: dict) -> str | None:
        if state.get("identity") != identity:
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
    update = env.progress(label + (" (resumed)" if checkpoint.exists() else ""), end - jobs[0].start)
    t0 = time.perf_counter()
    run(trainer, stream, jobs[0].start, end, checkpoint=checkpoint, checkpoint_every=rep.every,
        snapshot=snapshot, snapshot_steps=tuple(steps), progress=lambda step: update(step - jobs[0].start),
        identity=identity, accept=accept)
    seconds = time.perf_counter() - t0
    accuracies = fused.evaluate(model, env.data.x_test, env.data.y_test, replicas)
    validation: list[float | None] = [None] * replicas
    if env.data.x_val is not None:
        validation = list(fused.evaluate(model, env.data.x_val, env.data.y_val, replicas))
    if hasattr(update, "done"):  # a batch log's finish line carries the stage's accuracy (bench/cli/output.py)
        update.done(accuracies, seconds)
    group = [j.replicate.seed for j in jobs]
    for job, accuracy, val in zip(jobs, accuracies, validation):
        job.finish(accuracy, seconds, group, val_accuracy=val)
    checkpoint.unlink(missing_ok=True)
    if replicas > 1:
        shutil.rmtree(workdir, ignore_errors=True)
