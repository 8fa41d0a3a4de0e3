"""The idempotent stages of one replicate: dense trunk -> IMP levels -> perturbation branches.

A :class:`Replicate` makes each of its stages as a :class:`~bench.execute.Job` (start state, masks, where
its files go, how to write its record), or None when the stage's ``done.json`` says it is done;
``bench.execute.execute`` trains the jobs, fused across replicates. :func:`train_chain` runs the stages a
level's tickets need in order; :func:`training_groups` gives the seed groups that later work must follow.
Where the files live is in ``bench.paths``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from bench import models, paths
from bench.cache import load_json, load_tensors, read_record, save_json, save_tensors
from bench.config import Experiment, check_schedule, config_hash, parse_step, validate
from bench.execute import Env, Job, execute, run_stage
from bench.perturbation import Context, data_order, perturb, start_point
from bench.provenance import fingerprint, hardware_class
from bench.pruning import level_masks, ones_like, report
from bench.seeding import branch_order_seed, derive_seed, generator
from bench.stage_checks import check_class, files_problem, inputs, invalidate, stage_files
from bench.training import Schedule

# Env, Job, execute and run_stage are bench.execute's, named here too: the stage API a caller works with
__all__ = ["Env", "Job", "Replicate", "execute", "run_stage", "train_chain", "training_groups"]


class Replicate:
    """All stages of one experiment for one replicate seed.

    A new kind of experiment subclasses it (bench/experiments/pretrain.py, rewind_curve.py do). The
    extension points, public and stable:

    * ``cached_record(folder, label)``: the stage's record if its ``done.json`` is a valid one (noted as
      cached), else None; a stage job starts with it and returns None when the stage is done.
    * ``finisher(folder, label, fields)``: the ``Job.finish`` callback that writes the stage's record
      (``fields`` plus accuracy, seconds, the seeds trained together, config hash, seed, hardware).
    * ``trunk_job()``, ``level_job(level, rewind)``, ``branch_job(...)``: the stage jobs; override one to
      change a stage (a variant's rewind point, extra snapshots) and call ``super()`` for the rest.
    * ``dense_dir(rewind)``: the stage whose end weights level 1 prunes (``prune.level1_prunes``).
    * ``sibling(seed)``: the same kind of replicate for another seed (members of a training group).
    * ``branch_data_seed(perturbation, perturbation_seed)``: a branch's data-order seed (None: the replicate's).
    * ``initial_model()`` / ``new_model()``: W_0 and an untrained network of the experiment's model.

    A :class:`~bench.execute.Job` may set ``data_seed`` to train with another data order than the seed's.
    """

    keep_branch_weights = False  # a branch's end state is deleted once its accuracy is recorded

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
        """A file of the dense trunk (``paths.W0``, ``paths.WK``, ``paths.FINAL``) on the device."""
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

    # -- extension points ------------------------------------------------------------------------
    def cached_record(self, folder: Path, label: str) -> dict | None:
        """The stage's record, or None when it must be (re)computed: a done.json that is not a valid record
        is moved aside, so the stage is trained again instead of its number being trusted."""
        done = folder / paths.DONE
        if done.exists():
            record, problem = read_record(done)
            if problem is None:  # its files and what it was built on (bench.stage_checks)
                problem = files_problem(record, folder, self.root)
            if problem is None and (record.get("test_evaluated") is False) == self.env.evaluate_test:
                problem = ("trained without test evaluation (a validation-only search stage), read by a run that "
                           "reports test accuracy" if self.env.evaluate_test else
                           "trained with test evaluation, read by a validation-only search")
            if problem is None:
                check_class(record, hardware_class(self.env.device), folder)  # one numerics class per cache
                self.env.note("cached", label, self.seed)
                if self.env.metrics is not None:
                    self.env.metrics.stage(label, self.seed, self.T, record)
                return record
            invalidate(folder, problem, keep_record=True)  # bench.execute.run_stage retrains it in its group
        return None

    def finisher(self, folder: Path, label: str, fields: dict[str, Any]) -> Callable[..., dict]:
        """``Job.finish`` for a stage: writes ``folder/done.json`` from ``fields`` and what the training
        measured, notes the stage as trained, and returns the record."""
        def finish(accuracy: float, seconds: float, group: list[int], val_accuracy: float | None = None) -> dict:
            # the group and the hardware class are part of a result's identity: grouped kernels round
            # differently per group, and kernels differ per CPU capability and GPU model
            record = {**fields, "accuracy": accuracy, "val_accuracy": val_accuracy, "seconds": seconds,
                      "replicas_trained_together": len(group),
                      "trained_with_seeds": group, "config_hash": self.hash, "seed": self.seed,
                      "hardware": hardware_class(self.env.device),
                      "files": stage_files(folder)}  # checked whenever the stage is read back
            if not self.env.evaluate_test:  # a validation-only search: the test split was never evaluated
                record["test_evaluated"] = False
            save_json(folder / paths.DONE, record)
            self.env.note("trained", label, self.seed)
            if self.env.metrics is not None:
                self.env.metrics.stage(label, self.seed, self.T, record)
            return record
        return finish

    # -- jobs: None when the stage is already done ----------------------------------------------
    def trunk_job(self) -> Job | None:
        """Level 0: W_0 from the seed, dense training 0 -> T, keeping W_0, W_k and the end."""
        folder = self.stage_dir(0)
        if self.cached_record(folder, "dense trunk") is not None:
            return None
        model = self.initial_model()
        fields = {"stage": "trunk", "steps": self.T, "rewind_step": self.k}
        # k = 0 (IMP rewound to the start): W_k is W_0, saved under both names
        snapshots = {0: (paths.W0, paths.WK)} if self.k == 0 else {0: paths.W0, self.k: paths.WK}
        return Job(self, "dense trunk", folder, 0, model.state_dict(), None,
                   self.finisher(folder, "dense trunk", fields), dict(snapshots))

    def level_job(self, level: int, rewind: int | None = None) -> Job | None:
        """The ticket at ``level`` of the chain rewound to ``rewind`` (default: the preset's k).

        Level L >= 1 prunes level L-1's end weights (level 0's: see :meth:`dense_dir`), puts the survivors
        back at the trunk's state at the rewind point, and trains rewind -> T with a fresh optimizer.
        Level 0 is compared like every other level: W_rewind retrained to T with a fresh
        optimizer and no mask, so a branch at level 0 (identity included) starts exactly as its ticket.
        Needs the trunk and level L-1 done (see :func:`train_chain`)."""
        r = self.k if rewind is None else rewind
        folder, label = self.ticket_dir(level, r), self.ticket_label(level, r)
        if self.cached_record(folder, label) is not None:
            return None
        masks_path = folder / paths.MASK
        if level == 0:
            masks = ones_like(self.prunable(self.trunk_state(r)))
        else:
            if not masks_path.exists():
                previous = self.dense_dir(r) if level == 1 else self.ticket_dir(level - 1, r)
                prev_weights = self.prunable(load_tensors(previous / paths.FINAL))
                prev_masks = ones_like(prev_weights) if level == 1 else load_tensors(previous / paths.MASK)
                save_tensors(masks_path, level_masks(self.exp, prev_weights, prev_masks, level, self.seed))
            masks = load_tensors(masks_path, self.env.device)
        sources = [paths.trunk_state_file(self.root, r, self.k)]
        if level:  # the mask came from the previous level's end weights (and mask)
            previous = self.dense_dir(r) if level == 1 else self.ticket_dir(level - 1, r)
            sources += [previous / paths.FINAL] + ([previous / paths.MASK] if level > 1 else [])
        fields = {"stage": "level", "level": level, "rewind_step": r, "sparsity": report(masks),
                  "inputs": inputs(self.root, sources)}
        return Job(self, label, folder, r, self.trunk_state(r), masks, self.finisher(folder, label, fields))

    def dense_dir(self, rewind: int) -> Path:
        """The stage whose end weights level 1 of the chain rewound to ``rewind`` prunes: the dense trunk
        (0 -> T, one optimizer), or with ``prune.level1_prunes = "level-0"`` and ``rewind`` > 0 the level-0
        ticket (W_rewind retrained rewind -> T with a fresh optimizer: OpenLTH's level 0 with rewinding)."""
        if self.exp.prune.level1_prunes == "level-0" and rewind > 0:
            return self.ticket_dir(0, rewind)
        return self.stage_dir(0)

    def sibling(self, seed: int) -> "Replicate":
        """The same kind of replicate for another seed (a member of this one's training group)."""
        return Replicate(self.exp, seed, self.env)

    def replay_job(self, end: int, snapshots: dict[int, str]) -> Job:
        """Retrace the finished trunk from W_0 to ``end``, saving the states at ``snapshots``.

        Trained by ``execute`` in the trunk's own seed group (see :func:`training_groups`), it follows
        the trunk's rounding path, so the states are the ones the trunk passed through, bit for bit."""
        folder = self.stage_dir(0)
        return Job(self, "replaying dense trunk", folder, 0, self.state(paths.W0), None,
                   lambda accuracy, seconds, group, val_accuracy=None: {}, snapshots, end)

    def masks(self, level: int, rewind: int | None = None) -> dict[str, torch.Tensor]:
        if level == 0:
            return ones_like(self.prunable(self.trunk_state(self.k)))
        return load_tensors(self.ticket_dir(level, rewind) / paths.MASK, self.env.device)

    def record(self, level: int, rewind: int | None = None) -> dict:
        """The ticket's record at ``level`` (level 0: W_k retrained with a fresh optimizer)."""
        return load_json(self.ticket_dir(level, rewind) / paths.DONE)

    def trunk_record(self) -> dict:
        """The dense network's record: trained 0 -> T uninterrupted."""
        return load_json(self.stage_dir(0) / paths.DONE)

    def fingerprints(self, level: int) -> dict[str, str | None]:
        """sha256 of W_0, W_k, the level's mask (None at level 0) and the trained ticket, from the stage files:
        two results that claim the same replicate and level must share the first three."""
        def fp(path: Path) -> str:
            return fingerprint(load_tensors(path))

        trunk = self.stage_dir(0)
        return {"w0": fp(trunk / paths.W0), "wk": fp(trunk / paths.WK),
                "mask": fp(self.ticket_dir(level) / paths.MASK) if level else None,
                "ticket": fp(self.ticket_dir(level) / paths.FINAL)}

    def branch_folder(self, name: str, params: dict[str, Any], level: int, perturbation_seed: int) -> Path:
        return paths.branch_dir(self.root, level, name, params, perturbation_seed)

    def branch_data_seed(self, perturbation: Any, perturbation_seed: int) -> int | None:
        """The data-order seed of a branch: None (the replicate's own order, every existing branch's, whose record
        and checkpoint stay as they were) unless the perturbation declares ``data_order = "other"``."""
        return branch_order_seed(self.seed, perturbation_seed) if data_order(perturbation) == "other" else None

    def branch_job(self, registered: Any, params: dict[str, Any], level: int, perturbation_seed: int) -> Job | None:
        """Perturb the level's rewound weights W' = M * P(W_k) and retrain k -> T like the ticket.

        A perturbation with ``start = "init"`` starts from W_0's full state at step 0 instead, and
        trains 0 -> T; one with ``data_order = "other"`` trains on another data order (bench.perturbation)."""
        pert = registered.perturbation
        folder = self.branch_folder(pert.name, params, level, perturbation_seed)
        label = f"{pert.name} at level {level}"
        start = start_point(pert)
        data_seed = self.branch_data_seed(pert, perturbation_seed)
        cached = self.cached_record(folder, label)
        if cached is not None and cached.get("data_seed") == data_seed:
            return None
        if cached is not None:  # trained on another data order than the perturbation declares now
            invalidate(folder, f"trained with data order {cached.get('data_seed')}, declared now {data_seed}")
        ticket = self.record(level)
        masks = self.masks(level)
        # the change is measured under the mask the branch trains under: imp-rewind-0's is its own chain's
        own_masks = self.masks(level, rewind=0) if start == "imp-from-init" else masks
        wk = self.state(paths.WK)
        rewind, w0 = self.prunable(wk), self.prunable(self.state(paths.W0))
        ctx_seed = derive_seed(self.seed, "perturb", perturbation_seed)
        # the plugin works on CPU copies with a CPU generator: the same recorded seed gives the same
        # perturbation on every device (the result is moved to the device with the rest of the state)
        ctx = Context(
            rewind={n: t.detach().cpu().clone() for n, t in rewind.items()},
            init={n: t.detach().cpu().clone() for n, t in w0.items()},
            mask={n: m.detach().cpu().clone() for n, m in own_masks.items()},
            generator=generator(ctx_seed),
            params=dict(params), seed=ctx_seed,
            initializer=models.init_tensor,
            init_stds={n: models.init_std(t) for n, t in rewind.items()},
        )
        applied = perturb(pert, ctx, timeout=self.env.apply_timeout)
        fields = {"stage": "branch", "perturbation": pert.name, "params": params,
                  "perturbation_seed": perturbation_seed, "generator_seed": ctx_seed, "level": level,
                  "ticket_accuracy": ticket["accuracy"], "effective_std": applied.effective_std,
                  "relative_change": applied.relative_change,
                  # the ticket it pairs with, and the weights it started from
                  "inputs": inputs(self.root, [self.stage_dir(0) / paths.W0, self.stage_dir(0) / paths.WK,
                                               *([self.ticket_dir(level) / paths.MASK] if level else []),
                                               self.ticket_dir(level) / paths.FINAL]),
                  # branch = ticket at the start: the perturbation measures nothing (bench.perturbation.Applied)
                  **({"no_op": True} if applied.no_op and start == "rewind" and data_seed is None else {}),
                  **({"data_seed": data_seed} if data_seed is not None else {})}
        finish = self.finisher(folder, label, fields)

        def finish_branch(accuracy: float, seconds: float, group: list[int], val_accuracy: float | None = None) -> dict:
            if not self.keep_branch_weights:  # branch weights are never reused, except by bench instability
                (folder / paths.FINAL).unlink(missing_ok=True)
            return finish(accuracy, seconds, group, val_accuracy) | {"drop": _drop(ticket["accuracy"], accuracy)}

        if start == "imp-from-init":  # its own chain, trained by train_chain(rewind=0)
            chain = self.record(level, rewind=0)
            finish_branch(chain["accuracy"], chain["seconds"], chain.get("trained_with_seeds", [self.seed]),
                          chain.get("val_accuracy"))
            return None
        if start == "init":
            return Job(self, label, folder, 0, {**self.state(paths.W0), **applied.weights}, masks, finish_branch,
                       data_seed=data_seed)
        return Job(self, label, folder, self.k, {**wk, **applied.weights}, masks, finish_branch, data_seed=data_seed)

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
        record = load_json(self.branch_folder(name, params, level, perturbation_seed) / paths.DONE)
        return record | {"drop": _drop(record["ticket_accuracy"], record["accuracy"])}


def _drop(ticket: float | None, accuracy: float | None) -> float | None:
    """Ticket minus branch test accuracy; None where the test split was not evaluated (a validation-only search)."""
    return None if ticket is None or accuracy is None else ticket - accuracy


def train_chain(reps: list[Replicate], level: int, env: Env, rewind: int | None = None) -> None:
    """Everything the tickets at ``level`` need, stage by stage across the replicates (each stage's
    replicates train together as fused groups): the dense trunk, then IMP levels 1..level of the chain
    rewound to ``rewind`` (default: the preset's k), or the level-0 ticket when ``level`` is 0 or level 1
    prunes it (``Replicate.dense_dir``)."""
    def level0(rep: Replicate) -> Job | None:
        r = rep.k if rewind is None else rewind
        return rep.level_job(0, rewind) if level == 0 or rep.dense_dir(r) != rep.stage_dir(0) else None

    run_stage(reps, lambda rep: rep.trunk_job(), env)
    run_stage(reps, level0, env)
    for lvl in range(1, level + 1):
        run_stage(reps, lambda rep: rep.level_job(lvl, rewind), env)


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
