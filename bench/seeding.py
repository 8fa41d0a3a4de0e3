"""Derived seeds: every random stream is a pure function of (replicate seed, purpose, position).

This is what makes a resumed run bit-identical and lets training start at step k
without replaying steps 0..k-1: data order and augmentation for step t depend
only on the seed and t, never on how many draws came before.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads in the functions that compute: listing plugins needs none
    import torch


def derive_seed(*parts: object) -> int:
    text = "/".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & ((1 << 63) - 1)


def branch_order_seed(seed: int, perturbation_seed: int) -> int:
    """The data-order seed of a branch that trains on another order than its replicate's (a perturbation with
    ``data_order = "other"``, the ``data-order`` control): derived from the replicate seed and the perturbation
    seed alone, so a rerun trains the same order and another perturbation seed draws another one."""
    return derive_seed(seed, "branch-data-order", perturbation_seed)


def generator(*parts: object, device: str | torch.device = "cpu") -> torch.Generator:
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(*parts))
    return g
