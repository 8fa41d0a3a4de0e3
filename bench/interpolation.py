"""Linear mode connectivity: the network on the straight line between two end states, and its error there.

Used by ``bench instability`` (bench/experiments/instability.py). The point at ``alpha`` is
``(1 - alpha) * A + alpha * B`` for every trainable tensor; BatchNorm's running statistics follow ``bn``:

* ``interpolate``: interpolated like the weights (what OpenLTH forks and lth_diet do);
* ``endpoint``: the nearer endpoint's statistics, unchanged (A's up to alpha = 0.5, B's after), so each half of
  the path is normalised as one trained network was;
* ``recompute``: reset and recomputed at every point, endpoints included, on the same training batches (a
  cumulative average over ``bn_batches`` batches drawn from the replicate's seed), as REPAIR does.

The default is ``recompute``: interpolated or borrowed statistics describe no network on the path (the
activations' variance shrinks between two solutions: REPAIR, Jordan et al. 2022), so the barrier would mix the
weights' connectivity with stale normalisation; recomputed, every point is measured as it would be deployed.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from bench.results import barrier
from bench.training import evaluate

__all__ = ["BN_MODES", "DEFAULT_BN", "DEFAULT_POINTS", "alphas", "barrier", "interpolate", "path_errors",
           "recompute_stats"]

BN_MODES = ("interpolate", "endpoint", "recompute")
DEFAULT_BN = "recompute"
DEFAULT_POINTS = 30  # the companion paper's
_BN_STATS = ("running_mean", "running_var", "num_batches_tracked")


def alphas(points: int) -> list[float]:
    """``points`` evenly spaced values in [0, 1], both ends included."""
    return [i / (points - 1) for i in range(points)]


def is_bn_stat(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in _BN_STATS


def interpolate(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], alpha: float,
                bn: str = DEFAULT_BN) -> dict[str, torch.Tensor]:
    """The full state at ``alpha`` between A (0) and B (1). The endpoints are A and B exactly (no arithmetic),
    so the path's ends are the two trained networks bit for bit; integer tensors (BatchNorm's batch counts)
    come from the nearer end."""
    near = a if alpha <= 0.5 else b
    out = {}
    for name, ta in a.items():
        if alpha in (0.0, 1.0) or not ta.is_floating_point() or (bn == "endpoint" and is_bn_stat(name)):
            out[name] = (a if alpha == 0.0 else b if alpha == 1.0 else near)[name].clone()
        else:
            out[name] = torch.lerp(ta, b[name], alpha)
    return out


@torch.no_grad()
def recompute_stats(model: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Reset every BatchNorm's running statistics and set them to the average over ``batches`` (train mode,
    cumulative: momentum None), leaving the weights untouched."""
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    saved = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for x in batches:
        model(x)
    for m, momentum in zip(layers, saved):
        m.momentum = momentum
    model.eval()


def path_errors(model: nn.Module, a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], points: int, bn: str,
                splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
                batches: Callable[[], Iterable[torch.Tensor]]) -> dict[str, list[float]]:
    """Error in percent at each of ``points`` evenly spaced points from A to B, per split (name -> (x, y)).
    ``batches`` gives the training inputs BatchNorm statistics are recomputed on (bn = recompute)."""
    errors: dict[str, list[float]] = {name: [] for name in splits}
    for alpha in alphas(points):
        model.load_state_dict(interpolate(a, b, alpha, bn))
        if bn == "recompute":
            recompute_stats(model, batches())
        for name, (x, y) in splits.items():
            errors[name].append(100.0 - evaluate(model, x, y))
    return errors
