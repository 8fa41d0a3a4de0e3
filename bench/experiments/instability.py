"""``bench instability``: linear mode connectivity of the early phase (Frankle, Dziugaite, Roy & Carbin 2020).

From one starting state at step k, two copies train to T with different data orders; the error along the
straight line between their end states, minus the mean of its endpoints, is the error barrier (instability).
The subjects, each a pair of copies:

* the dense network at k (level 0): copy A is the level-0 ticket of the chain rewound to k (W_k retrained
  with a fresh optimizer, no mask: ``Replicate.level_job(0, k)``), copy B a stage of its own
  (``paths.instability_copy_dir``) started from the same state with data order ``derive_seed(seed,
  "instability", 1)``;
* the IMP ticket at a level, per k: copy A is the ticket of IMP's own chain rewound to k (as ``bench
  rewind-curve --chain per-k``; at the preset's k the preset's ticket), copy B the same mask and start with the
  other data order;
* a registered perturbation at the preset's k and level: copy A is the ordinary branch m * P(W_k) (read from
  the cache; retrained into ``instability/copy-0`` beside it, in the ticket's group, when ``bench run`` already
  deleted its end weights), copy B the same perturbed start with the other order. A perturbation that starts
  IMP from W_0 (imp-rewind-0) is the ticket of the chain rewound to 0.

Every copy is an ordinary stage (bench.execute): cached, resumable, fused in the group its copy A trained in.
The path evaluation is stored as a result file of kind ``instability`` (schemas/instability-v1.json), reused
while both copies' end states are the ones it measured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from bench import paths
from bench.cache import load_json, load_tensors, save_json
from bench.config import Experiment, full
from bench.interpolation import BN_MODES, DEFAULT_BN, DEFAULT_POINTS, alphas, barrier, path_errors
from bench.data import BatchStream
from bench.errors import BenchError
from bench.execute import Env, Job, StageEvent, execute
from bench.experiments.parallel import train_groups_side_by_side
from bench.experiments.records import plugin_fields, store
from bench.experiments.rewind_curve import CurveReplicate, ensure_states, parse_ks
from bench.experiments.setup import RunOptions, prepare
from bench.perturbation import resolve_params, start_point
from bench.plugins import Plugins, Registered, default_plugins
from bench.presets import Preset
from bench.provenance import PROTOCOL_VERSION, environment, fingerprint
from bench.results import INSTABILITY, STABLE_BELOW
from bench.stages import train_chain, training_groups
from bench.stats import summarize

SCHEMA_VERSION = 1
BN_BATCHES = 50  # most training batches BatchNorm statistics are recomputed on (at most one epoch's)


def order_seed(seed: int) -> int:
    """The data-order seed of copy B (copy A trains with the replicate's own order)."""
    from bench.seeding import derive_seed

    return derive_seed(seed, "instability", 1)


@dataclass(frozen=True)
class Subject:
    """What two copies start from: the network at ``level`` (0: dense) rewound to ``k``, or a perturbation."""

    kind: str  # dense | ticket | perturbation
    level: int
    k: int
    registered: Registered | None = None
    params: tuple[tuple[str, Any], ...] = ()
    perturbation_seed: int = 0

    @property
    def name(self) -> str:
        return self.registered.perturbation.name if self.registered else self.kind

    @property
    def chain(self) -> bool:
        """Whether the copies are a ticket of an IMP chain (dense/ticket, or a perturbation that is one)."""
        return self.registered is None or start_point(self.registered.perturbation) == "imp-from-init"

    def as_dict(self) -> dict[str, Any]:
        out = {"kind": self.kind, "name": self.name, "params": dict(self.params), "seed": self.perturbation_seed}
        return out | (plugin_fields(self.registered.plugin) if self.registered else {})


class InstabilityReplicate(CurveReplicate):
    """The replicate whose trunk keeps the states at the requested k and whose branches keep their end state."""

    keep_branch_weights = True

    def __init__(self, experiment: Experiment, seed: int, env: Env, ks: list[int]):
        super().__init__(experiment, seed, env, ks)
        self._copy: int | None = None  # branch_folder points into the branch's instability/copy-<c> while set

    def sibling(self, seed: int) -> "InstabilityReplicate":
        return InstabilityReplicate(self.exp, seed, self.env, self.curve_ks)

    def branch_data_seed(self, perturbation: Any, perturbation_seed: int) -> int | None:
        own = super().branch_data_seed(perturbation, perturbation_seed)
        # copy B of a branch with its own order (data-order) records the order it trains on; every other
        # branch's copy B is given that order by copy_job, its record unchanged
        return order_seed(self.seed) if self._copy == 1 and own is not None else own

    def branch_folder(self, name: str, params: dict[str, Any], level: int, perturbation_seed: int):
        folder = super().branch_folder(name, params, level, perturbation_seed)
        return folder if self._copy is None else paths.branch_copy_dir(folder, self._copy)

    # -- the two copies of a subject ----------------------------------------------------------------
    def folders(self, s: Subject) -> tuple:
        """Copy A's and copy B's stage folders."""
        if s.chain:
            return self.ticket_dir(s.level, s.k), paths.instability_copy_dir(self.root, s.level, s.k)
        branch = super().branch_folder(s.name, dict(s.params), s.level, s.perturbation_seed)
        first = branch if (branch / paths.FINAL).exists() or not (branch / paths.DONE).exists() else \
            paths.branch_copy_dir(branch, 0)
        return first, paths.branch_copy_dir(branch, 1)

    def copy_job(self, s: Subject, copy: int) -> Job | None:
        """Copy B (``copy`` 1) of a subject, or a branch's copy A retrained (``copy`` 0); None when done."""
        if not s.chain:
            self._copy = copy
            try:
                job = self.branch_job(s.registered, dict(s.params), s.level, s.perturbation_seed)
            finally:
                self._copy = None
            if job is not None:
                job.label = f"{job.label}, copy {copy}"
                _add_fields(job, {"start_fingerprint": fingerprint(job.state), "copy": copy})
                if copy == 1:  # copy A keeps the branch's own order (another one for the data-order control)
                    job.data_seed = order_seed(self.seed)
            return job
        folder = paths.instability_copy_dir(self.root, s.level, s.k)
        label = f"{self.ticket_label(s.level, s.k)}, copy 1"
        if self.cached_record(folder, label) is not None:
            return None
        state, masks = self.trunk_state(s.k), self.masks(s.level, s.k)
        fields = {"stage": "instability copy", "level": s.level, "rewind_step": s.k, "copy": copy,
                  "data_seed": order_seed(self.seed), "start_fingerprint": fingerprint(state)}
        return Job(self, label, folder, s.k, state, masks, self.finisher(folder, label, fields),
                   data_seed=order_seed(self.seed))

    def copy_records(self, s: Subject) -> tuple[dict, dict]:
        a, b = self.folders(s)
        return load_json(a / paths.DONE), load_json(b / paths.DONE)

    def start_fingerprint(self, s: Subject) -> str:
        return load_json(self.folders(s)[1] / paths.DONE)["start_fingerprint"]


def _add_fields(job: Job, extra: dict[str, Any]) -> None:
    """Job.finish that also writes ``extra`` into the stage's record."""
    original = job.finish

    def finish(accuracy: float, seconds: float, group: list[int], val_accuracy: float | None = None) -> dict:
        record = {**original(accuracy, seconds, group, val_accuracy), **extra}
        save_json(job.folder / paths.DONE, {k: v for k, v in record.items() if k != "drop"})
        return record
    job.finish = finish


def groups_by(reps: list[InstabilityReplicate], record: Callable[[InstabilityReplicate], dict]) -> list[list]:
    """The replicates grouped as the stage ``record`` reads was trained (bench.stages.training_groups for any
    stage): copy B trains in copy A's group."""
    by_seed = {rep.seed: rep for rep in reps}
    groups, seen = [], set()
    for rep in reps:
        if rep.seed not in seen:
            members = record(rep).get("trained_with_seeds", [rep.seed])
            groups.append([by_seed.get(s) or rep.sibling(s) for s in members])
            seen.update(members)
    return groups


def train_subjects(reps: list[InstabilityReplicate], subjects: list[Subject], env: Env) -> None:
    """Every stage the subjects need: the trunk (with its states at each k), copy A of each, then copy B."""
    execute([rep.trunk_job() for rep in reps], env)
    ensure_states(reps)
    for s in subjects:
        if s.chain:
            train_chain(reps, s.level, env, rewind=s.k)
        else:
            train_chain(reps, s.level, env)
            for group in training_groups(reps, s.level):  # the ordinary branch, in its ticket's group
                execute([rep.branch_job(s.registered, dict(s.params), s.level, s.perturbation_seed)
                         for rep in group], env)
                execute([rep.copy_job(s, 0) for rep in group
                         if rep.folders(s)[0].name == "copy-0"], env)  # its end state was not kept
    for s in subjects:
        first = (lambda rep: rep.record(s.level, s.k)) if s.chain else (lambda rep: rep.record(s.level))
        for group in groups_by(reps, first):
            execute([rep.copy_job(s, 1) for rep in group], env)


def measure(preset: Preset, rep: InstabilityReplicate, s: Subject, points: int, bn: str, bn_batches: int,
            results: Any) -> dict:
    """The subject's path for one replicate, as a stored result (read back while both end states match)."""
    env = rep.env
    (a_dir, b_dir), (rec_a, rec_b) = rep.folders(s), rep.copy_records(s)
    a, b = load_tensors(a_dir / paths.FINAL, env.device), load_tensors(b_dir / paths.FINAL, env.device)
    fps = {"start": rep.start_fingerprint(s),
           "mask": fingerprint(rep.masks(s.level, s.k if s.chain else None)) if s.level else None,
           "copy_a": fingerprint(a), "copy_b": fingerprint(b)}
    record = {"schema_version": SCHEMA_VERSION, "kind": INSTABILITY, "protocol_version": PROTOCOL_VERSION,
              "preset": preset.name, "config_hash": rep.hash, "config": full(rep.exp), "seed": rep.seed,
              "level": s.level, "steps": rep.T, "rewind_step": rep.k, "k": s.k, "subject": s.as_dict(),
              "points": points, "bn": bn, **({"bn_batches": bn_batches} if bn == "recompute" else {}),
              "alphas": alphas(points), "fingerprints": fps}
    path = paths.instability_result_file(results, record)
    if path.exists():
        try:
            old = load_json(path)
        except (ValueError, BenchError):
            old = None
        if old and all(old.get(key) == value for key, value in record.items() if key != "config"):
            return old
    ticket = rep.record(s.level, s.k if s.chain else None)
    data = env.data
    stream = BatchStream(data, rep.exp.train.batch_size, _bn_seed(rep.seed))
    t0 = time.perf_counter()
    errors = path_errors(rep.new_model(), a, b, points, bn,
                         {"train": (data.x_train, data.y_train), "test": (data.x_test, data.y_test)},
                         lambda: (stream.batch(i)[0] for i in range(bn_batches)))
    barriers = {split: barrier(errs) for split, errs in errors.items()}
    record |= {"density": ticket.get("sparsity", {}).get("density", 1.0), "error": errors, "barrier": barriers,
               "stable": barriers["test"] < STABLE_BELOW, "stable_below": STABLE_BELOW,
               "copies": [{"data_seed": rec_a.get("data_seed", rep.seed), "accuracy": rec_a["accuracy"],
                           "trained_with_seeds": rec_a.get("trained_with_seeds", [rep.seed])},
                          {"data_seed": order_seed(rep.seed), "accuracy": rec_b["accuracy"],
                           "trained_with_seeds": rec_b.get("trained_with_seeds", [rep.seed])}],
               "timings": {"copy_a_s": rec_a["seconds"], "copy_b_s": rec_b["seconds"],
                           "path_s": time.perf_counter() - t0},
               "environment": environment(env.device),
               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return store(path, record)


def _bn_seed(seed: int) -> int:
    from bench.seeding import derive_seed

    return derive_seed(seed, "instability", "batchnorm")


@dataclass
class Instability:
    preset: str
    experiment: Experiment
    level: int
    percent_remaining: float
    ks: list[int]
    preset_k: int
    steps: int
    seeds: list[int]
    bn: str
    points: int
    records: list[dict]
    events: list[StageEvent] = field(default_factory=list)

    def curves(self) -> list[dict[str, Any]]:
        """One entry per (subject, k): per-seed test barriers, their mean and 95% interval, stability."""
        out: dict[tuple, dict[str, Any]] = {}
        for r in self.records:
            subj = r["subject"]
            key = (subj["kind"], subj["name"], repr(sorted(subj["params"].items())), subj["seed"], r["level"], r["k"])
            entry = out.setdefault(key, {"subject": subj["kind"], "name": subj["name"], "params": subj["params"],
                                         "perturbation_seed": subj["seed"], "level": r["level"], "k": r["k"],
                                         "seeds": [], "barrier": [], "train_barrier": [], "error": []})
            entry["seeds"].append(r["seed"])
            entry["barrier"].append(r["barrier"]["test"])
            entry["train_barrier"].append(r["barrier"]["train"])
            entry["error"].append(r["error"]["test"])
        for entry in out.values():
            s = summarize(entry["barrier"])
            entry |= {"mean": s.mean, "ci_low": None if s.n < 2 else s.low, "ci_high": None if s.n < 2 else s.high,
                      "stable": s.mean < STABLE_BELOW,
                      "mean_error": [sum(col) / len(col) for col in zip(*entry["error"])]}
        return list(out.values())

    def as_dict(self) -> dict[str, Any]:
        from bench.config import config_hash

        return {"preset": self.preset, "config_hash": config_hash(self.experiment), "level": self.level,
                "percent_remaining": self.percent_remaining, "ks": self.ks, "preset_k": self.preset_k,
                "steps": self.steps, "seeds": self.seeds, "bn": self.bn, "points": self.points,
                "alphas": alphas(self.points), "stable_below": STABLE_BELOW, "curves": self.curves()}


def run_instability(preset: Preset, options: RunOptions, *, seeds: int | Sequence[int], ks_text: str | None = None,
                    level: int | None = None, sparsity: float | None = None, dense: bool = True,
                    ticket: bool = True, perturbations: Sequence[tuple[str, dict[str, str]]] = (),
                    perturbation_seed: int = 0, points: int = DEFAULT_POINTS, bn: str = DEFAULT_BN,
                    bn_batches: int | None = None, plugins: Plugins | None = None,
                    experiment: Experiment | None = None) -> Instability:
    if bn not in BN_MODES:
        raise BenchError(f"Unknown --bn '{bn}': use {', '.join(BN_MODES)}.")
    if not 2 <= points <= 1000:
        raise BenchError(f"--points must be between 2 and 1000 (the paper uses 30), got {points}.")
    plugins = plugins or default_plugins()
    chosen = [(r, resolve_params(r.perturbation, raw)) for r, raw in
              ((plugins.perturbation(name), raw) for name, raw in perturbations)]
    setup = prepare(preset, options, seeds=seeds, level=level, sparsity=sparsity, experiment=experiment)
    exp, env, lvl = setup.experiment, setup.env, setup.level
    probe = InstabilityReplicate(exp, 0, env, [])
    ks = parse_ks(ks_text, probe.k, probe.T, probe.per_epoch) if dense or (ticket and lvl) else []
    subjects = [Subject("dense", 0, k) for k in ks if dense]
    subjects += [Subject("ticket", lvl, k) for k in ks if ticket and lvl > 0]
    for registered, params in chosen:
        k = 0 if start_point(registered.perturbation) == "imp-from-init" else probe.k
        subjects.append(Subject("perturbation", lvl, k, registered, tuple(sorted(params.items())), perturbation_seed))
    if not subjects:
        raise BenchError("Nothing to measure: give --perturbation, or leave the dense network and the ticket on.")
    curve_ks = sorted({s.k for s in subjects})
    batches = bn_batches or min(BN_BATCHES, probe.per_epoch)

    results = paths.results_dir(options.cache)

    def train(group: list[int], on: Env) -> list[InstabilityReplicate]:
        reps = [InstabilityReplicate(exp, seed, on, curve_ks) for seed in group]
        train_subjects(reps, subjects, on)
        return reps

    def train_and_measure(group: list[int], on: Env) -> None:
        # a worker also walks its own group's paths (most of the time here): stored, so the pass below reads them
        reps = train(group, on)
        for s in subjects:
            for rep in reps:
                measure(preset, rep, s, points, bn, batches, results)

    train_groups_side_by_side(train_and_measure, setup.seeds, env, options.workers)
    reps = train(setup.seeds, env)  # after parallel groups: reads what they trained
    records = [measure(preset, rep, s, points, bn, batches, results) for s in subjects for rep in reps]
    return Instability(preset.name, exp, lvl, setup.percent_remaining, ks, probe.k, probe.T, setup.seeds, bn,
                       points, records, env.events)
