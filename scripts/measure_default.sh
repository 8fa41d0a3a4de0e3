#!/usr/bin/env bash
# Every measured figure in the README and docs, on the default preset (3 seeds, CPU), in one go.
#   scripts/measure_default.sh OUT_DIR [CACHE_DIR]
# Writes one JSON per command into OUT_DIR and `time` output into OUT_DIR/times.txt. Results accumulate
# under CACHE_DIR/results, ready to copy into leaderboard/results.
set -euo pipefail
out=${1:?output folder}; cache=${2:-$out/cache}
mkdir -p "$out" docs/figures
export CI=1  # no progress bars in logs
b() { .venv/bin/bench "$@" --cache-dir "$cache"; }
{ /usr/bin/time -f "default run (fresh cache, shuffle-layer, 3 seeds): %e s wall, %M KB peak RSS" \
    .venv/bin/bench run --perturbation shuffle-layer --cache-dir "$cache" --json > "$out/shuffle-layer.json"; } 2>> "$out/times.txt"
{ /usr/bin/time -f "same command again (cached): %e s wall" \
    .venv/bin/bench run --perturbation shuffle-layer --cache-dir "$cache" --json > /dev/null; } 2>> "$out/times.txt"
for p in identity rewind-to-init reinit reinit-keep-sign init-magnitude-keep-sign keep-magnitude-init-sign \
         random-sign shuffle-layer-keep-sign shuffle-filter; do
  b run --perturbation "$p" --json > "$out/$p.json"
done
for s in 0.25 0.5 1 2 4; do
  b run --perturbation gaussian-noise --param scale=$s --json > "$out/gaussian-noise-$s.json"
done
