"""Plugin discovery: every plugin, built-in or not, comes through the ``bench`` entry-point group.

``BENCH_LOAD_PLUGINS=dist-a,dist-b`` restricts loading to those distributions'
plugins; the built-ins of ``earlyphase-bench`` always load. A plugin that fails
to import is reported once, by name, and everything else keeps working.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from typing import Any

import pluggy

from bench import hookspecs
from bench.errors import BenchError, PluginError, unknown
from bench.plugin_guard import guarded

GROUP = "bench"
BUILTIN_DIST = "earlyphase-bench"  # only the harness's own controls count as controls
CONTROLS = ("identity", "data-order", "rewind-to-init", "reinit", "lottery-ticket", "imp-rewind-0")


def is_control(name: str, distribution: str) -> bool:
    """Whether a perturbation is one of the harness's own controls (a plugin cannot claim a control's name)."""
    return name in CONTROLS and distribution == BUILTIN_DIST


ENV_LOAD = "BENCH_LOAD_PLUGINS"
# names become folder names (bench.paths): only lower-case words joined by single hyphens, so no name can
# hold a path separator, a dot-dot, a space or markup
NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
MAX_NAME = 64


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a registered name, or None when it can."""
    if not isinstance(name, str):
        return f"a name must be a string, got {type(name).__name__}"
    if len(name) > MAX_NAME or not NAME.fullmatch(name):
        shown = name if len(name) <= MAX_NAME else name[:MAX_NAME] + "..."
        return f"name {shown!r} is not kebab-case (lower-case letters and digits joined by '-', at most {MAX_NAME})"
    return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


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
        from bench.pretraining import PREFIX  # the pre-training contract loads torch: only when one is used

        return PREFIX + self.pretraining.name


@dataclass(frozen=True)
class RegisteredLogger:
    """An experiment tracker's logger factory (bench.tracking) together with the plugin that provided it."""

    factory: Any
    plugin: PluginInfo


@dataclass(frozen=True)
class RegisteredStrategy:
    """A pruning strategy together with the plugin that provided it."""

    strategy: Any
    plugin: PluginInfo


@dataclass
class Plugins:
    manager: pluggy.PluginManager
    loaded: list[PluginInfo] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # name -> why it is disabled (malformed or clashing registration); only an error when that name is asked for
    broken: dict[str, str] = field(default_factory=dict)
    hook_errors: list[str] = field(default_factory=list)  # hook implementations that raised, by plugin
    _collected: dict[str, dict[str, tuple[Any, PluginInfo]]] = field(default_factory=dict, repr=False)

    def info(self, plugin: object) -> PluginInfo:
        name = self.manager.get_name(plugin)
        return next(p for p in self.loaded if p.name == name)

    def collect(self, hook: str, kind: str, required: tuple[str, ...]) -> dict[str, tuple[Any, PluginInfo]]:
        """Everything registered through ``hook``, by name, with the plugin that registered it.

        Each implementation is called on its own so every item is attributed to its plugin. A bad item (a
        missing ``required`` attribute, a malformed name, a name registered twice) or a hook that raises
        disables only what it concerns, with a warning naming the plugin: one faulty plugin must not stop
        the others. Asking for a disabled name is an error with the same message (``broken``).
        Collected once per Plugins, so each warning is shown once."""
        if hook in self._collected:
            return self._collected[hook]
        found: dict[str, tuple[Any, PluginInfo]] = {}
        clashes: set[str] = set()

        def disable(name: str | None, message: str) -> None:
            warnings.warn(message + " It was disabled.", stacklevel=3)
            if name is not None:
                self.broken[name] = message

        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            info = self.info(impl.plugin)
            who = f"Plugin '{info.name}' ({info.dist})"
            collected: list[Any] = []
            try:
                with guarded(who, f"in {hook}()"):
                    impl.function(register=collected.append)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # SystemExit included: a plugin never ends the tool
                message = f"{who} failed in {hook}(): {_describe(exc)}."
                self.hook_errors.append(message)
                disable(None, message)
                continue
            for item in collected:
                missing = [attr for attr in required if not hasattr(item, attr)]
                name = getattr(item, "name", None)
                known = name if isinstance(name, str) and name_problem(name) is None else None
                if missing:
                    disable(known, f"{who} registered a {kind} without '{missing[0]}'.")
                elif known is None:
                    disable(None, f"{who} registered a {kind} whose {name_problem(name)}.")
                elif (bad := _non_finite_default(item)) is not None:
                    disable(known, f"{who} registered {kind} '{known}' whose parameter {bad[0]!r} defaults to "
                                   f"{bad[1]}, which is not a finite number.")
                elif known in found or known in clashes:
                    other = found.pop(known, (None, None))[1]
                    clashes.add(known)
                    by = f"'{other.name}' ({other.dist}) and " if other else "another plugin and "
                    disable(known, f"{kind.capitalize()} '{known}' is registered by two plugins: "
                                   f"{by}'{info.name}' ({info.dist}); uninstall one.")
                else:
                    found[known] = (item, info)
        self._collected[hook] = dict(sorted(found.items()))
        return self._collected[hook]

    def _pick(self, kind: str, name: str, known: dict[str, Any]) -> Any:
        """``known[name]``, or the error for an unknown ``kind`` (closest match, or the plugin that failed)."""
        if name not in known:
            raise self._unknown(kind, name, list(known))
        return known[name]

    def _unknown(self, kind: str, name: str, known: list[str]) -> BenchError:
        if name in self.broken:
            return PluginError(self.broken[name])
        error = unknown(kind, name, known)
        if self.hook_errors:  # the name may be one a failing plugin would have registered
            return BenchError(f"{error} Also: {' '.join(self.hook_errors)}")
        return error

    def perturbations(self) -> dict[str, Registered]:
        """Every registered perturbation by name."""
        found = self.collect("register_perturbations", "perturbation", ("name", "description", "apply"))
        return {name: Registered(item, info) for name, (item, info) in found.items()}

    def perturbation(self, name: str) -> Registered:
        return self._pick("perturbation", name, self.perturbations())

    def pruning_strategies(self) -> dict[str, RegisteredStrategy]:
        """Every registered pruning strategy by name."""
        found = self.collect("register_pruning_strategies", "pruning strategy", ("name", "description", "masks"))
        return {name: RegisteredStrategy(item, info) for name, (item, info) in found.items()}

    def pruning_strategy(self, name: str) -> RegisteredStrategy:
        return self._pick("pruning strategy", name, self.pruning_strategies())

    def pretrainings(self) -> dict[str, RegisteredPretraining]:
        """Every registered pre-training by name; ``steps``, ``lr``, ... are the harness's, so no task may declare them."""
        from bench.pretraining import HARNESS_PARAMS

        reserved = [p.name for p in HARNESS_PARAMS]
        found = self.collect("register_pretraining", "pre-training", ("name", "description", "prepare"))
        for name, (item, info) in list(found.items()):
            taken = next((n for n in reserved if any(getattr(p, "name", None) == n for p in getattr(item, "params", ()))),
                         None)
            if taken is not None:
                message = f"Pre-training '{name}' of plugin '{info.name}' declares '{taken}', which the harness provides."
                if name not in self.broken:
                    warnings.warn(message + " It was disabled.", stacklevel=2)
                self.broken[name] = message
                del found[name]
        return {name: RegisteredPretraining(item, info) for name, (item, info) in found.items()}

    def pretraining(self, name: str) -> RegisteredPretraining:
        """A pre-training by its name, with or without the 'pretrain:' prefix its results rank under."""
        from bench.pretraining import PREFIX

        return self._pick("pre-training", name[len(PREFIX):] if name.startswith(PREFIX) else name, self.pretrainings())

    # -- experiment trackers (bench.tracking): `bench run --logger NAME` ---------------------------------
    def loggers(self) -> dict[str, RegisteredLogger]:
        """Every registered logger factory by name."""
        found = self.collect("register_loggers", "logger", ("name", "description", "create"))
        return {name: RegisteredLogger(item, info) for name, (item, info) in found.items()}

    def logger(self, name: str) -> RegisteredLogger:
        return self._pick("logger", name, self.loggers())


