"""``bench cache doctor`` and ``bench cache clear``: find and mend what interrupted or damaged runs left.

Run them while no other bench process uses the cache: a ``.tmp`` file or a checkpoint of a running
training looks exactly like a leftover. ``.lock`` files are harmless (the OS releases the locks) and stay.
"""

from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from bench import paths
from bench.cache import load_tensors, read_record
from bench.errors import BenchError
from bench.stage_checks import expected_files, file_fingerprint, invalidate, recorded_fingerprint

KINDS = {
    "tmp": "leftover temporary file of an interrupted write",
    "corrupt": "invalid done.json (unreadable or a bad field), or a file already moved aside as corrupt",
    "corrupt-file": "stage file that cannot be read",
    "missing-file": "file of a finished stage that is gone",
    "wrong-file": "file that is not the one its stage wrote (its fingerprint differs from the record's)",
    "stale": "stage built on a stage that was retrained since",
    "mispaired": "branch trained in another seed group than its ticket",
    "orphaned-checkpoint": "checkpoint of a stage that is finished, or that cannot be loaded",
    "stale-fused": "fused group folder whose checkpoint is missing, unreadable or of finished stages",
    "symlink": "symbolic link: not followed; under experiments/ it is removed (bench never makes one)",
}
# what --fix does to a finding of each kind: invalidate the stage folder it is in (its record and files go, so
# the next run recomputes it in its seed group, bench.execute.run_stage), or remove the path itself
_INVALIDATES = {"corrupt-file", "missing-file", "wrong-file", "stale", "mispaired"}


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


def _checkpoint_problem(checkpoint: Path, cache: Path) -> str | None:
    """Why a checkpoint is of no further use, or None when a rerun could resume from it."""
    try:
        state = load_tensors(checkpoint)
        stages = state["identity"]["stages"]
    except (BenchError, KeyError, TypeError):
        return "cannot be loaded or carries no stage identity"
    if all((cache / stage / paths.DONE).exists() for stage in stages):  # stage ids are relative to the cache root
        return "its stages are finished"
    return None


def _walk(root: Path):
    """Every path under ``root``, never following a symbolic link (a link is yielded, not entered)."""
    for folder, dirs, files in os.walk(root, onerror=lambda exc: None):  # os.walk does not follow links
        base = Path(folder)
        for name in sorted(dirs):
            if (base / name).is_symlink():
                yield base / name
        for name in sorted(files):
            yield base / name
        dirs.sort()


def _stage_findings(folder: Path, add) -> None:
    """A stage folder with a record: its record, its files, what it was built on, its pairing."""
    done = folder / paths.DONE
    record, problem = read_record(done)
    if problem:
        add(Finding("corrupt", done, problem))
        return
    files = record.get("files") or {}
    for name in expected_files(record, folder):
        path = folder / name
        if not path.is_file() or path.is_symlink():
            if not path.is_symlink():
                add(Finding("missing-file", path, f"{name} of a finished stage is gone"))
            continue
        try:
            got = file_fingerprint(path)
        except BenchError:
            continue  # reported with every unreadable .pt
        if name in files and got != files[name]:
            add(Finding("wrong-file", path, f"fingerprint {got[:12]}, its record says {files[name][:12]}"))
    root = _replicate_root(folder)
    for key, want in (record.get("inputs") or {}).items():
        now = recorded_fingerprint(root / key) if root is not None else None
        if now is not None and now != want:
            add(Finding("stale", done, f"built on {key}, which was retrained since"))
    if folder.parent.name == "branch":  # a branch pairs with the ticket of the stage it hangs under
        _pairing(folder, record, add)


def _replicate_root(folder: Path) -> Path | None:
    """The replicate folder (``seed-<s>``, or a pre-trained variant's) a stage folder belongs to."""
    for parent in folder.parents:
        if parent.parent.name == "pretrain" or parent.name.startswith("seed-"):
            return parent
    return None


def _pairing(folder: Path, record: dict, add) -> None:
    ticket_dir = folder.parents[1]
    ticket, problem = read_record(ticket_dir / paths.DONE) if (ticket_dir / paths.DONE).is_file() else (None, "")
    group = record.get("trained_with_seeds")
    if problem is not None or group is None or ticket.get("trained_with_seeds") in (None, group):
        return
    chain = ticket_dir.parent / "rewind-0" / ticket_dir.name  # imp-rewind-0 pairs with its own chain instead
    other, _ = read_record(chain / paths.DONE) if (chain / paths.DONE).is_file() else (None, "")
    if isinstance(other, dict) and other.get("trained_with_seeds") == group:
        return
    add(Finding("mispaired", folder / paths.DONE,
                f"trained with seeds {group}, its ticket with seeds {ticket['trained_with_seeds']}"))


def diagnose(root: Path) -> Report:
    report = Report(root)
    add = report.findings.append
    if not root.exists():
        return report
    for path in _walk(root):
        name = path.name
        if path.is_symlink():
            add(Finding("symlink", path, f"points to {os.readlink(path)}; not followed"))
        elif name.startswith(".") and name.endswith(".tmp"):
            add(Finding("tmp", path))
        elif ".corrupt-" in name:
            add(Finding("corrupt", path, "moved aside by an earlier run"))
        elif name == paths.DONE:
            _stage_findings(path.parent, add)
        elif name in (paths.CHECKPOINT, paths.PRETRAIN_CHECKPOINT):
            if "fused" in path.relative_to(root).parts:
                continue  # a fused group's: checked below, with its folder
            finished = paths.WK if name == paths.PRETRAIN_CHECKPOINT else paths.DONE  # what the run writes last
            if (path.parent / finished).exists():
                add(Finding("orphaned-checkpoint", path, "its stage is finished"))
            else:
                try:
                    load_tensors(path)
                except BenchError:
                    add(Finding("orphaned-checkpoint", path, "cannot be loaded"))
        elif name.endswith(".pt") and "experiments" in path.relative_to(root).parts[:1]:
            try:
                file_fingerprint(path)
            except (BenchError, OSError) as exc:
                add(Finding("corrupt-file", path, "cannot be read" if isinstance(exc, BenchError) else str(exc)))
    for fused in sorted(root.glob("experiments/p*/*/fused/*")):
        if fused.is_symlink():
            continue
        checkpoint = fused / paths.CHECKPOINT
        problem = _checkpoint_problem(checkpoint, root) if checkpoint.exists() else "no checkpoint"
        if problem:
            add(Finding("stale-fused", fused, problem))
    return report


def fix(report: Report) -> None:
    """Mend every finding: a stage with a bad record or file is invalidated (recomputed in its seed group by the
    next run), a leftover removed; a link is removed, never what it points to."""
    experiments = report.root / "experiments"
    for finding in report.findings:
        path = finding.path
        if finding.kind == "symlink":
            if experiments in path.parents:
                path.unlink(missing_ok=True)
        elif finding.kind in _INVALIDATES or (finding.kind == "corrupt" and path.name == paths.DONE):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the report says it
                invalidate(path.parent, KINDS[finding.kind])
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    report.fixed = True


def preset_folders(root: Path, config_hash: str) -> list[Path]:
    """What ``bench cache clear`` removes for one configuration: its stages and its results."""
    if not config_hash.isalnum():  # a hash, never text that could point elsewhere
        raise BenchError(f"Refusing to clear config hash {config_hash!r}.")
    folders = [*paths.experiment_dirs(root, config_hash), paths.results_dir(root) / config_hash]
    return [f for f in folders if f.exists()]
