"""Plugin discovery: every plugin, built-in or not, comes through the ``bench`` entry-point group.

``BENCH_LOAD_PLUGINS=dist-a,dist-b`` restricts loading to those distributions'
plugins; the built-ins of ``earlyphase-bench`` always load. A plugin that fails
to import is reported once, by name, and everything else keeps working.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from typing import Any

import pluggy

from bench import hookspecs
from bench.errors import PluginError, unknown
from bench.pretraining import PREFIX, STEPS

GROUP = "bench"
BUILTIN_DIST = "earlyphase-bench"
ENV_LOAD = "BENCH_LOAD_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    name: str  # entry-point name
    dist: str
    version: str
    module: str
    hooks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Registered:
    """A perturbation together with the plugin that provided it."""

    perturbation: Any
    plugin: PluginInfo


@dataclass(frozen=True)
class RegisteredPretraining:
    """A pre-training task together with the plugin that provided it."""

    pretraining: Any
    plugin: PluginInfo

    @property
    def label(self) -> str:
        """The name its results rank under, apart from every perturbation's."""
        return PREFIX + self.pretraining.name


@dataclass
class Plugins:
    manager: pluggy.PluginManager
    loaded: list[PluginInfo] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def info(self, plugin: object) -> PluginInfo:
        name = self.manager.get_name(plugin)
        return next(p for p in self.loaded if p.name == name)

    def collect(self, hook: str, kind: str, required: tuple[str, ...]) -> dict[str, tuple[Any, PluginInfo]]:
        """Everything registered through ``hook``, by name, with the plugin that registered it.

        Each implementation is called on its own so every item is attributed to its plugin. An item
        missing a ``required`` attribute, or a name registered twice, is an error naming the plugins.
        """
        found: dict[str, tuple[Any, PluginInfo]] = {}
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            info = self.info(impl.plugin)
            collected: list[Any] = []
            impl.function(register=collected.append)
            for item in collected:
                missing = [attr for attr in required if not hasattr(item, attr)]
                if missing:
                    raise PluginError(f"Plugin '{info.name}' ({info.dist}) registered a {kind} without '{missing[0]}'.")
                if item.name in found:
                    other = found[item.name][1]
                    raise PluginError(
                        f"{kind.capitalize()} '{item.name}' is registered by two plugins: "
                        f"'{other.name}' ({other.dist}) and '{info.name}' ({info.dist}); uninstall one."
                    )
                found[item.name] = (item, info)
        return dict(sorted(found.items()))

    def perturbations(self) -> dict[str, Registered]:
        """Every registered perturbation by name."""
        found = self.collect("register_perturbations", "perturbation", ("name", "description", "apply"))
        return {name: Registered(item, info) for name, (item, info) in found.items()}

    def perturbation(self, name: str) -> Registered:
        known = self.perturbations()
        if name not in known:
            raise unknown("perturbation", name, list(known))
        return known[name]

    def pretrainings(self) -> dict[str, RegisteredPretraining]:
        """Every registered pre-training by name; ``steps`` is the harness's, so no task may declare it."""
        found = self.collect("register_pretraining", "pre-training", ("name", "description", "prepare"))
        for item, _ in found.values():
            if any(p.name == STEPS.name for p in getattr(item, "params", ())):
                raise PluginError(f"Pre-training '{item.name}' declares 'steps', which the harness provides.")
        return {name: RegisteredPretraining(item, info) for name, (item, info) in found.items()}

    def pretraining(self, name: str) -> RegisteredPretraining:
        """A pre-training by its name, with or without the 'pretrain:' prefix its results rank under."""
        known = self.pretrainings()
        bare = name[len(PREFIX):] if name.startswith(PREFIX) else name
        if bare not in known:
            raise unknown("pre-training", bare, list(known))
        return known[bare]


def _allowed() -> set[str] | None:
    raw = os.environ.get(ENV_LOAD)
    if raw is None:
        return None
    return {_norm(part) for part in raw.split(",") if part.strip()}


def _norm(dist: str) -> str:
    return dist.strip().lower().replace("_", "-")


def load_plugins() -> Plugins:
    """Build a plugin manager from the installed ``bench`` entry points, each loaded on its own."""
    manager = pluggy.PluginManager(GROUP)
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager)
    allowed = _allowed()
    for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist else "unknown"
        version = ep.dist.version if ep.dist else "unknown"
        if allowed is not None and _norm(dist) != BUILTIN_DIST and _norm(dist) not in allowed:
            plugins.skipped.append(ep.name)
            continue
        if manager.get_plugin(ep.name) is not None:
            continue  # the same distribution seen twice on sys.path
        try:
            module = ep.load()
            manager.register(module, name=ep.name)
        except Exception as exc:  # any import-time failure must not take the tool down
            message = f"{type(exc).__name__}: {exc}"
            plugins.failed.append({"name": ep.name, "dist": dist, "error": message})
            warnings.warn(f"Plugin '{ep.name}' ({dist}) failed to load and was skipped: {message}", stacklevel=2)
            continue
        hooks = tuple(sorted(h.name for h in manager.get_hookcallers(module) or []))
        plugins.loaded.append(PluginInfo(ep.name, dist, version, ep.value, hooks))
    return plugins


@lru_cache(maxsize=1)
def default_plugins() -> Plugins:
    """The process-wide plugin set, loaded once. Tests call ``default_plugins.cache_clear()``."""
    return load_plugins()
