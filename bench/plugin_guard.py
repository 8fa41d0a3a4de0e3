"""What the harness checks around plugin code: process state a plugin must not change, its stdout, and how
plugin-provided text reaches a terminal.

A plugin runs in the harness's process, so it could change what every number depends on (torch's thread
count picks the kernels' reduction order; the default dtype the precision of every new tensor) or print
into ``--json`` output. Both are refused or redirected here, naming the plugin, and the state is restored.
"""

from __future__ import annotations

import contextlib
import re
import sys
from typing import TYPE_CHECKING, Iterator

from rich.markup import escape

from bench.errors import PluginError

if TYPE_CHECKING:  # torch loads with the first plugin call: printing plugin text needs none
    import torch

# bench run's --apply-timeout when not given: generous (the built-ins take well under a second on the default
# model) yet bounded, so an apply() that never returns ends the command instead of hanging it
DEFAULT_APPLY_TIMEOUT = 600.0

# C0 and C1 control characters and DEL: escape sequences can retitle a window, move the cursor or hide text;
# a tab or newline in a one-line description is turned into a space instead
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: object, lines: bool = False) -> str:
    """``text`` fit to print on a terminal as plain text: control characters become spaces (newlines are kept
    with ``lines``, for messages of several lines)."""
    if lines:
        return "\n".join(_CONTROL.sub(" ", line) for line in str(text).split("\n"))
    return _CONTROL.sub(" ", str(text))


def markup_safe(text: object) -> str:
    """``text`` fit for a rich console or table cell: controls removed and ``[...]`` not read as markup."""
    return escape(clean(text))


def torch_state() -> tuple[int, torch.dtype] | None:
    """The process state a plugin may not change: torch's thread count and default dtype (None while torch is
    not loaded: listing the plugins never loads it)."""
    if "torch" not in sys.modules:
        return None
    import torch

    return torch.get_num_threads(), torch.get_default_dtype()


def state_problem(before: tuple[int, torch.dtype] | None) -> str | None:
    """What changed since ``before`` (restored to ``before``), or None when nothing did.

    When torch was not loaded before, only the default dtype can be checked (against float32, torch's own at
    import): the thread count it starts with is not known, and every run pins it before it trains."""
    if "torch" not in sys.modules:
        return None
    import torch

    threads, dtype = torch_state()
    if before is None:
        before = (threads, torch.float32)
    problems = []
    if threads != before[0]:
        problems.append(f"torch's thread count from {before[0]} to {threads}")
        torch.set_num_threads(before[0])
    if dtype != before[1]:
        problems.append(f"torch's default dtype from {before[1]} to {dtype}")
        torch.set_default_dtype(before[1])
    return " and ".join(problems) or None


@contextlib.contextmanager
def guarded(who: str, when: str, redirect: bool = True) -> Iterator[None]:
    """Run plugin code with its stdout sent to stderr (stdout carries only a command's output, e.g. JSON), and
    refuse it, naming ``who``, when it changed the thread count or default dtype (both restored first).

    ``redirect=False`` in a worker thread: sys.stdout is process-wide, so the caller's thread redirects it
    (one abandoned on timeout must not leave it redirected)."""
    before = torch_state()
    with contextlib.redirect_stdout(sys.stderr) if redirect else contextlib.nullcontext():
        try:
            yield
        finally:
            problem = state_problem(before)
    if problem:
        raise PluginError(f"{who} changed {problem} {when}, which changes every number; a plugin must leave "
                          f"them as the harness set them (the state was restored).")
