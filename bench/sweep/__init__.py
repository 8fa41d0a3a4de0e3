"""``bench sweep``: a grid from a TOML file, expanded into units of the cached stage graph, run by an executor.

A **tickets** unit trains the dense trunk and the IMP levels up to the highest level the sweep needs, for one
experiment and one seed group (the group's seeds train together, as ``bench run`` trains them). A
**branches** unit trains one perturbation (one point of its parameter grid) at one level for the same seed
group and depends on its tickets unit. Keeping a ticket and its branches in one seed group keeps them on
one rounding path, so pairing stays exact (identity drops exactly 0; docs/harness.md).

The modules, in the order a sweep goes through them: ``file`` reads and validates the sweep file; ``plan``
expands it into frozen, picklable :class:`Unit` s, marks what is cached and estimates the rest; an executor
runs the units, each through :func:`run_unit` (``worker``) in a worker process: a local process pool
(``local``) or SLURM jobs through submitit (``slurm``, imported only when asked for: it needs the optional
``slurm`` extra). Every unit only calls the existing harness, so a unit whose stages are cached trains
nothing, and a killed unit resumes from its stage checkpoints.
"""

from bench.sweep.file import Sweep, load_sweep
from bench.sweep.local import run_local
from bench.sweep.plan import (SECONDS_PER_ITERATION, Placement, Report, Unit, counts, fmt_hours, plan, prepare_units,
                              results_of, summary)
from bench.sweep.worker import run_unit

__all__ = ["Sweep", "load_sweep", "Unit", "Placement", "plan", "counts", "fmt_hours", "SECONDS_PER_ITERATION",
           "prepare_units", "Report", "summary", "results_of", "run_unit", "run_local"]
