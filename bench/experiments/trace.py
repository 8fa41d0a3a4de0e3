"""``bench trace``: what changes in the network during dense training (paper, Section 3 / Figure 1).

The traced run replays the replicate's dense trajectory: from the trunk's W_0, with the trunk's
data order, schedule and fresh optimizer, for the first N iterations. The trunk itself is trained
(or read from the cache) first. When N = T the "final weights" are the replay's own end; when N < T
they are the cached trunk's final.pt. The two agree exactly on CPU for a trunk trained alone, but
early training is chaotic: a trunk trained fused with other seeds followed a path that differs by
rounding, which grows within tens of iterations, so its final.pt is another sample of the same
training (``checks`` in the output reports how far the replay ended from it).
At iteration t in the recorded set (0, every M-th, powers of two for the log axis, and N):

* test accuracy (%) and mean test cross-entropy, in eval mode (BatchNorm running statistics);
* over the prunable weights (conv and linear), flattened into one vector w_t:
  mean |w_t|; the fraction whose sign differs from W_0; ||w_t - w_0||; ||w_t - w_T||;
  cos(w_t, w_0); cos(w_t, w_T), where w_T is the final weights (above);
* the gradient norm: ||g_t|| over the prunable weights, g_t the minibatch loss gradient that
  step t computes at w_t (so the last recorded iteration N, which has no step, has none).

Recording runs only here, as the training loop's progress callback: ``bench run`` never pays for it.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench import paths
from bench.cache import load_json, save_json
from bench.config import Experiment, config_hash
from bench.data import BatchStream
from bench.errors import BenchError
from bench.execute import Env, StageEvent, run_stage
from bench.experiments.parallel import train_groups_side_by_side
from bench.experiments.setup import RunOptions, prepare
from bench.presets import Preset
from bench.progress import NO_PROGRESS, Progress
from bench.stages import Replicate
from bench.training import Trainer, run

COLUMNS = ("iteration", "test_accuracy", "test_loss", "grad_norm", "mean_abs_weight", "sign_flip_fraction",
           "distance_from_init", "distance_from_final", "cosine_to_init", "cosine_to_final")


def record_steps(iterations: int, every: int) -> list[int]:
    """0, every ``every``-th iteration, the powers of two (early detail on a log axis), and the end."""
    if every < 1:
        raise BenchError("--every must be at least 1.")
    steps = {0, iterations} | set(range(0, iterations + 1, every))
    power = 1
    while power <= iterations:
        steps.add(power)
        power *= 2
    return sorted(steps)


def _flat(weights: Mapping[str, torch.Tensor], names: Sequence[str]) -> torch.Tensor:
    return torch.cat([weights[n].detach().flatten().double() for n in names])


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    na, nb = float(a.norm()), float(b.norm())
    return float(a @ b) / (na * nb) if na > 0 and nb > 0 else math.nan


def weight_metrics(current: Mapping[str, torch.Tensor], init: Mapping[str, torch.Tensor],
                   final: Mapping[str, torch.Tensor] | None = None,
                   names: Sequence[str] | None = None) -> dict[str, float]:
    """The weight-space measurements of one state, over ``names`` (default: all of ``init``) pooled."""
    names = list(names or init)
    w = _flat(current, names)
    w0 = _flat(init, names).to(w.device)
    out = {
        "mean_abs_weight": float(w.abs().mean()),
        "sign_flip_fraction": float((torch.sign(w) != torch.sign(w0)).double().mean()),
        "distance_from_init": float((w - w0).norm()),
        "cosine_to_init": _cosine(w, w0),
    }
    if final is not None:
        out.update(final_metrics(w, _flat(final, names).to(w.device)))
    return out


def final_metrics(w: torch.Tensor, wf: torch.Tensor) -> dict[str, float]:
    w, wf = w.double(), wf.double()
    return {"distance_from_final": float((w - wf).norm()), "cosine_to_final": _cosine(w, wf)}


def grad_norm(params: Sequence[nn.Parameter]) -> float | None:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return None
    return math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads))


@torch.no_grad()
def test_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2000) -> tuple[float, float]:
    """(accuracy %, mean cross-entropy) on the test set, in eval mode; the mode is restored."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    loss = torch.zeros((), dtype=torch.float64, device=x.device)
    for i in range(0, x.shape[0], batch_size):
        logits = model(x[i:i + batch_size]).float()
        correct += (logits.argmax(1) == y[i:i + batch_size]).sum()
        loss += F.cross_entropy(logits, y[i:i + batch_size], reduction="sum").double()
    model.train(was_training)
    return 100.0 * int(correct) / x.shape[0], float(loss) / x.shape[0]


