"""The perturbation contract: what a plugin provides and what the harness guarantees.

A perturbation is any object with

* ``name``: a short kebab-case identifier, unique across loaded plugins;
* ``description``: one line shown by ``bench perturbations``;
* ``params``: a sequence of :class:`Param` (may be empty);
* ``apply(ctx)``: returns ``{tensor_name: new_value}`` for some or all of the
  prunable tensors in ``ctx.names``. Tensors it leaves out keep W_k;
* ``start`` (optional): ``"rewind"`` (the default) or ``"init"``. With ``"rewind"`` the branch
  starts from W_k's full state (BatchNorm parameters and statistics, biases) at step k and
  trains k -> T with the schedule resumed at k. With ``"init"`` it starts from W_0's full state
  at step 0 and trains 0 -> T with the full schedule (W_0 under this chain's mask); ``apply``'s
  weights (masked) still replace the prunable tensors, and ``ctx.rewind`` is still W_k.
  ``"imp-from-init"`` is the harness's own reference (the built-in ``imp-rewind-0``): the branch is
  the ticket of IMP rewound to iteration 0 with its own pruning chain (its own masks, W_0 trained
  0 -> T at every level), so ``apply`` only serves to measure W_0 against W_k.
* ``data_order`` (optional): ``"same"`` (the default) or ``"other"``. With ``"same"`` the branch trains on
  its replicate's own data order (batches and augmentation), as its ticket did. With ``"other"`` it trains
  on another order, seeded by :func:`bench.seeding.branch_order_seed` (a pure function of the replicate
  seed and the perturbation seed, recorded as the branch's ``data_seed``): the built-in ``data-order``
  control, whose start is the ticket's own, so its drop is SGD noise alone. Not with ``"imp-from-init"``.

The plugin never has to apply the mask or validate its output: the harness
(:func:`perturb`) checks names, shapes, dtypes and finiteness, fails with a
message naming the plugin, re-applies the mask so pruned weights stay exactly
zero, and measures the size of the change. Randomness must come from
``ctx.generator`` (seeded by the harness, recorded in the result) so every
result is reproducible.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

from bench.errors import BenchError, PluginError
from bench.plugin_guard import DEFAULT_APPLY_TIMEOUT, guarded  # noqa: F401  (the timeout: its home before)

if TYPE_CHECKING:  # torch loads in the functions that compute: listing plugins needs none
    import torch

_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class Param:
    """A typed, defaulted parameter, set from the CLI as ``--param name=value``."""

    name: str
    type: type
    default: Any
    help: str = ""

    def convert(self, raw: Any, owner: str) -> Any:
        """``raw`` (a CLI string or a value) as this parameter's type; ``owner`` names whose parameter it is
        in errors, e.g. "perturbation 'gaussian-noise'"."""
        if isinstance(raw, self.type) and not (self.type is int and isinstance(raw, bool)):
            if isinstance(raw, float) and not math.isfinite(raw):
                raise BenchError(f"Parameter '{self.name}' of {owner} must be finite, got {raw}.")
            return raw
        try:
            if self.type is bool:
                return _BOOL_WORDS[str(raw).strip().lower()]
            value = self.type(raw)
        except (KeyError, TypeError, ValueError):
            raise BenchError(f"Parameter '{self.name}' of {owner} must be {self.type.__name__}, got {raw!r}.") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise BenchError(f"Parameter '{self.name}' of {owner} must be finite, got {raw!r}.")
        return value


class Perturbation(Protocol):
    name: str
    description: str
    params: Sequence[Param]

    def apply(self, ctx: "Context") -> Mapping[str, torch.Tensor]: ...


@dataclass
class Context:
    """Everything a perturbation may read. All tensors are private copies.

    rewind:    W_k, the dense network's prunable weights at the rewind point.
    init:      W_0, the same tensors at initialisation.
    mask:      the level's mask (1 = surviving weight, 0 = pruned), float.
    generator: a torch.Generator seeded by the harness; use it for all randomness.
    params:    the perturbation's parameters, converted to their declared types.
    seed:      the seed that ``generator`` was created from.
    """

    rewind: dict[str, torch.Tensor]
    init: dict[str, torch.Tensor]
    mask: dict[str, torch.Tensor]
    generator: torch.Generator
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    initializer: Callable[[str, torch.Tensor, torch.Generator], torch.Tensor] | None = None
    init_stds: dict[str, float] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.rewind)

    def fresh_init(self, name: str) -> torch.Tensor:
        """A fresh draw for tensor ``name`` from the model's own initialiser (per-layer fan-in)."""
        import torch

        if self.initializer is None:
            raise RuntimeError("this context has no initialiser")
        return self.initializer(name, torch.empty_like(self.rewind[name]), self.generator)

    def init_std(self, name: str) -> float:
        """The standard deviation of the model's initialiser for tensor ``name``."""
        return self.init_stds[name]


@dataclass(frozen=True)
class Applied:
    """The perturbed weights W' = M * P(W_k) and how far they moved from W_k."""

    weights: dict[str, torch.Tensor]
    effective_std: float
    relative_change: float
    no_op: bool = False  # W' equals M * W_k on every tensor: the branch would retrain the ticket itself


