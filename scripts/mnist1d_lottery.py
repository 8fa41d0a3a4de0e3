"""MNIST-1D's lottery-ticket notebook, reproduced with the harness: ticket vs random pruning over sparsity.

Trains the `mnist1d-lottery` preset's IMP chain (rewound to W_0) twice per seed, once pruned by
`magnitude-layerwise` (the notebook's tickets) and once by `random-layerwise` (its random control),
with the same seeds, so each random network starts from its ticket's W_0 and data order. Writes the
per-sparsity numbers (JSON and CSV) and a figure beside the notebook's published numbers
(docs/data/mnist1d-lottery-notebook.json). See docs/mnist1d-lottery.md.

    python scripts/mnist1d_lottery.py --cache-dir /tmp/lottery-cache            # train (cached) + write
    python scripts/mnist1d_lottery.py --cache-dir /tmp/lottery-cache --plot-only  # figure from the JSON
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "data" / "mnist1d-lottery-notebook.json"
STRATEGIES = {"ticket": "magnitude-layerwise", "random": "random-layerwise"}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def train(cache: Path, seeds: list[int], threads: int, retrains: list[int] | None = None,
          arms: tuple[str, ...] = tuple(STRATEGIES)) -> dict:
    """Train the arms' chains; ``retrains`` (the notebook's retrain indices, i/99 sparse) replaces the
    preset's grid, e.g. to prune in the notebook's 1% steps at the sparse end."""
    from bench import models
    from bench.connectivity import effective_density
    from bench.data import load_dataset
    from bench.presets import get_preset, notebook_sparsities
    from bench.pruning import with_strategy
    from bench.stages import Env, Replicate, train_chain

    from bench.plugins import default_plugins

    # the code that runs is the code at the start: provenance read now, every module (the strategies'
    # plugins included) imported now
    commit, dirty = git("rev-parse", "HEAD"), bool(git("status", "--porcelain"))
    default_plugins().pruning_strategies()
    torch.set_num_threads(threads)
    preset = get_preset("mnist1d-lottery")
    base = preset.experiment
    if retrains:
        grid = notebook_sparsities(1)
        base = base.with_overrides(prune={"levels": len(retrains), "schedule": tuple(grid[i - 1] for i in retrains)})
    levels = base.prune.levels
    rows, started = [], time.perf_counter()
    for arm in arms:
        strategy = STRATEGIES[arm]
        exp = with_strategy(base, strategy, {})
        data = load_dataset(exp.data, cache / "data", torch.device("cpu"))
        env = Env(cache=cache, device=torch.device("cpu"), data=data, group_size=preset.group_size)
        reps = [Replicate(exp, seed, env) for seed in seeds]
        t0 = time.perf_counter()
        train_chain(reps, levels, env)
        seconds = time.perf_counter() - t0
        print(f"{arm} ({strategy}): {levels} levels x {len(seeds)} seeds in {seconds:.0f} s", flush=True)
        model = models.build_model(exp.model, data.in_channels, data.num_classes)
        for rep in reps:
            trunk = rep.trunk_record()
            rows.append({"arm": arm, "strategy": strategy, "seed": rep.seed, "level": 0, "sparsity": 0.0,
                         "density": 1.0, "effective_density": 1.0, "accuracy": trunk["accuracy"],
                         "config_hash": rep.hash})
            for level in range(1, levels + 1):
                record = rep.record(level)
                masks = rep.masks(level)
                rows.append({"arm": arm, "strategy": strategy, "seed": rep.seed, "level": level,
                             "sparsity": exp.prune.schedule[level - 1],
                             "density": record["sparsity"]["density"],
                             "effective_density": effective_density(model, masks),
                             "accuracy": record["accuracy"], "config_hash": rep.hash})
    return {
        "preset": preset.name, "seeds": seeds, "strategies": STRATEGIES,
        "command": f"python scripts/mnist1d_lottery.py --cache-dir CACHE --seeds {','.join(map(str, seeds))}" + (
            f" --retrains {','.join(map(str, retrains))} --arms {','.join(arms)} --out OUT" if retrains else ""),
        "git_commit": commit, "git_dirty": dirty,
        "torch": torch.__version__, "threads": threads, "machine": platform.processor() or platform.machine(),
        "train_seconds": round(time.perf_counter() - started, 1), "rows": rows,
    }


def notebook_points() -> dict[str, list[tuple[float, float, float, float]]]:
    """Per arm: (sparsity, mean, min, max) of the notebook's two trials' final test accuracy."""
    raw = json.loads(NOTEBOOK.read_text())
    out: dict[str, list[tuple[float, float, float, float]]] = {}
    for arm, key in (("ticket", "magnitude"), ("random", "random")):
        per_trial = [t[key] for t in raw["trials"]]
        points = []
        for i in range(len(per_trial[0])):
            accs = [trial[i]["last_acc"] for trial in per_trial]
            points.append((i / 99, sum(accs) / len(accs), min(accs), max(accs)))
        out[arm] = points
    return out


def summary(result: dict) -> list[dict]:
    """Per arm and level: our mean, min and max over seeds, and the notebook's at the same sparsity."""
    nb = notebook_points()
    out = []
    for arm in dict.fromkeys(r["arm"] for r in result["rows"]):
        for level in sorted({r["level"] for r in result["rows"]}):
            rows = [r for r in result["rows"] if r["arm"] == arm and r["level"] == level]
            accs = [r["accuracy"] for r in rows]
            index = round(rows[0]["sparsity"] * 99)
            _, nb_mean, nb_min, nb_max = nb[arm][index]
            out.append({"arm": arm, "level": level, "sparsity": rows[0]["sparsity"], "notebook_retrain": index,
                        "density": sum(r["density"] for r in rows) / len(rows),
                        "effective_density": sum(r["effective_density"] for r in rows) / len(rows),
                        "mean": sum(accs) / len(accs), "min": min(accs), "max": max(accs), "n": len(accs),
                        "notebook_mean": nb_mean, "notebook_min": nb_min, "notebook_max": nb_max})
    return out


