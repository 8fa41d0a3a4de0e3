"""Every hook a plugin can implement, in one file.

Plugins mark implementations with ``from bench import hookimpl``. Each hook's
docstring is its documentation; ``tests/test_plugins.py`` checks that every
hook here is described in CONTRIBUTING.md.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("bench")
hookimpl = pluggy.HookimplMarker("bench")


@hookspec
def register_perturbations(register):
    """Register perturbations of the rewound weights.

    Call ``register(perturbation)`` once per perturbation, where
    ``perturbation`` follows the contract in ``bench.perturbation``: a
    ``name``, a one-line ``description``, optional ``params`` and an
    ``apply(ctx)`` method returning new values for the prunable tensors.
    """


@hookspec
def register_pretraining(register):
    """Register pre-training tasks that produce the rewind point (paper, Section 5).

    Call ``register(pretraining)`` once per task, where ``pretraining``
    follows the contract in ``bench.pretraining``: a ``name``, a one-line
    ``description``, optional ``params`` (the harness adds ``steps``, the
    pre-training length) and a ``prepare(ctx)`` method returning a
    ``bench.pretraining.Task`` (replacement labels or inputs, a per-batch
    transform, and the size of a temporary head, each optional).
    """


@hookspec
def register_loggers(register):
    """Register experiment trackers that ``bench run --logger NAME`` can log to.

    Call ``register(factory)`` once per logger, where ``factory`` follows the
    contract in ``bench.tracking``: a ``name``, a one-line ``description``,
    optional ``requires`` (import names) and ``install`` (what to pip install),
    and a ``create(settings)`` method returning a logger for one run, with
    ``log_hyperparams``, ``log_metrics``, ``save`` and ``finalize`` as
    PyTorch Lightning's loggers have. Import the tracking library inside
    ``create``, so that ``bench`` works without it.
    """


@hookspec
def register_pruning_strategies(register):
    """Register pruning strategies: how each IMP level's mask is made.

    Call ``register(strategy)`` once per strategy, where ``strategy``
    follows the contract in ``bench.pruning_strategy``: a ``name``, a
    one-line ``description``, optional ``params`` and a ``masks(ctx)``
    method returning the next level's 0/1 mask for every prunable tensor,
    removing ``ctx.removal(...)`` survivors per pool so every strategy
    prunes the same amount. ``bench run --pruning NAME`` selects one; it
    becomes part of the experiment's configuration and hash.
    """