class Recorder:
    """Fills one row per recorded iteration; ``after_step`` is the training loop's progress callback."""

    def __init__(self, model: nn.Module, names: Sequence[str], steps: Sequence[int],
                 init: Mapping[str, torch.Tensor], x_test: torch.Tensor, y_test: torch.Tensor, *,
                 progress=None):
        self.model, self.names = model, list(names)
        params = dict(model.named_parameters())
        self.params = [params[n] for n in self.names]
        self.init = init
        self.flat: dict[int, torch.Tensor] = {}  # recorded weights, compared with the final ones at the end
        self.x_test, self.y_test = x_test, y_test
        self.rows: dict[int, dict[str, Any]] = {s: {"iteration": s, "grad_norm": None} for s in steps}
        self.progress = progress
        self.states: dict[int, dict[str, torch.Tensor]] = {}  # prunable weights kept for checks
        self.keep: set[int] = set()

    def record(self, step: int) -> None:
        current = {n: p.detach() for n, p in zip(self.names, self.params)}
        row = self.rows[step]
        row.update(weight_metrics(current, self.init, None, self.names))
        self.flat[step] = _flat(current, self.names).float()
        row["test_accuracy"], row["test_loss"] = test_metrics(self.model, self.x_test, self.y_test)

    def after_step(self, step: int) -> None:
        # called after the step that took the model from iteration step-1 to step; .grad is still
        # the gradient that step computed at iteration step-1
        if step - 1 in self.rows:
            self.rows[step - 1]["grad_norm"] = grad_norm(self.params)
        if step in self.keep:
            self.states[step] = {n: p.detach().clone() for n, p in zip(self.names, self.params)}
        if step in self.rows:
            self.record(step)
        if self.progress:
            self.progress(step)

    def table(self, final: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
        """The rows, with distance and cosine to ``final`` filled in."""
        wf = _flat(final, self.names)
        for step, w in self.flat.items():
            self.rows[step].update(final_metrics(w.to(wf.device), wf))
        return [self.rows[s] for s in sorted(self.rows)]


@dataclass
class Trace:
    preset: str
    experiment: Experiment
    iterations: int
    every: int
    preset_k: int
    steps: int
    rows: dict[int, list[dict[str, Any]]]  # seed -> rows
    checks: dict[int, dict[str, float]]  # seed -> agreement of the traced run with the cached trunk
    files: dict[int, tuple[Path, Path]] = field(default_factory=dict)  # seed -> (csv, json)
    events: list[StageEvent] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, "config_hash": config_hash(self.experiment), "iterations": self.iterations,
                "every": self.every, "preset_k": self.preset_k, "steps": self.steps,
                "seeds": {str(s): {"rows": r, "checks": self.checks[s]} for s, r in self.rows.items()}}


