"""Every cache and result path, in one place.

Layout under the cache root (``--cache-dir``, else ``$BENCH_CACHE_DIR``, else the user cache folder)::

    data/                                                    generated and downloaded datasets
    experiments/<config hash>/
        seed-<s>/trunk/         w0.pt wk.pt final.pt done.json   (level 0: the dense network)
        seed-<s>/trunk/states/  w-<k>.pt                          (extra rewind points of the rewind curve)
        seed-<s>/level-L/       mask.pt final.pt done.json         (the ticket at level L)
        seed-<s>/<stage>/branch/<perturbation>-<params digest>-p<seed>/done.json
        seed-<s>/<stage>/rewind/k-<k>/done.json                    (a rewind-curve point)
        seed-<s>/pretrain/<task>-<params digest>-p<seed>/          (a pre-trained variant: its own trunk/, level-L/)
        seed-<s>/trace/N<n>-every<m>/                              (one seed's trace)
        fused/<group digest>/checkpoint.pt                         (a fused group's resume point)
        rewind-curve/level-L.json                                  trace/N<n>-every<m>/
    results/<config hash>/level-L/<perturbation>-<params digest>-p<seed>/seed-<s>.json

Changing any formula here orphans stored stages and results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from bench.config import digest
from bench.errors import BenchError


def data_dir(cache: Path) -> Path:
    return cache / "data"


def experiment_dir(cache: Path, config_hash: str) -> Path:
    return cache / "experiments" / config_hash


def replicate_dir(cache: Path, config_hash: str, seed: int) -> Path:
    return experiment_dir(cache, config_hash) / f"seed-{seed}"


def stage_dir(replicate: Path, level: int) -> Path:
    """The dense trunk at level 0, else the ticket of IMP level ``level``."""
    return replicate / ("trunk" if level == 0 else f"level-{level}")


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


def rewind_point_dir(replicate: Path, level: int, k: int) -> Path:
    return stage_dir(replicate, level) / "rewind" / f"k-{k}"


def trunk_state_file(replicate: Path, k: int, preset_k: int) -> Path:
    """The dense trunk's state at iteration ``k``: W_0, W_k or one of the rewind curve's extra states."""
    trunk = stage_dir(replicate, 0)
    if k == 0:
        return trunk / "w0.pt"
    if k == preset_k:
        return trunk / "wk.pt"
    return trunk / "states" / f"w-{k}.pt"


def fused_dir(experiment: Path, members: Iterable[Path]) -> Path:
    """Where a fused group keeps its resume point: one folder per exact set of member stages."""
    return experiment / "fused" / digest([str(m.relative_to(experiment)) for m in members])


def trace_name(iterations: int, every: int) -> str:
    return f"N{iterations}-every{every}"


def rewind_curve_file(cache: Path, config_hash: str, level: int, suffix: str = ".json") -> Path:
    return experiment_dir(cache, config_hash) / "rewind-curve" / f"level-{level}{suffix}"


def results_dir(cache: Path) -> Path:
    return cache / "results"


def result_file(results: Path, record: dict[str, Any], folder_name: str | None = None) -> Path:
    """One file per (config, level, perturbation, params, perturbation seed, replicate seed).

    ``folder_name`` replaces the perturbation's name where that name is not a valid folder name
    (a pre-training ranks as 'pretrain:<task>' and is stored as 'pretrain-<task>')."""
    pert = record["perturbation"]
    key = variant_key(folder_name or pert["name"], pert["params"], pert["seed"])
    return results / record["config_hash"] / f"level-{record['level']}" / key / f"seed-{record['seed']}.json"
