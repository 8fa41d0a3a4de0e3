"""``bench rewind-curve``: ticket accuracy against the rewind iteration k, at one sparsity.

For every replicate seed there is one dense trunk, the preset's own: trained from W_0 to T once,
it saves the state at every requested k in the same run (W_0 and the preset's W_k as usual,
the others under ``trunk/states/w-<k>.pt``). If the trunk was already in the cache without some
of those states, they are recovered by replaying its first max(k) iterations from W_0 in the seed
group the trunk was trained in (the data order and learning rate are functions of the step, the
optimizer starts fresh at 0, and the group fixes the rounding path, so this is the same trajectory,
bit for bit on CPU). The dense network is never trained to the end twice.

Two ways to draw it (``chain``):

* ``per-k`` (the default, the paper's way): for each k, IMP runs its own pruning chain rewound to k
  (every level prunes that chain's previous level and trains the trunk's state at k, k -> T), so
  each point has its own masks. At the preset's k the chain is the preset's own (reused).
* ``one-mask``: the preset's IMP chain gives one mask at the chosen level, and the curve varies only
  the rewind point: for each k the survivors start from the trunk's state at k (BatchNorm state
  included) and train k -> T with a fresh optimizer. Cheaper (one training per k instead of one per
  level per k), but it asks a narrower question: how well k's weights do under k*'s mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence


from bench import paths
from bench.cache import load_json, load_tensors, save_json
from bench.config import Experiment, config_hash, parse_step
from bench.errors import BenchError
from bench.execute import Env, Job, StageEvent, execute, run_stage
from bench.experiments.parallel import train_groups_side_by_side
from bench.experiments.setup import RunOptions, prepare
from bench.presets import Preset
from bench.stages import Replicate, train_chain, training_groups
from bench.stats import summarize


def default_ks(k: int, total: int) -> list[int]:
    """0 and a doubling ladder around the preset's k (k/4 .. 8k), below T."""
    base = k or max(1, total // 64)
    ks = {0, k} | {max(1, round(base * 2.0 ** j)) for j in range(-2, 4)}
    return sorted(x for x in ks if 0 <= x < total)


def parse_ks(text: str | None, k: int, total: int, per_epoch: int) -> list[int]:
    """'0,10,20' or step strings ('500it', '1ep'), comma separated; each must lie in [0, T)."""
    if text is None or not text.strip():
        return default_ks(k, total)
    ks = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        value = int(item) if item.isdigit() else parse_step(item, per_epoch)
        if not 0 <= value < total:
            raise BenchError(f"Rewind iteration {item} is outside 0..{total - 1} (T = {total} iterations).")
        ks.add(value)
    if not ks:
        raise BenchError("--k needs at least one rewind iteration, e.g. --k 0,10,20.")
    return sorted(ks)


class CurveReplicate(Replicate):
    """The normal replicate, whose trunk also keeps the states at the curve's rewind points."""

    def __init__(self, experiment: Experiment, seed: int, env: Env, ks: list[int]):
        super().__init__(experiment, seed, env)
        self.curve_ks = list(ks)

    def state_file(self, k: int) -> Path:
        return paths.trunk_state_file(self.root, k, self.k)

    def extra_states(self) -> dict[int, Path]:
        return {k: self.state_file(k) for k in self.curve_ks if k not in (0, self.k)}

    def trunk_job(self) -> Job | None:
        job = super().trunk_job()
        if job is not None:  # trained now: keep every requested state in this one dense run
            root = self.stage_dir(0)
            job.snapshots.update({k: str(p.relative_to(root)) for k, p in self.extra_states().items()})
        return job

    def sibling(self, seed: int) -> "CurveReplicate":
        return CurveReplicate(self.exp, seed, self.env, self.curve_ks)

    def missing_states(self) -> dict[int, str]:
        root = self.stage_dir(0)
        return {k: str(p.relative_to(root)) for k, p in self.extra_states().items() if not p.exists()}

    def rewind_folder(self, level: int, k: int) -> Path:
        return paths.rewind_point_dir(self.root, level, k)

    def rewind_job(self, level: int, k: int) -> Job | None:
        """The level's mask with its survivors rewound to the trunk's state at k, trained k -> T."""
        if level > 0 and k == self.k:
            return None  # the ticket itself
        folder = self.rewind_folder(level, k)
        label = f"ticket rewound to {k} at level {level}"
        if self.cached_record(folder, label) is not None:
            return None
        state = load_tensors(self.state_file(k), self.env.device)
        masks = self.masks(level) if level else None
        finish = self.finisher(folder, label, {"stage": "rewind", "level": level, "rewind_step": k})

        def finish_point(accuracy: float, seconds: float, group: list[int], val_accuracy: float | None = None) -> dict:
            (folder / paths.FINAL).unlink(missing_ok=True)  # only the accuracy is kept
            return finish(accuracy, seconds, group, val_accuracy)

        return Job(self, label, folder, k, state, masks, finish_point)

    def point(self, level: int, k: int, chain: str = "one-mask") -> dict:
        if chain == "per-k" or (level > 0 and k == self.k):
            return self.record(level, rewind=k)
        return load_json(self.rewind_folder(level, k) / paths.DONE)


_REPLAY = "dense trunk 0 -> "  # the label of a replay event, followed by the iterations replayed


def ensure_states(reps: list[CurveReplicate]) -> int:
    """Replay W_0 -> max(missing k) for states cached trunks lack, each trunk in its own training
    group so the replay retraces it exactly; return the iterations replayed."""
    replayed = 0
    for group in training_groups(reps, None):
        missing = [rep.missing_states() for rep in group]
        if not any(missing):
            continue
        end = max(k for m in missing for k in m)
        execute([rep.replay_job(end, m) for rep, m in zip(group, missing)], group[0].env)
        for rep in group:
            rep.env.note("replayed", f"{_REPLAY}{end}", rep.seed)
        replayed += end * len(group)
    return replayed


def iterations_replayed(events: list[StageEvent]) -> int:
    """The iterations replayed by :func:`ensure_states`, also in worker processes, from their events."""
    return sum(int(e.stage[len(_REPLAY):]) for e in events if e.kind == "replayed" and e.stage.startswith(_REPLAY))


@dataclass
class Curve:
    preset: str
    experiment: Experiment
    level: int
    percent_remaining: float
    ks: list[int]
    chain: str  # per-k | one-mask
    preset_k: int
    steps: int
    seeds: list[int]
    accuracy: dict[int, list[float]]  # k -> accuracy per seed
    dense: list[float]
    trunks_trained: int
    iterations_replayed: int
    events: list[StageEvent] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        points = []
        for k in self.ks:
            s = summarize(self.accuracy[k])
            points.append({"k": k, "accuracy": self.accuracy[k], "mean": s.mean, "ci_low": _num(s.low),
                           "ci_high": _num(s.high)})
        d = summarize(self.dense)
        return {"preset": self.preset, "config_hash": config_hash(self.experiment), "level": self.level,
                "percent_remaining": self.percent_remaining, "chain": self.chain, "preset_k": self.preset_k,
                "steps": self.steps,
                "seeds": self.seeds, "points": points,
                "dense": {"accuracy": self.dense, "mean": d.mean, "ci_low": _num(d.low), "ci_high": _num(d.high)},
                "trunks_trained": self.trunks_trained, "iterations_replayed": self.iterations_replayed}


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


CHAINS = ("per-k", "one-mask")


def run_rewind_curve(preset: Preset, ks_text: str | None, options: RunOptions, *, seeds: int | Sequence[int],
                     level: int | None = None, sparsity: float | None = None, chain: str = "per-k",
                     experiment: Experiment | None = None) -> Curve:
    if chain not in CHAINS:
        raise BenchError(f"Unknown --chain '{chain}': use per-k (a pruning chain per rewind point, the paper's way) "
                         f"or one-mask (the preset's mask for every k).")
    setup = prepare(preset, options, seeds=seeds, level=level, sparsity=sparsity, experiment=experiment)
    exp, env, lvl, table = setup.experiment, setup.env, setup.level, setup.table
    probe = Replicate(exp, 0, env)
    ks = parse_ks(ks_text, probe.k, probe.T, probe.per_epoch)

    def train(group: list[int], on: Env) -> list[CurveReplicate]:
        reps = [CurveReplicate(exp, seed, on, ks) for seed in group]
        if chain == "one-mask" or lvl == 0:  # at level 0 both ways are W_k retrained, without a mask
            train_chain(reps, lvl, on)
        else:
            run_stage(reps, lambda rep: rep.trunk_job(), on)
        ensure_states(reps)
        for k in ks:
            if chain == "per-k":
                train_chain(reps, lvl, on, rewind=k)
            else:
                run_stage(reps, lambda rep: rep.rewind_job(lvl, k), on)
        return reps

    train_groups_side_by_side(train, setup.seeds, env, options.workers)
    reps = train(setup.seeds, env)  # after parallel groups: reads what they trained
    trunks = sum(e.kind == "trained" and e.stage == "dense trunk" for e in env.events)
    return Curve(preset.name, exp, lvl, table[lvl][1], ks, chain, probe.k, probe.T, [r.seed for r in reps],
                 {k: [rep.point(lvl, k, chain)["accuracy"] for rep in reps] for k in ks},
                 [rep.trunk_record()["accuracy"] for rep in reps], trunks, iterations_replayed(env.events), env.events)


def save_curve(curve: Curve, output: Path | None, cache: Path) -> tuple[Path, Path]:
    """Write the curve's JSON beside the run; return its path and where its plot goes (``output``, default
    beside the JSON), which the caller draws (bench.report.figures.draw_curve): experiments draw nothing."""
    data = curve.as_dict()
    json_path = paths.rewind_curve_file(cache, data["config_hash"], curve.level, chain=curve.chain)
    save_json(json_path, data)
    png = Path(output) if output else paths.rewind_curve_file(cache, data["config_hash"], curve.level, ".png", curve.chain)
    return json_path, png
