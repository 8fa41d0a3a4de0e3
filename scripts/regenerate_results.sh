#!/usr/bin/env bash
# Regenerate every committed result from the current code, then the tables generated from them.
#   scripts/regenerate_results.sh [CACHE_DIR]
# leaderboard/results: the default preset (3 seeds): every built-in perturbation, the noise scales and the
# pre-training entries. leaderboard/smoke: a few `smoke` results that CI re-runs exactly
# (tests/test_committed_results.py). Run it whenever the numerics change (PROTOCOL_VERSION in
# bench/provenance.py), on a machine of the class docs/reproducibility.md names.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${1:-$(mktemp -d)}
export CI=1  # no progress bars in logs
b() { .venv/bin/bench "$@" --cache-dir "$cache"; }
# two workers (each process uses one thread, docs/reproducibility.md); they share the trunk and the IMP
# levels through the cache, whose stage locks make one train while the other waits
(for p in identity rewind-to-init lottery-ticket reinit reinit-keep-sign init-magnitude-keep-sign keep-magnitude-init-sign \
          random-sign shuffle-layer shuffle-layer-keep-sign shuffle-filter; do
   b run --perturbation "$p" --json > /dev/null
 done) & first=$!
(for s in 0.25 0.5 1 2 4; do
   b run --perturbation gaussian-noise --param scale=$s --json > /dev/null
 done
 for task in random-labels rotation blur blur-rotation; do
   b pretrain --task "$task" --json > /dev/null
 done
 for task in blur rotation; do  # the supervised budget (k = 60 iterations), for contrast
   b pretrain --task "$task" --param steps=60it --json > /dev/null
 done) & second=$!
wait "$first" && wait "$second"  # fail if either worker failed
# the CI sample: small, every code path (perturbations, a pre-training) re-run exactly by the tests
smoke="$cache/smoke"
.venv/bin/bench run --preset smoke --seeds 2 -p identity -p shuffle-layer -p reinit --cache-dir "$smoke" --json > /dev/null
.venv/bin/bench pretrain --preset smoke --seeds 2 --task blur --param steps=5it --cache-dir "$smoke" --json > /dev/null
rm -rf leaderboard/results leaderboard/smoke
cp -r "$cache/results" leaderboard/results
cp -r "$smoke/results" leaderboard/smoke
.venv/bin/python -m bench.report
echo "results in leaderboard/results and leaderboard/smoke; cache kept in $cache"
