"""Every cache and result path, in one place.

Layout under the cache root (``--cache-dir``, else ``$BENCH_CACHE_DIR``, else the user cache folder)::

    data/                                                    generated and downloaded datasets
    experiments/p<protocol>/<config hash>/
        seed-<s>/trunk/         w0.pt wk.pt final.pt done.json   (the dense network, trained 0 -> T)
        seed-<s>/trunk/states/  w-<k>.pt                          (extra rewind points of the rewind curve)
        seed-<s>/level-L/       mask.pt final.pt done.json         (the ticket at level L; level-0: W_k retrained)
        seed-<s>/rewind-<r>/level-L/  mask.pt final.pt done.json   (IMP with its own chain, rewound to r != k)
        seed-<s>/<stage>/branch/<perturbation>-<params digest>-p<seed>/done.json
        seed-<s>/<stage>/rewind/k-<k>/done.json                    (a rewind-curve point)
        seed-<s>/pretrain/<task>-<params digest>-p<seed>/          (a pre-trained variant: its own trunk/, level-L/)
        seed-<s>/trace/N<n>-every<m>/                              (one seed's trace)
        seed-<s>/instability/level-L/k-<k>/copy-1/  final.pt done.json  (the second copy of a ticket at k; L = 0: dense)
        seed-<s>/<stage>/branch/<variant>/instability/copy-<c>/   (a branch's second copy; copy-0: its first, when
                                                                   the branch's own end weights are gone)
        fused/<group digest>/checkpoint.pt                         (a fused group's resume point)
        rewind-curve/level-L.json                                  trace/N<n>-every<m>/
    results/<config hash>/level-L/<perturbation>-<params digest>-p<seed>/seed-<s>.json
    results/<config hash>/instability/level-L/<subject>/k-<k>-<bn>-n<points>/seed-<s>.json

Changing any formula here orphans stored stages and results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from bench.config import digest
from bench.errors import BenchError

# -- the files in a stage folder: part of every cache path, so their names never change ---------------
DONE = "done.json"  # the stage's record, written last: its presence means the stage is finished
W0 = "w0.pt"  # the dense trunk's state at iteration 0
WK = "wk.pt"  # the dense trunk's state at the rewind point k (a pre-trained variant's: the pre-trained state)
FINAL = "final.pt"  # the stage's weights at T
MASK = "mask.pt"  # a ticket's pruning mask
CHECKPOINT = "checkpoint.pt"  # a training stage's resume point (a fused group's: under fused/)
LOCK = ".lock"  # held while the stage trains (bench.execute.stage_locks)
PRETRAIN_RECORD = "pretrain.json"  # a pre-trained variant's pre-training: steps, seconds, head
PRETRAIN_CHECKPOINT = "pretrain-checkpoint.pt"  # the pre-training's resume point


def data_dir(cache: Path) -> Path:
    return cache / "data"


def validation_only_dir(cache: Path) -> Path:
    """The cache tree of stages trained without evaluating the test split (``RunOptions.evaluate_test``)."""
    return cache / "validation-only"


def experiment_dir(cache: Path, config_hash: str) -> Path:
    # the protocol is part of the path: stages trained under other numerics are never read back as current
    from bench.provenance import PROTOCOL_VERSION

    return cache / "experiments" / f"p{PROTOCOL_VERSION}" / config_hash


def experiment_dirs(cache: Path, config_hash: str) -> list[Path]:
    """The configuration's stage folders under every protocol the cache holds."""
    return sorted((cache / "experiments").glob(f"p*/{config_hash}"))


def replicate_dir(cache: Path, config_hash: str, seed: int) -> Path:
    return experiment_dir(cache, config_hash) / f"seed-{seed}"


def stage_dir(replicate: Path, level: int) -> Path:
    """The dense trunk at level 0 (its files; its branches), else the ticket of IMP level ``level``."""
    return replicate / ("trunk" if level == 0 else f"level-{level}")


def ticket_dir(replicate: Path, level: int, rewind: int, preset_k: int) -> Path:
    """The ticket at ``level`` of the IMP chain that rewinds to iteration ``rewind``.

    The preset's own chain (rewind = k) lives at ``level-L``; a chain rewound elsewhere (the
    paper's IMP-rewound-to-0 reference, the rewind curve's chain per k) under ``rewind-<r>/``."""
    name = f"level-{level}"
    return replicate / name if rewind == preset_k else replicate / f"rewind-{rewind}" / name


