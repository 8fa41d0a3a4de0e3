"""``bench verify``: re-run stored results from scratch and say whether the numbers come back.

Each result is re-run in a temporary cache exactly as recorded: the same preset and configuration, the same
seed trained in the same fused seed group (the group fixes the rounding path), the same perturbation seed.
The verdict per file is ``exact`` (every accuracy and fingerprint equal), ``within tolerance`` (fingerprints
or accuracies differ, but no accuracy by more than ``tolerance`` points) or ``mismatch``, with the first
stage whose fingerprint differs (W_0, W_k, the mask, the ticket): W_0 differing points at the code (the
initialiser), a later stage at the kernels of the machine (docs/reproducibility.md). Each re-run loads only
the built-in plugins and the distribution that produced the result.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from bench.config import from_dict
from bench.errors import BenchError
from bench.experiments.setup import RunOptions
from bench.plugins import load_plugins
from bench.presets import get_preset
from bench.provenance import record_class, same_class
from bench.pretraining import PREFIX, legacy_params
from bench.results import Result, is_instability, load_results

STAGES = ("w0", "wk", "mask", "ticket")  # in the order they are computed
ACCURACIES = ("dense", "ticket", "perturbed")


@dataclass
class Verdict:
    source: str
    status: str  # "exact" | "within tolerance" | "mismatch"
    differences: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (recorded, recomputed)
    first_stage: str | None = None  # the first stage whose fingerprint differs
    largest: float = 0.0  # the largest accuracy difference, in points
    note: str | None = None  # why a difference is expected (another kernel class), if it is
    hardware: str = ""  # the kernel class of the re-run

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.source, "status": self.status, "first_differing_stage": self.first_stage,
                "largest_accuracy_difference": self.largest, "note": self.note,
                "differences": {k: {"recorded": a, "recomputed": b} for k, (a, b) in self.differences.items()}}


def choose(results: Sequence[Result], sample: int | None, seed: int) -> list[Result]:
    """All results, or a reproducible random sample of ``sample`` of them."""
    if sample is None or sample >= len(results):
        return list(results)
    if sample < 1:
        raise BenchError("--sample must be at least 1.")
    return sorted(random.Random(seed).sample(list(results), sample), key=lambda r: r.source)


def load(files: Sequence[Path], results_dirs: Sequence[Path]) -> list[Result]:
    loaded = load_results([*files, *results_dirs], strict=True)
    if not loaded.results:
        raise BenchError("No result files to verify: name files, or a folder with --results.")
    return loaded.results


def compare(recorded: dict, recomputed: dict, tolerance: float) -> tuple[str, dict, str | None, float]:
    diffs: dict[str, tuple[Any, Any]] = {}
    for key in ACCURACIES:
        a, b = recorded["accuracy"][key], recomputed["accuracy"][key]
        if a != b:
            diffs[f"accuracy.{key}"] = (a, b)
    if recorded["drop"] != recomputed["drop"]:
        diffs["drop"] = (recorded["drop"], recomputed["drop"])
    first = None
    old_fp, new_fp = recorded.get("fingerprints") or {}, recomputed["fingerprints"]
    for stage in STAGES:
        if stage in old_fp and old_fp[stage] != new_fp[stage]:
            diffs[f"fingerprints.{stage}"] = (old_fp[stage], new_fp[stage])
            first = first or stage
    largest = max((abs(a - b) for k, (a, b) in diffs.items() if k.startswith("accuracy")), default=0.0)
    if not diffs and old_fp:
        return "exact", diffs, None, 0.0
    if not old_fp and not diffs:  # an older record: its numbers came back, its stages cannot be checked
        return "within tolerance", {"fingerprints": ("not recorded", "recomputed")}, None, 0.0
    # at tolerance 0 any difference, a fingerprint included, is a mismatch; above it, the accuracies decide
    reproduced = tolerance > 0 and largest <= tolerance
    return ("within tolerance" if reproduced else "mismatch"), diffs, first, largest


def verify(results: Sequence[Result], options: RunOptions, tolerance: float = 0.0) -> list[Verdict]:
    """Re-run each result's replicate group in a fresh temporary cache (one for all, so results that share a
    trunk share its re-run) and compare. ``options.cache`` is replaced by the temporary cache."""
    from bench.experiments.perturb import run_perturbations
    from bench.experiments.pretrain import run_pretraining
    from bench.submission import check

    for res in results:  # every file first: a forged configuration or seed group is refused before anything trains
        try:
            check(res.data, from_dict(res.data["config"]))
        except BenchError as exc:
            raise BenchError(f"{res.path}: {exc}") from None
    verdicts: dict[str, Verdict] = {}
    instability = [r for r in results if is_instability(r.data)]
    if instability:
        verdicts |= verify_instability(instability, options)
    groups: dict[tuple, list[Result]] = {}
    for res in results:
        d = res.data
        if is_instability(d):
            continue
        trained = d.get("trained_with_seeds", {}).get("ticket") or [d["seed"]]
        key = (d["preset"], d["config_hash"], d["level"], d["perturbation"]["name"],
               repr(sorted(d["perturbation"]["params"].items())), d["perturbation"]["seed"], tuple(trained),
               d["perturbation"]["distribution"])
        groups.setdefault(key, []).append(res)
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        for (preset_name, _, level, name, _, pseed, group, dist), members in sorted(groups.items()):
            first = members[0].data
            # the built-ins and the result's own distribution only: no other plugin can touch the re-run
            plugins = load_plugins(only={dist})
            preset = get_preset(preset_name)
            run_opts = replace(options, cache=Path(tmp), group_size=len(group))
            experiment = from_dict(first["config"])
            params = dict(first["perturbation"]["params"])
            if first.get("kind") == "pretraining":  # a record older than its hyperparameters: as it was trained
                params = legacy_params(params, experiment.train.lr)
                outcome = run_pretraining(preset, name[len(PREFIX):], params, run_opts, seeds=list(group),
                                          level=level, pretrain_seed=pseed, experiment=experiment, plugins=plugins)
            else:
                outcome = run_perturbations(preset, [(name, params)], run_opts, seeds=list(group), level=level,
                                            perturbation_seed=pseed, experiment=experiment, plugins=plugins)[0]
            again = {r["seed"]: r for r in outcome.records}
            for res in members:
                status, diffs, stage, largest = compare(res.data, again[res.data["seed"]], tolerance)
                there, here = record_class(res.data), record_class(again[res.data["seed"]])
                note = None if status == "exact" or same_class(there, here) else (
                    f"recorded on {there}, re-run on {here}: bit-exact only within one kernel class "
                    "(docs/reproducibility.md)")
                verdicts[str(res.path)] = Verdict(str(res.path), status, diffs, stage, largest, note, here)
    return [verdicts[str(r.path)] for r in results]


def verify_instability(results: Sequence[Result], options: RunOptions) -> dict[str, Verdict]:
    """Re-run instability records (bench instability) in a fresh cache, each replicate group with the subject,
    k, level, BatchNorm mode and points recorded; exact means every error on the path, both barriers and every
    fingerprint came back bit for bit (an instability record has no tolerance: its path is all one number)."""
    from bench.experiments.instability import run_instability

    groups: dict[tuple, list[Result]] = {}
    for res in results:
        d, s = res.data, res.data["subject"]
        group = tuple(d["copies"][0].get("trained_with_seeds") or [d["seed"]])
        key = (d["preset"], d["config_hash"], d["level"], s["kind"], s["name"], repr(sorted(s["params"].items())),
               s["seed"], s.get("distribution", ""), d["k"], d["bn"], d["points"], d.get("bn_batches"), group)
        groups.setdefault(key, []).append(res)
    verdicts = {}
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        for (preset_name, _, level, kind, name, _, pseed, dist, k, bn, points, batches, group), members in \
                sorted(groups.items()):
            first = members[0].data
            run_opts = replace(options, cache=Path(tmp), group_size=len(group))
            pert = [(name, dict(first["subject"]["params"]))] \
                if kind == "perturbation" else []
            again = run_instability(get_preset(preset_name), run_opts, seeds=list(group), ks_text=str(k),
                                    level=level, dense=kind == "dense", ticket=kind == "ticket", perturbations=pert,
                                    perturbation_seed=pseed, points=points, bn=bn, bn_batches=batches,
                                    plugins=load_plugins(only={dist}) if dist else None,
                                    experiment=from_dict(first["config"]))
            by_seed = {r["seed"]: r for r in again.records if r["subject"]["kind"] == kind and r["k"] == k}
            for res in members:
                recomputed = by_seed[res.data["seed"]]
                diffs = {key: (res.data[key], recomputed[key]) for key in ("error", "barrier", "fingerprints")
                         if res.data[key] != recomputed[key]}
                stage = next((f for f in ("start", "mask", "copy_a", "copy_b")
                              if res.data["fingerprints"][f] != recomputed["fingerprints"][f]), None)
                largest = max(abs(a - b) for split in ("train", "test")
                              for a, b in zip(res.data["error"][split], recomputed["error"][split]))
                there, here = record_class(res.data), record_class(recomputed)
                note = None if not diffs or same_class(there, here) else (
                    f"recorded on {there}, re-run on {here}: bit-exact only within one kernel class "
                    "(docs/reproducibility.md)")
                verdicts[str(res.path)] = Verdict(str(res.path), "mismatch" if diffs else "exact", diffs, stage,
                                                  largest, note)
    return verdicts