STARTS = ("rewind", "init", "imp-from-init")


def start_point(perturbation: Any) -> str:
    """Where a perturbation's branch starts: ``"rewind"`` (W_k at step k), ``"init"`` (W_0 at step 0) or
    ``"imp-from-init"`` (the ticket of IMP's own chain rewound to 0)."""
    start = getattr(perturbation, "start", "rewind")
    if start not in STARTS:
        raise PluginError(f"Perturbation '{perturbation.name}' has start = {start!r}; expected one of "
                          f"{', '.join(repr(s) for s in STARTS)}.")
    return start


DATA_ORDERS = ("same", "other")


def data_order(perturbation: Any) -> str:
    """Which data order a perturbation's branch trains on: ``"same"`` (its replicate's, as the ticket) or
    ``"other"`` (another, seeded by ``bench.seeding.branch_order_seed``)."""
    order = getattr(perturbation, "data_order", "same")
    if order not in DATA_ORDERS:
        raise PluginError(f"Perturbation '{perturbation.name}' has data_order = {order!r}; expected one of "
                          f"{', '.join(repr(o) for o in DATA_ORDERS)}.")
    if order != "same" and start_point(perturbation) == "imp-from-init":
        raise PluginError(f"Perturbation '{perturbation.name}' has data_order = {order!r} with start = "
                          f"'imp-from-init': that branch is IMP's own chain, trained on the replicate's order.")
    return order


def resolve_params(item: Any, raw: Mapping[str, Any], kind: str = "perturbation",
                   declared: Sequence[Param] | None = None) -> dict[str, Any]:
    """Defaults overlaid with ``raw`` values, each converted to its declared type.

    ``item`` is a perturbation (or another registered ``kind`` with a name and params); ``declared``
    replaces its own ``params`` where the harness adds some (a pre-training's ``steps``)."""
    params = {p.name: p for p in (getattr(item, "params", ()) if declared is None else declared)}
    owner = f"{kind} '{item.name}'"
    unknown = sorted(set(raw) - set(params))
    if unknown:
        known = ", ".join(params) or "none"
        raise BenchError(f"{owner[0].upper()}{owner[1:]} has no parameter {unknown[0]!r}; its parameters: {known}.")
    values = {name: p.default for name, p in params.items()}
    for name, value in raw.items():
        values[name] = params[name].convert(value, owner)
    # -0.0 == 0.0 but prints (and names its branch folder) differently: one value, one entry
    return {name: 0.0 if isinstance(v, float) and v == 0 else v for name, v in values.items()}


def _call(apply: Callable[[Context], Any], ctx: Context, timeout: float | None, who: str) -> Any:
    """``apply(ctx)``, in a worker thread when ``timeout`` is set, so a plugin that never returns is named.

    Python cannot kill a thread: on timeout the worker is abandoned (a daemon thread, so it does not keep
    the process alive) and the error ends the command. The call is guarded in the thread that makes it: its
    prints go to stderr, and a change to torch's thread count or default dtype is refused (bench.plugin_guard)."""
    if timeout is None:
        with guarded(who, "in apply()"):
            return apply(ctx)
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            with guarded(who, "in apply()", redirect=False):  # checked in the thread that runs it
                box["out"] = apply(ctx)
        except BaseException as exc:  # handed to the caller's thread, which reports it
            box["exc"] = exc

    worker = threading.Thread(target=work, name=f"apply {who}", daemon=True)
    with contextlib.redirect_stdout(sys.stderr):
        worker.start()
        worker.join(timeout)
    if worker.is_alive():
        raise PluginError(f"{who} did not return from apply() within {timeout:g} s (--apply-timeout); its thread "
                          f"cannot be stopped, so the command stops here.")
    if "exc" in box:
        raise box["exc"]
    return box["out"]


