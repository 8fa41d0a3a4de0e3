#!/usr/bin/env bash
# One-command GPU validation of the paper preset (cifar10-resnet20); writes one JSON report.
#
#   scripts/gpu_validate.sh                          # real CIFAR-10 on cuda, default report gpu-validation.json
#   scripts/gpu_validate.sh --synthetic              # no CIFAR-10 here: time on random CIFAR-shaped data
#   scripts/gpu_validate.sh --full                   # also train one full dense ResNet-20 (about 62,560 steps)
#   scripts/gpu_validate.sh --instability 0,100,500,2000 --instability-level 1   # dense and ticket barriers against k
#   scripts/gpu_validate.sh --device cpu --synthetic --iterations 5 --out /tmp/r.json   # what the tests run
#
# Options: --device cuda|cpu, --synthetic, --iterations N, --out FILE, --full (and --data-dir, --cache-dir,
# --precision, --skip-tests, --examples, --warmup, --instability-level/-seeds/-bn/-points). How to read the report: docs/performance.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python="python3"; fi
fi
cd "$root"
exec "$python" scripts/gpu_validate.py "$@"
