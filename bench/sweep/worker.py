"""Running one unit in this process (a local pool worker or a SLURM job), and the status file it leaves.

A unit only calls what `bench run` calls, so a unit whose stages are cached trains nothing and a killed unit
resumes from its stage checkpoints. Before training it checks that it sees the driver's cache and that it
runs on the hardware class its tickets were trained on.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from bench import paths
from bench.batchlog import BatchLog, heartbeat_seconds, stamped
from bench.config import digest
from bench.errors import BenchError
from bench.provenance import same_class
# the one touch point with the harness: a unit only calls what `bench run` calls
from bench.experiments.perturb import run_perturbations
from bench.experiments.setup import RunOptions, prepare, resolve_device
from bench.sweep.file import preset_experiment
from bench.sweep.plan import Placement, Unit


def _placement(unit: Unit) -> Placement:
    if unit.placement is None:  # a programming error, not bad input
        raise ValueError(f"unit {unit.id} has no placement: pass the units through prepare_units first")
    return unit.placement


def _check_marker(unit: Unit) -> None:
    """The driver wrote a marker with a fresh token into the cache; a worker that cannot read it does not share
    the driver's cache, and whatever it trained would be invisible to the driver and to every other node."""
    place = _placement(unit)
    marker = Path(place.marker)
    try:
        seen = marker.read_text().strip()
    except OSError:
        seen = None
    if seen != place.token:
        raise BenchError(f"Node {socket.gethostname()} cannot see the sweep's cache at {place.cache} (marker "
                         f"{marker} {'missing' if seen is None else 'differs'}): the cache must be on a file "
                         f"system shared by the driver and every node; pass --cache-dir on shared storage "
                         f"(docs/cluster.md).")


def _check_hardware(unit: Unit, here: str) -> None:
    """Refuse to train on top of stages from another hardware class (bench.provenance.hardware_class says why)."""
    cache, chash = Path(_placement(unit).cache), unit.config_hash
    for seed in unit.seeds:
        for lvl in range(unit.level + 1):
            done = paths.stage_dir(paths.replicate_dir(cache, chash, seed), lvl) / paths.DONE
            if not done.exists():
                continue
            there = json.loads(done.read_text()).get("hardware")
            if not same_class(there, here):  # a stage from before the class was recorded (None) or named its CPU
                what = "trunk" if lvl == 0 else f"level {lvl}"
                raise BenchError(f"Unit {unit.id}: refusing to train on {here}: its {what} (seed {seed}) was "
                                 f"trained on {there}, and a branch must train on its ticket's hardware class; pin "
                                 f"the sweep to one class (slurm constraint) or use another cache.")


def _status_file(unit: Unit) -> Path:
    return Path(_placement(unit).status_dir) / f"{digest(unit.id)}.json"


def _write_status(unit: Unit, **fields: Any) -> None:
    from bench.cache import save_json

    save_json(_status_file(unit), {"id": unit.id, "node": socket.gethostname(), "pid": os.getpid(), **fields})


def read_status(unit: Unit) -> dict:
    """What the unit's worker last wrote of itself (state, node, error), or {} if nothing yet."""
    if unit.placement is None:
        return {}
    try:
        return json.loads(_status_file(unit).read_text())
    except (OSError, ValueError):
        return {}


def run_unit(unit: Unit) -> dict:
    """Run one unit in this process (a pool worker or a SLURM job) and return what it did."""
    import torch

    from bench.provenance import hardware_class
    from bench.presets import get_preset
    from bench.stages import Replicate, train_chain

    place = _placement(unit)
    # a fixed thread count: kernels may split reductions per thread, and the local and slurm executors must
    # follow the same numerical path (their results are compared exactly)
    torch.set_num_threads(unit.threads)
    t0 = time.perf_counter()
    log_path = Path(place.log)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log:
        log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {unit.id} on {socket.gethostname()} "
                  f"pid {os.getpid()}\n")
        log.flush()
        try:
            _check_marker(unit)
            _write_status(unit, state="running")
            here = hardware_class(resolve_device(unit.device))
            preset = get_preset(unit.preset)
            exp = preset_experiment(unit.preset, unit.overrides, Path(place.sweep))
            data_dir = Path(unit.data_dir) if unit.data_dir else None
            _check_hardware(unit, here)

            def line(text: str) -> None:
                log.write(stamped(text) + "\n")
                log.flush()

            # the unit's log gets what a batch log of `bench run` gets: a header, stages, heartbeats, lock waits
            progress = BatchLog(line, "sweep unit", heartbeat_seconds(), extra={"unit": unit.id})
            options = RunOptions(cache=Path(place.cache), device=unit.device, data_dir=data_dir,
                                 group_size=unit.group_size, progress=progress)
            seeds = list(unit.seeds)
            if unit.kind == "tickets":
                setup = prepare(preset, options, seeds=seeds, level=unit.level, experiment=exp)
                reps = [Replicate(exp, s, setup.env) for s in setup.seeds]
                train_chain(reps, unit.level, setup.env)  # stage by stage, the group's seeds fused, as bench run does
                events = setup.env.events
            else:
                outcomes = run_perturbations(preset, list(unit.requests), options, seeds=seeds, level=unit.level,
                                             experiment=exp, perturbation_seed=unit.perturbation_seed)
                events = outcomes[0].events
            progress.flush()
            for e in events:
                log.write(f"{e.kind}: {e.stage} seed {e.seed}\n")
            trained = sum(e.kind == "trained" for e in events)
            out = {"id": unit.id, "state": "done", "node": socket.gethostname(), "hardware": here,
                   "trained": trained, "cached": sum(e.kind == "cached" for e in events),
                   "seconds": round(time.perf_counter() - t0, 2)}
            _write_status(unit, **{k: v for k, v in out.items() if k not in ("id", "node")})
            log.write(f"done: trained {trained} stages\n")
            return out
        except BaseException as exc:
            message = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
            log.write(traceback.format_exc())
            try:
                _write_status(unit, state="failed", error=message)
            except OSError:
                pass  # the cache itself may be what is missing
            raise
