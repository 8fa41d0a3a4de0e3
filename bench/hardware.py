"""The hardware class a stage trained on, recorded in its done.json.

Kernels round differently per CPU capability (AVX2, AVX512, ...) and per GPU model, and early training
amplifies rounding (docs/harness.md), so a branch compared with a ticket from another class would measure
the hardware, not the perturbation. ``bench sweep`` refuses such a pairing (bench/sweep.py).
"""

from __future__ import annotations

import torch


def hardware_class(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{torch.backends.cpu.get_cpu_capability()}"