def _non_finite_default(item: Any) -> tuple[str, float] | None:
    """(name, default) of the first parameter whose default is NaN or infinite: it would train on NaN or make
    `bench perturbations --json` invalid JSON."""
    try:
        params = list(getattr(item, "params", ()) or ())
    except TypeError:
        return None  # not a sequence: resolving the parameters says so when the item is used
    for p in params:
        default = getattr(p, "default", None)
        if isinstance(default, float) and not math.isfinite(default):
            return str(getattr(p, "name", "?")), default
    return None


def _allowed(only: set[str] | None = None) -> set[str] | None:
    if only is not None:
        return {_norm(dist) for dist in only}
    raw = os.environ.get(ENV_LOAD)
    if raw is None:
        return None
    return {_norm(part) for part in raw.split(",") if part.strip()}


def _norm(dist: str) -> str:
    return dist.strip().lower().replace("_", "-")


def load_plugins(only: set[str] | None = None) -> Plugins:
    """Build a plugin manager from the installed ``bench`` entry points, each loaded on its own.

    ``only`` (distribution names) overrides ``BENCH_LOAD_PLUGINS``: ``bench verify`` loads the built-ins and
    the distribution that produced a result, so no other plugin can touch the re-run. Each import runs
    guarded (bench.plugin_guard): its prints go to stderr, and one that changes torch's thread count or
    default dtype is refused like a failed import."""
    manager = pluggy.PluginManager(GROUP)
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager)
    allowed = _allowed(only)
    entry_points = sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name)
    if allowed:  # a typo must not silently leave only the built-ins
        dists = sorted({ep.dist.name for ep in entry_points if ep.dist} | {BUILTIN_DIST})
        for name in sorted(allowed - {_norm(d) for d in dists}):
            raise BenchError(f"{ENV_LOAD if only is None else 'Not installed'}: "
                             f"{unknown('plugin distribution', name, dists)}")
    for ep in entry_points:
        dist = ep.dist.name if ep.dist else "unknown"
        version = ep.dist.version if ep.dist else "unknown"
        if allowed is not None and _norm(dist) != BUILTIN_DIST and _norm(dist) not in allowed:
            plugins.skipped.append(ep.name)
            continue
        if manager.get_plugin(ep.name) is not None:
            continue  # the same distribution seen twice on sys.path
        try:
            with guarded(f"Plugin '{ep.name}' ({dist})", "at import"):
                module = ep.load()
                manager.register(module, name=ep.name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # any import-time failure, SystemExit included, must not take the tool down
            if manager.get_plugin(ep.name) is not None:  # registered, then refused for what it changed
                manager.unregister(name=ep.name)
            message = str(exc) if isinstance(exc, PluginError) else _describe(exc)
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