def trace_seed(rep: Replicate, iterations: int, every: int, progress: Progress = NO_PROGRESS
               ) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Rows of the traced replay of ``rep``'s trunk (which must be done), and its agreement checks."""
    w0_state = rep.state(paths.W0)
    names = list(rep.prunable(w0_state))
    init = {n: w0_state[n] for n in names}
    final = rep.prunable(rep.state(paths.FINAL))
    model = rep.new_model()
    model.load_state_dict(w0_state)
    trainer = Trainer(model, rep.exp.train, rep.schedule)
    stream = BatchStream(rep.env.data, rep.exp.train.batch_size, rep.seed)
    bar = progress.start(f"tracing dense run 0 -> {iterations} seed {rep.seed}", iterations)
    recorder = Recorder(model, names, record_steps(iterations, every), init,
                        rep.env.data.x_test, rep.env.data.y_test, progress=bar.advance)
    if 0 < rep.k <= iterations:
        recorder.keep.add(rep.k)
    recorder.record(0)
    run(trainer, stream, 0, iterations, progress=recorder.after_step)
    checks: dict[str, float] = {}
    if rep.k in recorder.states:  # the replay should retrace the trunk (exactly, on CPU and unfused)
        wk = rep.prunable(rep.state(paths.WK))
        checks["wk_max_abs_diff"] = max(float((recorder.states[rep.k][n] - wk[n]).abs().max()) for n in names)
    if iterations == rep.T:
        # The replay's own end is "the final weights": early training is chaotic, so a replay of a
        # trunk trained fused with other seeds ends elsewhere than the cached final.pt (checked here).
        last = {n: p.detach().clone() for n, p in zip(recorder.names, recorder.params)}
        checks["final_max_abs_diff"] = max(float((last[n] - final[n]).abs().max()) for n in names)
        final = last
    return recorder.table(final), checks


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = COLUMNS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})


def run_trace(preset: Preset, options: RunOptions, *, iterations: int | None = None, every: int | None = None,
              seeds: int | Sequence[int] = 1, experiment: Experiment | None = None) -> Trace:
    setup = prepare(preset, options, seeds=seeds, level=0, experiment=experiment)  # a trace trains level 0
    exp, env = setup.experiment, setup.env
    probe = Replicate(exp, 0, env)
    n = probe.T if iterations is None else iterations
    if not 1 <= n <= probe.T:
        raise BenchError(f"--iterations must be between 1 and T = {probe.T}, got {n}.")
    m = every if every is not None else max(1, round(n / 100))
    record_steps(n, m)  # validates --every

    def train(group: list[int], on: Env) -> list[tuple[Replicate, list[dict[str, Any]], dict[str, float], Path, Path]]:
        """Each seed's trunk (the final weights come from it), then its trace, saved beside the run."""
        reps = [Replicate(exp, seed, on) for seed in group]
        run_stage(reps, lambda rep: rep.trunk_job(), on)
        traced = []
        for rep in reps:
            files = paths.trace_files(rep.root / "trace" / paths.trace_name(n, m))
            if files["json"].exists():
                saved = load_json(files["json"])
                rows, checks = saved["rows"], saved["checks"]
                on.note("cached", "trace", rep.seed)
            else:
                rows, checks = trace_seed(rep, n, m, on.progress)
                write_csv(files["csv"], rows)
                save_json(files["json"], {"preset": preset.name, "config_hash": rep.hash, "seed": rep.seed,
                                          "iterations": n, "every": m, "rewind_step": rep.k, "steps": rep.T,
                                          "columns": list(COLUMNS), "rows": rows, "checks": checks})
                on.note("traced", "trace", rep.seed)
            traced.append((rep, rows, checks, files["csv"], files["json"]))
        return traced

    train_groups_side_by_side(train, setup.seeds, env, options.workers)
    out = Trace(preset.name, exp, n, m, probe.k, probe.T, {}, {}, events=env.events)
    for rep, rows, checks, csv_path, json_path in train(setup.seeds, env):  # after parallel groups: reads theirs
        out.rows[rep.seed], out.checks[rep.seed] = rows, checks
        out.files[rep.seed] = (csv_path, json_path)
    return out


def default_output(cache: Path, trace: Trace) -> Path:
    return paths.experiment_dir(cache, config_hash(trace.experiment)) / "trace" / paths.trace_name(trace.iterations,
                                                                                                   trace.every)


def save_trace(trace: Trace, output: Path) -> dict[str, Path]:
    """All seeds' rows as one CSV and JSON into ``output``; returns their paths and the timeline figure's
    ("png"), which the caller draws (bench.report.figures.draw_trace): experiments draw nothing."""
    output.mkdir(parents=True, exist_ok=True)
    rows = [{"seed": s, **r} for s, seed_rows in sorted(trace.rows.items()) for r in seed_rows]
    files = paths.trace_files(output)
    write_csv(files["csv"], rows, ("seed", *COLUMNS))
    save_json(files["json"], trace.as_dict())
    return files
