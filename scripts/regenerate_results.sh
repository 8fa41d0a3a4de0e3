#!/usr/bin/env bash
# Regenerate every committed result and measured figure from the current code, then the tables.
#   scripts/regenerate_results.sh OUT_DIR [CACHE_DIR]
# Run it from a clean, committed tree (every result records git_dirty; tests/test_results_provenance.py
# refuses dirty ones), on an idle machine of the class docs/reproducibility.md names.
# 1. The README's default command (6 seeds) from an empty cache, timed (OUT_DIR/times.txt).
# 2. leaderboard/results: the default preset on seeds 0-23 (never used by the preset's search,
#    docs/default-preset.md) at the default level: every built-in perturbation and control, the noise floor,
#    the noise scales and the pre-training entries. Seeds 0-5 are the README run's (the same seed groups, so
#    the same numbers).
# 3. docs/early-phase.md's rewind curve (a chain per k) and trace, into docs/figures, on seeds 0-5 (3 for the trace).
# 4. The instability results (scripts/instability_default.sh, seeds 0-5), beside the drops on the board.
# Every record is written before any tracked file changes, so all of them record git_dirty false.
# 5. leaderboard/smoke-<cpu model>: the `smoke` sample CI re-runs exactly on a machine of this class.
# The 24-seed regeneration's phases and their times: docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?output folder}; cache=${2:-$out/cache}
seeds=${BOARD_SEEDS:-24}   # the committed boards
few=${FIGURE_SEEDS:-6}     # figures and instability (the README run's seeds)
mkdir -p "$out" docs/figures
export CI=1  # no progress bars in logs
b() { .venv/bin/bench "$@" --cache-dir "$cache"; }
t() { local label=$1; shift; local s=$SECONDS; "$@"; echo "$label: $((SECONDS - s)) s" >> "$out/times.txt"; }
: > "$out/times.txt"
start=$SECONDS
{ /usr/bin/time -f "default run (empty cache, shuffle-layer, default seeds): %e s wall, %M KB peak RSS" \
    .venv/bin/bench run --perturbation shuffle-layer --cache-dir "$cache" --json > "$out/shuffle-layer.json"; } 2>> "$out/times.txt"
{ /usr/bin/time -f "same command again (cached): %e s wall" \
    .venv/bin/bench run --perturbation shuffle-layer --cache-dir "$cache" --json > /dev/null; } 2>> "$out/times.txt"
{ /usr/bin/time -f "another perturbation (reinit, trunk and levels cached): %e s wall" \
    .venv/bin/bench run --perturbation reinit --cache-dir "$cache" --json > "$out/reinit.json"; } 2>> "$out/times.txt"
board=()
for p in identity data-order imp-rewind-0 rewind-to-init lottery-ticket reinit reinit-keep-sign \
         init-magnitude-keep-sign keep-magnitude-init-sign random-sign shuffle-layer shuffle-layer-keep-sign \
         shuffle-filter; do
  board+=(-p "$p")
done
# one command for the whole board: each seed group trains its trunk, chains and every branch in one process
t "board, $seeds seeds" b run "${board[@]}" --seeds "$seeds" --workers 2 --json > "$out/board.json"
for s in 0.25 0.5 1 2 4; do
  t "gaussian-noise scale=$s, $seeds seeds" b run -p gaussian-noise --param scale=$s --seeds "$seeds" --workers 2 \
    --json > "$out/gaussian-noise-$s.json"
done
for task in random-labels rotation blur blur-rotation; do
  t "pretrain $task, $seeds seeds" b pretrain --task "$task" --seeds "$seeds" --workers 2 --json > "$out/pretrain-$task.json"
done
# figures are written outside the tree until every record exists: a tracked file changed mid-run would make
# the later records say git_dirty
figs=$out/figures; mkdir -p "$figs"
t "rewind curve, $few seeds" b rewind-curve --k 0,24,48,96,192,384 --seeds "$few" --workers 2 \
  --output "$figs/rewind-curve.png" --json > "$out/rewind-curve.json"
t "trace, 3 seeds" b trace --seeds 3 --output-dir "$figs/trace" --json > "$out/trace.json"
t "instability, $few seeds" env FIGURES="$figs" COPY=0 scripts/instability_default.sh "$out/instability" "$cache" "$few"
t "smoke sample" scripts/smoke_sample.sh "$cache/smoke"  # the CI sample of this machine's class (the last record)
rm -rf leaderboard/results
cp -r "$cache/results" leaderboard/results
find leaderboard/results -name "*.png" -delete  # figures stay beside the run
cp "$figs/rewind-curve.png" "$figs/instability.png" docs/figures/
cp -r "$figs/trace/." docs/figures/trace/
.venv/bin/python -m bench.report
echo "total: $((SECONDS - start)) s" >> "$out/times.txt"
echo "results in leaderboard/results and leaderboard/smoke-*; JSON outputs and times in $out; cache kept in $cache"
