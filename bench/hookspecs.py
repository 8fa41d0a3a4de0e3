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
