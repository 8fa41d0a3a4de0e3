"""Wall time of the light commands, interleaved rounds (docs/performance.md, "Start-up").

Usage: .venv/bin/python scripts/startup_time.py [--rounds 5] [--base DIR] [--base-python PYTHON]
--base: a checkout (or `git archive REV bench plugins` extracted there) to time beside this one; each round
runs every command on each tree in turn, so both see the same background load. --base-python: the
interpreter for the base (a venv where the base's plugins are installed; default: this one).
Run with BENCH_LOAD_PLUGINS= to list the built-in plugins only (an installed plugin may import torch itself).
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--base", default=None)
ap.add_argument("--base-python", default=sys.executable)
args = ap.parse_args()
trees = {"this": ROOT, **({"base": Path(args.base)} if args.base else {})}
commands = {"--help": ["--help"], "presets": ["presets"], "perturbations": ["perturbations"],
            "leaderboard": ["leaderboard", "--results", str(ROOT / "leaderboard" / "results")]}
times: dict[tuple[str, str], list[float]] = {(t, c): [] for c in commands for t in trees}
for _ in range(args.rounds):
    for command, argv in commands.items():
        for tree, cwd in trees.items():  # python -m bench from the tree's root imports that tree's bench
            start = time.perf_counter()
            python = args.base_python if tree == "base" else sys.executable
            subprocess.run([python, "-m", "bench", *argv], cwd=cwd, capture_output=True, check=True)
            times[(tree, command)].append(time.perf_counter() - start)
for (tree, command), ts in times.items():
    print(f"bench {command:13} {tree:5} median {statistics.median(ts):.2f} s "
          f"(min {min(ts):.2f}, max {max(ts):.2f}, {len(ts)} runs)")
