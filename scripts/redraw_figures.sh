#!/usr/bin/env bash
# The committed leaderboard figures (docs/figures), redrawn from the committed results; no training.
# Run from the repository root: bash scripts/redraw_figures.sh
set -euo pipefail
b() { "${BENCH:-bench}" plot --results leaderboard/results --min-seeds 3 "$@"; }
b --output docs/figures/leaderboard.png
b --output docs/figures/leaderboard.svg
b --output docs/figures/leaderboard.pdf   # paper style: one journal column
b --sweep gaussian-noise --output docs/figures/noise-sweep.png