def perturb(perturbation: Perturbation, ctx: Context, timeout: float | None = None) -> Applied:
    """Run a plugin's ``apply`` and enforce the contract on what it returns.

    The harness keeps its own copies of the inputs: a plugin that changes them in place, or draws from
    torch's global generator (unseeded by the harness, so its result would not reproduce), is refused.
    ``apply`` then runs a second time on fresh copies with the same ``ctx.generator`` state but every global
    generator (torch's, numpy's, Python's) reseeded, and must return the same values bit for bit: a result
    that depends on anything but ``ctx`` would not reproduce. The first call's result is used; the global
    generators are restored. ``timeout`` (seconds) bounds each call."""
    import torch

    who = f"Perturbation '{perturbation.name}'"
    pristine = {part: {n: t.clone() for n, t in getattr(ctx, part).items()} for part in ("rewind", "init", "mask")}
    generator_state = ctx.generator.get_state()
    rng_before = torch.get_rng_state()
    out = _apply(perturbation, ctx, timeout, who)
    if not torch.equal(rng_before, torch.get_rng_state()):
        raise PluginError(f"{who} drew from torch's global random generator, so its result cannot be reproduced; "
                          f"draw from ctx.generator instead.")
    for part, tensors in pristine.items():
        changed = [n for n, t in tensors.items() if not torch.equal(t, getattr(ctx, part)[n])]
        if changed:
            raise PluginError(f"{who} changed ctx.{part}[{changed[0]!r}] in place; return new tensors instead.")
    ctx = _copy(ctx, pristine, generator_state)  # measure against the harness's own copies
    weights = _checked(out, ctx, who)
    with _other_global_generators():
        again = _checked(_apply(perturbation, _copy(ctx, pristine, generator_state), timeout, who), ctx, who)
    differing = [n for n in weights if not torch.equal(weights[n], again[n])]
    if differing:
        raise PluginError(f"{who} returned different values for {differing[0]!r} from the same ctx twice: its "
                          f"apply is not a pure function of ctx (it draws from numpy's, Python's or torch's global "
                          f"generator, or keeps state); draw from ctx.generator instead.")
    no_op = all(torch.equal(w, ctx.rewind[n] * ctx.mask[n]) for n, w in weights.items())
    return Applied(weights, *change_size(ctx.rewind, weights, ctx.mask), no_op=no_op)


def _apply(perturbation: Perturbation, ctx: Context, timeout: float | None, who: str) -> Any:
    try:
        return _call(perturbation.apply, ctx, timeout, who)
    except BenchError:
        raise
    except Exception as exc:  # a plugin bug must name the plugin, not show our stack
        raise PluginError(f"{who} failed in apply(): {type(exc).__name__}: {exc}") from exc


def _copy(ctx: Context, tensors: dict[str, dict[str, torch.Tensor]], generator_state: torch.Tensor) -> Context:
    """A fresh Context holding copies of ``tensors`` and a generator at ``generator_state``."""
    import torch

    gen = torch.Generator(device=ctx.generator.device)
    gen.set_state(generator_state)
    return Context(**{f: getattr(ctx, f) for f in ("params", "seed", "initializer", "init_stds")}, generator=gen,
                   **{part: {n: t.clone() for n, t in parts.items()} for part, parts in tensors.items()})


@contextlib.contextmanager
def _other_global_generators():
    """Every global generator reseeded away from its current state, and restored afterwards."""
    import torch

    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy comes with torch's usual installs
        numpy = None
    saved = (torch.get_rng_state(), random.getstate(), numpy.random.get_state() if numpy else None)
    try:
        torch.default_generator.manual_seed(torch.initial_seed() ^ 0x5EED)  # CPU only: CUDA's are not restored
        random.seed(random.getrandbits(64) ^ 0x5EED)
        if numpy:
            numpy.random.seed(int(numpy.random.randint(2**31)) ^ 0x5EED)
        yield
    finally:
        torch.set_rng_state(saved[0])
        random.setstate(saved[1])
        if numpy:
            numpy.random.set_state(saved[2])


def _checked(out: Any, ctx: Context, who: str) -> dict[str, torch.Tensor]:
    """``apply``'s output as masked, validated weights for every prunable tensor (W_k where it left one out)."""
    import torch

    if not isinstance(out, Mapping):
        raise PluginError(f"{who} must return a dict of tensors, got {type(out).__name__}.")
    extra = sorted(set(out) - set(ctx.rewind))
    if extra:
        raise PluginError(f"{who} returned unknown tensor {extra[0]!r}; prunable tensors: {', '.join(ctx.names)}.")
    weights: dict[str, torch.Tensor] = {}
    for name, ref in ctx.rewind.items():
        new = out.get(name, ref)
        if not isinstance(new, torch.Tensor):
            raise PluginError(f"{who} returned {type(new).__name__} for {name!r}, expected a tensor.")
        if new.shape != ref.shape:
            raise PluginError(f"{who} returned shape {tuple(new.shape)} for {name!r}, expected {tuple(ref.shape)}.")
        if new.dtype != ref.dtype:
            raise PluginError(f"{who} returned dtype {new.dtype} for {name!r}, expected {ref.dtype}.")
        new = new.detach().to(ref.device) * ctx.mask[name]
        if not torch.isfinite(new).all():
            raise PluginError(f"{who} produced NaN or infinite values in {name!r}.")
        weights[name] = new
    return weights


def change_size(before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor],
                mask: Mapping[str, torch.Tensor]) -> tuple[float, float]:
    """(effective std, relative change) of ``after`` against ``before`` over the surviving weights:
    std(W' - W) and ||W' - W|| / ||M * W||, all prunable tensors pooled."""
    import torch

    names = list(mask)
    keep = torch.cat([mask[n].flatten().bool().cpu() for n in names])
    old = torch.cat([before[n].flatten().cpu() for n in names])[keep].double()
    new = torch.cat([after[n].flatten().cpu() for n in names])[keep].double()
    delta = new - old
    effective_std = float(delta.std(unbiased=False)) if delta.numel() else 0.0
    norm = float(old.norm())
    return effective_std, (float(delta.norm()) / norm if norm > 0 else 0.0)
