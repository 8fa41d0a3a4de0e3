"""``bench cache doctor`` and ``bench cache clear``: find and remove what interrupted or damaged runs left.

Run them while no other bench process uses the cache: a ``.tmp`` file or a checkpoint of a running
training looks exactly like a leftover. ``.lock`` files are harmless (the OS releases the locks) and stay.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from bench import paths
from bench.cache import load_tensors, read_record
from bench.errors import BenchError

KINDS = {
    "tmp": "leftover temporary file of an interrupted write",
    "corrupt": "invalid done.json, or a file already moved aside as corrupt",
    "orphaned-checkpoint": "checkpoint of a stage that is finished, or that cannot be loaded",
    "stale-fused": "fused group folder whose checkpoint is missing, unreadable or of finished stages",
}


@dataclass
class Finding:
    kind: str
    path: Path
    detail: str = ""

    def as_dict(self, root: Path) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path.relative_to(root).as_posix(), "detail": self.detail}


@dataclass
class Report:
    root: Path
    findings: list[Finding] = field(default_factory=list)
    fixed: bool = False


def _checkpoint_problem(checkpoint: Path, experiment: Path) -> str | None:
    """Why a checkpoint is of no further use, or None when a rerun could resume from it."""
    try:
        state = load_tensors(checkpoint)
        stages = state["identity"]["stages"]
    except (BenchError, KeyError, TypeError):
        return "cannot be loaded or carries no stage identity"
    cache = experiment.parents[1]
    if all((cache / stage / paths.DONE).exists() for stage in stages):
        return "its stages are finished"
    return None


def diagnose(root: Path) -> Report:
    report = Report(root)
    add = report.findings.append
    if not root.exists():
        return report
    for path in sorted(root.rglob("*")):
        name = path.name
        if path.is_file() and name.startswith(".") and name.endswith(".tmp"):
            add(Finding("tmp", path))
        elif ".corrupt-" in name:
            add(Finding("corrupt", path, "moved aside by an earlier run"))
        elif name == paths.DONE and path.is_file():
            _, problem = read_record(path)
            if problem:
                add(Finding("corrupt", path, problem))
        elif name in (paths.CHECKPOINT, paths.PRETRAIN_CHECKPOINT) and "fused" not in path.parts:
            finished = paths.WK if name == paths.PRETRAIN_CHECKPOINT else paths.DONE  # what the run writes last
            if (path.parent / finished).exists():
                add(Finding("orphaned-checkpoint", path, "its stage is finished"))
            else:
                try:
                    load_tensors(path)
                except BenchError:
                    add(Finding("orphaned-checkpoint", path, "cannot be loaded"))
    for fused in sorted(root.glob("experiments/p*/*/fused/*")):
        checkpoint = fused / paths.CHECKPOINT
        problem = _checkpoint_problem(checkpoint, fused.parents[1]) if checkpoint.exists() else "no checkpoint"
        if problem:
            add(Finding("stale-fused", fused, problem))
    return report


def fix(report: Report) -> None:
    """Remove every finding: a removed done.json or checkpoint makes the next run recompute that stage."""
    for finding in report.findings:
        if finding.path.is_dir():
            shutil.rmtree(finding.path)
        else:
            finding.path.unlink(missing_ok=True)
    report.fixed = True


def preset_folders(root: Path, config_hash: str) -> list[Path]:
    """What ``bench cache clear`` removes for one configuration: its stages and its results."""
    if not config_hash.isalnum():  # a hash, never text that could point elsewhere
        raise BenchError(f"Refusing to clear config hash {config_hash!r}.")
    folders = [*paths.experiment_dirs(root, config_hash), paths.results_dir(root) / config_hash]
    return [f for f in folders if f.exists()]
