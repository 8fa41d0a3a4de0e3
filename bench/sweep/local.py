"""The ``local`` executor of ``bench sweep``: units in a pool of spawned worker processes on this machine."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any, Callable

from bench.errors import BenchError
from bench.sweep.plan import Report, Unit
from bench.sweep.worker import read_status, run_unit


PARENT_POLL_S = 0.2  # how often a worker checks that its driver is alive


def _exit_with(parent: int) -> None:
    """A pool worker's initializer: end this worker when the driver that spawned it dies.

    A worker blocked on the pool's queue never sees the driver die (it holds both ends of the queue's pipe),
    and one in the middle of a unit would finish it for nobody, so a SIGKILLed driver left workers behind.
    Polling the parent pid works on every POSIX system (unlike prctl's PDEATHSIG, which also fires when the
    thread that spawned the worker ends); a unit killed here resumes from its stage checkpoints on the rerun.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="bench-driver-watch", daemon=True).start()


def pool(jobs: int):
    """The worker pool: spawned processes (a forked copy of a parent that already ran torch threads can
    deadlock), each ending itself when the driver dies."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_exit_with, initargs=(os.getpid(),))


def run_local(units: list[Unit], report: Report, jobs: int, on_change: Callable[[], None] = lambda: None) -> None:
    """Up to ``jobs`` units at once in spawned worker processes, a branches unit only after its tickets unit."""
    from concurrent.futures import FIRST_COMPLETED, wait

    todo = [u for u in units if not u.cached]
    by_id = {u.id: u for u in units}
    with pool(jobs) as workers:
        running: dict[Any, Unit] = {}
        while todo or running:
            for u in list(todo):
                dep = by_id.get(u.depends) if u.depends else None
                dep_state = report.state[dep.id] if dep else "done"
                if dep_state == "failed":
                    todo.remove(u)
                    report.fail(u, f"not run: its tickets unit {dep.id} failed", None, None)
                elif dep_state in ("done", "cached") and len(running) < max(1, jobs):
                    todo.remove(u)
                    running[workers.submit(run_unit, u)] = u
                    report.state[u.id] = "running"
            on_change()
            if not running:
                continue
            finished, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in finished:
                u = running.pop(fut)
                try:
                    report.info[u.id] = fut.result()
                    report.state[u.id] = "done"
                except BaseException as exc:
                    message = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
                    log = u.placement.log if u.placement else None
                    report.fail(u, message, read_status(u).get("node", socket.gethostname()), log)
            on_change()