def variant_key(name: str, params: dict[str, Any], seed: int) -> str:
    """A perturbation or pre-training with its parameters and its own seed, as one folder name.

    The name is checked again here (bench.plugins validates it at registration): a path is never built
    from text that could leave the cache or make two variants share a folder."""
    from bench.plugins import name_problem  # here, not at the top: bench.plugins imports much of bench

    problem = name_problem(name)
    if problem or not isinstance(seed, int):
        raise BenchError(f"Refusing to build a cache path: {problem or f'seed {seed!r} is not an integer'}.")
    return f"{name}-{digest(params, 8)}-p{seed}"


def branch_dir(replicate: Path, level: int, name: str, params: dict[str, Any], perturbation_seed: int) -> Path:
    return stage_dir(replicate, level) / "branch" / variant_key(name, params, perturbation_seed)


def pretrained_dir(replicate: Path, name: str, params: dict[str, Any], pretrain_seed: int) -> Path:
    return replicate / "pretrain" / variant_key(name, params, pretrain_seed)


def instability_copy_dir(replicate: Path, level: int, k: int, copy: int = 1) -> Path:
    """A copy of the ticket at ``level`` (level 0: the dense network) started at ``k`` and trained with its own
    data order (bench instability); copy 0 is the ticket itself (``ticket_dir``)."""
    return replicate / "instability" / f"level-{level}" / f"k-{k}" / f"copy-{copy}"


def branch_copy_dir(branch: Path, copy: int) -> Path:
    """A copy of the branch in ``branch`` for bench instability: copy 1 has its own data order, copy 0 retrains
    the branch itself (its end weights are not kept by ``bench run``)."""
    return branch / "instability" / f"copy-{copy}"


def instability_result_file(results: Path, record: dict[str, Any]) -> Path:
    """One file per (config, level, subject, start step k, BatchNorm mode, points, replicate seed)."""
    subject = record["subject"]
    name = "network" if subject["kind"] != "perturbation" else variant_key(subject["name"], subject["params"],
                                                                            subject["seed"])
    return (results / record["config_hash"] / "instability" / f"level-{record['level']}" / name
            / f"k-{record['k']}-{record['bn']}-n{record['points']}" / f"seed-{record['seed']}.json")


def rewind_point_dir(replicate: Path, level: int, k: int) -> Path:
    return stage_dir(replicate, level) / "rewind" / f"k-{k}"


def trunk_state_file(replicate: Path, k: int, preset_k: int) -> Path:
    """The dense trunk's state at iteration ``k``: W_0, W_k or one of the rewind curve's extra states."""
    trunk = stage_dir(replicate, 0)
    if k == 0:
        return trunk / W0
    if k == preset_k:
        return trunk / WK
    return trunk / "states" / f"w-{k}.pt"


def stage_id(folder: Path, cache: Path) -> str:
    """A stage folder as its checkpoints name it: relative to the cache root, so a moved cache still resumes."""
    try:
        return folder.relative_to(cache).as_posix()
    except ValueError:
        return str(folder)


def fused_dir(experiment: Path, members: Iterable[Path]) -> Path:
    """Where a fused group keeps its resume point: one folder per exact set of member stages."""
    return experiment / "fused" / digest([str(m.relative_to(experiment)) for m in members])


def trace_name(iterations: int, every: int) -> str:
    return f"N{iterations}-every{every}"


def trace_files(folder: Path) -> dict[str, Path]:
    """A trace's table (CSV, JSON) and timeline figure (PNG) in ``folder``: one seed's, or all seeds' together."""
    return {"csv": folder / "trace.csv", "json": folder / "trace.json", "png": folder / "trace.png"}


def rewind_curve_file(cache: Path, config_hash: str, level: int, suffix: str = ".json", chain: str = "per-k") -> Path:
    tag = "" if chain == "per-k" else f"-{chain}"
    return experiment_dir(cache, config_hash) / "rewind-curve" / f"level-{level}{tag}{suffix}"


def results_dir(cache: Path) -> Path:
    return cache / "results"


def result_file(results: Path, record: dict[str, Any], folder_name: str | None = None) -> Path:
    """One file per (config, level, perturbation, params, perturbation seed, replicate seed).

    ``folder_name`` replaces the perturbation's name where that name is not a valid folder name
    (a pre-training ranks as 'pretrain:<task>' and is stored as 'pretrain-<task>')."""
    pert = record["perturbation"]
    key = variant_key(folder_name or pert["name"], pert["params"], pert["seed"])
    return results / record["config_hash"] / f"level-{record['level']}" / key / f"seed-{record['seed']}.json"