def plot(result: dict, path: Path, tail: dict | None = None) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    nb = notebook_points()
    table = result["summary"]
    fig = Figure(figsize=(7.5, 4.2), dpi=130)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colors = {"ticket": "tab:blue", "random": "tab:red"}
    for arm, color in colors.items():
        pts = [p for p in nb[arm] if p[0] < 1]  # 0% remaining has no place on a log axis
        x = [100 * (1 - p[0]) for p in pts]
        ax.fill_between(x, [p[2] for p in pts], [p[3] for p in pts], color=color, alpha=0.15, linewidth=0)
        ax.plot(x, [p[1] for p in pts], color=color, alpha=0.5, linewidth=1,
                label=f"notebook {arm} (mean, band: its 2 trials)")
        rows = [r for r in table if r["arm"] == arm]
        x = [100 * r["density"] for r in rows]
        ax.errorbar(x, [r["mean"] for r in rows], yerr=[[r["mean"] - r["min"] for r in rows],
                                                        [r["max"] - r["mean"] for r in rows]],
                    fmt="o-", color=color, markersize=4, linewidth=1.5, capsize=2,
                    label=f"ours {arm} ({STRATEGIES[arm]}; mean, bars: {rows[0]['n']} seeds)")
    if tail is not None:  # the ticket chain pruned in the notebook's 1% steps at the sparse end
        rows = [r for r in tail["summary"] if r["arm"] == "ticket" and r["sparsity"] > 0.9]
        ax.errorbar([100 * r["density"] for r in rows], [r["mean"] for r in rows],
                    yerr=[[r["mean"] - r["min"] for r in rows], [r["max"] - r["mean"] for r in rows]],
                    fmt="s--", color="tab:cyan", markersize=4, linewidth=1, capsize=2,
                    label="ours ticket, pruned in 1% steps beyond 91% sparse (mean, bars: seeds)")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ticks = [100, 50, 20, 10, 5, 2, 1]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("weights remaining (%)")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title("MNIST-1D lottery tickets: notebook vs this harness (MLP 40-500-500-10, rewound to W_0)",
                 fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--seeds", default="0,1", help="comma-separated replicate seeds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the committed run: 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "data" / "mnist1d-lottery.json")
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "figures" / "mnist1d-lottery.png")
    parser.add_argument("--plot-only", action="store_true", help="redraw the figure from --out")
    parser.add_argument("--retrains", default="", help="the notebook's retrain indices to prune to, e.g. 7,14,91,92 "
                                                       "(default: the preset's grid)")
    parser.add_argument("--arms", default="ticket,random", help="ticket, random or both")
    parser.add_argument("--tail", type=Path, default=None, help="a --retrains run's JSON to draw in the figure too")
    args = parser.parse_args()
    if args.plot_only:
        result = json.loads(args.out.read_text())
    else:
        retrains = [int(i) for i in args.retrains.split(",") if i.strip()] or None
        result = train(args.cache_dir, [int(s) for s in args.seeds.split(",")], args.threads, retrains,
                       tuple(a.strip() for a in args.arms.split(",")))
        result["summary"] = summary(result)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        with args.out.with_suffix(".csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(result["summary"][0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(result["summary"])
    wrote = [str(args.out), str(args.out.with_suffix(".csv"))] if not args.plot_only else []
    if not args.retrains:  # a --retrains run is drawn with the preset's, through --tail
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        plot(result, args.figure, json.loads(args.tail.read_text()) if args.tail else None)
        wrote.append(str(args.figure))
    print(f"wrote {', '.join(wrote)}")


if __name__ == "__main__":
    main()
