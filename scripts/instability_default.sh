#!/usr/bin/env bash
# The default preset's instability results (issue 23, item 3): the dense network's and the IMP ticket's
# test-error barrier against k, and every built-in perturbation's at the preset's k and level.
#   scripts/instability_default.sh OUT_DIR [CACHE_DIR] [SEEDS]
# 1. bench instability over k = 0, 24, 48, 96 (the preset's k), 192, 384 (the k of the rewind curve, so the
#    chains are shared) for the dense network and the ticket at the default level (IMP's own chain rewound to
#    each k), BatchNorm recomputed (the default), 30 points; its figure goes to docs/figures/instability.png.
# 2. bench instability for each built-in perturbation and control at the preset's k and level, the noise floor
#    (data-order) included, gaussian-noise at the scales in NOISE_SCALES (default: 1 and 4); the first copy of
#    each is its ordinary branch, retrained beside it in its ticket's group (the same network).
# 3. the instability records are copied into leaderboard/results/<config>/instability, where bench leaderboard
#    shows them beside each perturbation's drop.
# A cache that already holds the committed results' stages (scripts/regenerate_results.sh) saves the trunks,
# IMP levels and branches; otherwise everything is trained here. What it measures: docs/early-phase.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?output folder}; cache=${2:-$out/cache}; seeds=${3:-}
scales=${NOISE_SCALES:-1 4}
figures=${FIGURES:-docs/figures}  # where the curves' figure goes (regenerate_results.sh: outside the tree)
copy=${COPY:-1}                   # 0: leave the records in the cache (regenerate_results.sh copies them later)
mkdir -p "$out" "$figures"
export CI=1  # no progress bars in logs
b() { .venv/bin/bench "$@" --cache-dir "$cache" ${seeds:+--seeds "$seeds"}; }
b instability --k 0,24,48,96,192,384 --output "$figures/instability.png" --json > "$out/instability-curves.json"
builtins=()
for p in identity data-order imp-rewind-0 rewind-to-init lottery-ticket reinit reinit-keep-sign init-magnitude-keep-sign \
         keep-magnitude-init-sign random-sign shuffle-layer shuffle-layer-keep-sign shuffle-filter; do
  builtins+=(-p "$p")
done
b instability --no-dense --no-ticket "${builtins[@]}" --output "$out/instability-perturbations.png" \
  --json > "$out/instability-perturbations.json"
for s in $scales; do
  b instability --no-dense --no-ticket -p gaussian-noise --param scale=$s --output "$out/instability-noise-$s.png" \
    --json > "$out/instability-gaussian-noise-$s.json"
done
[ "$copy" = 1 ] || exit 0
for folder in "$cache"/results/*/instability; do
  config=$(basename "$(dirname "$folder")")
  mkdir -p "leaderboard/results/$config"
  rm -rf "leaderboard/results/$config/instability"
  cp -r "$folder" "leaderboard/results/$config/instability"
  rm -f "leaderboard/results/$config/instability/"*.png  # figures stay beside the run
done
.venv/bin/python -m bench.report
echo "instability records in leaderboard/results/*/instability; JSON outputs and figures in $out; cache kept in $cache"
