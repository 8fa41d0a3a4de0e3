"""User-facing errors: one line that says what is wrong and what to do."""

from __future__ import annotations

import difflib


class BenchError(Exception):
    """An error whose message is shown to the user as is, without a traceback."""


class PluginError(BenchError):
    """A plugin misbehaved: failed to import, returned bad tensors, or clashed."""


def closest(name: str, known: list[str]) -> str:
    """A ' Did you mean X?' suffix, or '' when nothing is close."""
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""


def unknown(kind: str, name: str, known: list[str]) -> BenchError:
    return BenchError(
        f"Unknown {kind} '{name}'.{closest(name, known)} Known: {', '.join(sorted(known))}."
    )
