#!/usr/bin/env bash
# The measured figures of docs/early-phase.md, on the default preset (3 seeds, CPU).
#   scripts/measure_early_phase.sh OUT_DIR [CACHE_DIR]
set -euo pipefail
out=${1:?output folder}; cache=${2:-$out/cache}
mkdir -p "$out" docs/figures
export CI=1
b() { .venv/bin/bench "$@" --cache-dir "$cache"; }
b rewind-curve --seeds 3 --k 0,10,20,40,60,100,200,400 --output docs/figures/rewind-curve.png --json > "$out/rewind-curve.json"
b trace --seeds 3 --output-dir docs/figures/trace --json > "$out/trace.json"
for task in random-labels rotation blur blur-rotation; do
  b pretrain --task "$task" --seeds 3 --json > "$out/pretrain-$task.json"
done
for task in blur rotation; do  # the supervised budget (k = 60 iterations), for contrast
  b pretrain --task "$task" --param steps=60it --seeds 3 --json > "$out/pretrain-$task-60it.json"
done
