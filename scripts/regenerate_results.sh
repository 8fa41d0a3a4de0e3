#!/usr/bin/env bash
# Regenerate every committed result and measured figure from the current code, then the tables.
#   scripts/regenerate_results.sh OUT_DIR [CACHE_DIR]
# 1. The README's default command from an empty cache, timed (OUT_DIR/times.txt).
# 2. leaderboard/results: the default preset on its default seeds (never used by the preset's search,
#    docs/default-preset.md): every built-in perturbation and control at the default level and level 2, the
#    noise scales, the pre-training entries (default level).
# 3. docs/early-phase.md's rewind curve (a chain per k) and trace, into docs/figures.
# 4. leaderboard/smoke-<cpu model>: a few `smoke` results that CI re-runs exactly on a machine of this class
#    (scripts/smoke_sample.sh; tests/test_committed_results.py).
# Run it whenever the numerics change (PROTOCOL_VERSION in bench/provenance.py), on an idle machine of the
# class docs/reproducibility.md names. Protocol 2 took 34 minutes on 2 cores (the test suite ran beside it for part of that).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?output folder}; cache=${2:-$out/cache}
mkdir -p "$out" docs/figures
export CI=1  # no progress bars in logs
b() { .venv/bin/bench "$@" --cache-dir "$cache"; }
{ /usr/bin/time -f "default run (empty cache, shuffle-layer, default seeds): %e s wall, %M KB peak RSS" \
    .venv/bin/bench run --perturbation shuffle-layer --cache-dir "$cache" --json > "$out/shuffle-layer.json"; } 2>> "$out/times.txt"
{ /usr/bin/time -f "same command again (cached): %e s wall" \
    .venv/bin/bench run --perturbation shuffle-layer --cache-dir "$cache" --json > /dev/null; } 2>> "$out/times.txt"
{ /usr/bin/time -f "another perturbation (reinit, trunk and levels cached): %e s wall" \
    .venv/bin/bench run --perturbation reinit --cache-dir "$cache" --json > "$out/reinit.json"; } 2>> "$out/times.txt"
# two workers, one process each (--workers 1: the seed groups one after another, the same numbers); they
# share the trunk and the IMP levels through the cache, whose stage locks make one train while the other waits
(b run -p imp-rewind-0 --level 3 --level 2 --workers 1 --json > "$out/imp-rewind-0.json"
 for p in identity data-order rewind-to-init lottery-ticket reinit reinit-keep-sign init-magnitude-keep-sign \
          keep-magnitude-init-sign random-sign shuffle-layer shuffle-layer-keep-sign shuffle-filter; do
   b run --perturbation "$p" --level 3 --level 2 --workers 1 --json > "$out/$p.json"
 done
 for s in 0.25 0.5 1 2 4; do
   b run --perturbation gaussian-noise --param scale=$s --level 3 --level 2 --workers 1 --json > "$out/gaussian-noise-$s.json"
 done) & first=$!
(b rewind-curve --k 0,32,96,192,320 --output docs/figures/rewind-curve.png --json > "$out/rewind-curve.json"
 b trace --seeds 3 --output-dir docs/figures/trace --json > "$out/trace.json"
 for task in random-labels rotation blur blur-rotation; do
   b pretrain --task "$task" --json > "$out/pretrain-$task.json"
 done
 for task in blur rotation; do  # the supervised budget (k = 96 iterations), for contrast
   b pretrain --task "$task" --param steps=96it --json > "$out/pretrain-$task-96it.json"
 done) & second=$!
wait "$first" && wait "$second"  # fail if either worker failed
scripts/smoke_sample.sh "$cache/smoke"  # the CI sample of this machine's class
rm -rf leaderboard/results
cp -r "$cache/results" leaderboard/results
.venv/bin/python -m bench.report
echo "results in leaderboard/results and leaderboard/smoke-*; JSON outputs and times in $out; cache kept in $cache"
