"""The experiment-tracker contract: what a logger plugin registers, and what the harness calls.

Shaped like PyTorch Lightning's loggers, so a researcher's existing tracker code maps over. A plugin
registers, through the ``register_loggers`` hook, a *logger factory*: any object with

* ``name``: kebab-case, what ``bench run --logger NAME`` asks for;
* ``description``: one line;
* ``requires`` (optional): the import names the logger needs, e.g. ``("tensorboard",)``. When one is
  missing, ``bench run`` stops before training with one line naming ``install``;
* ``install`` (optional): what to ``pip install`` to get them, e.g. ``"earlyphase-bench[tensorboard]"``;
* ``create(settings)``: returns a :class:`Logger` for one run, given :class:`Settings`. Import the
  tracking library here, not at module level, so ``bench`` works without it.

A :class:`Logger` is one run in the tracker's store. For each run the harness calls
``log_hyperparams`` once, before anything trains; ``log_metrics`` as numbers arrive (each with the
training iteration it belongs to); ``save`` after each batch of results; and ``finalize`` once, last,
with ``"success"``, ``"failed"`` (the run raised) or ``"interrupted"`` (Ctrl-C). A logger only reads:
nothing it does can change a number the harness computes. A logger that raises is disabled with a
warning and the run goes on.

This module imports no harness code, so a plugin can import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol, Union

STATUSES = ("success", "failed", "interrupted")

Scalar = Union[str, int, float, bool]


@dataclass(frozen=True)
class Settings:
    """Where and under which name one run is logged; what ``create(settings)`` receives."""

    log_dir: Path  # this logger's own folder (``<--log-dir>/<logger name>``); it exists
    run_name: str  # readable and unique enough to tell runs apart, e.g. "smoke-identity-20260101-120000"
    tracking_uri: str | None = None  # --tracking-uri / BENCH_TRACKING_URI: a store elsewhere (MLflow's URI)
    tags: Mapping[str, str] = field(default_factory=dict)  # short labels known before training: preset, ...


class Logger(Protocol):
    """One run in a tracker's store (Lightning's ``Logger``)."""

    name: str  # the logger's name, e.g. "tensorboard"
    version: str  # the run's id in the store (a folder name, a run id)

    def log_hyperparams(self, params: dict[str, Scalar]) -> None:
        """The run's configuration, flattened to dotted keys; called once, before training."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Numbers that belong to training iteration ``step``, by '/'-separated tag."""

    def save(self) -> None:
        """Flush what is buffered (called after each batch of results)."""

    def finalize(self, status: str) -> None:
        """Close the run; ``status`` is one of :data:`STATUSES`. Called once, last."""


class LoggerFactory(Protocol):
    """What a plugin registers: a kind of logger that makes one :class:`Logger` per run."""

    name: str
    description: str

    def create(self, settings: Settings) -> Logger:
        """A new run; raise ModuleNotFoundError (as an import does) when the tracking library is missing."""


def flatten(nested: Mapping[str, object], prefix: str = "") -> dict[str, Scalar]:
    """``{"train": {"lr": 0.1}}`` -> ``{"train.lr": 0.1}``; lists, None and other values become text."""
    flat: dict[str, Scalar] = {}
    for key, value in nested.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, name))
        elif isinstance(value, (str, int, float, bool)):
            flat[name] = value
        elif isinstance(value, (list, tuple)):
            flat[name] = ",".join(str(v) for v in value)
        else:
            flat[name] = str(value)
    return flat
