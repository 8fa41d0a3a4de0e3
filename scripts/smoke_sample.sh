#!/usr/bin/env bash
# The CI sample for this machine's kernel class: a few `smoke` results over every code path (perturbations,
# the reference chain, a pre-training), which tests/test_committed_results.py re-runs exactly on a machine of
# the same class. The pinned kernels round differently per CPU model (docs/reproducibility.md), so each class
# keeps its own folder, leaderboard/smoke-<cpu model>.
#   scripts/smoke_sample.sh [CACHE_DIR]     (run from a clean, committed tree: results record git_dirty)
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${1:-$(mktemp -d)}
slug=$(.venv/bin/python -c "import re; from bench.numerics import cpu_model; \
print(re.sub(r'[^a-z0-9]+', '-', re.sub(r'\((r|tm)\)|processor|cpu', '', cpu_model().lower())).strip('-'))")
export CI=1
.venv/bin/bench run --preset smoke --seeds 2 -p identity -p shuffle-layer -p reinit -p imp-rewind-0 \
  --cache-dir "$cache" --json > /dev/null
.venv/bin/bench pretrain --preset smoke --seeds 2 --task blur --param steps=5it --cache-dir "$cache" --json > /dev/null
rm -rf "leaderboard/smoke-$slug"
cp -r "$cache/results" "leaderboard/smoke-$slug"
echo "wrote leaderboard/smoke-$slug"
