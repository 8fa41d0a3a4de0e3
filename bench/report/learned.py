"""Whether a pre-training entry's pre-trained network learned: a seed that did not is flagged, and its row is
not ranked (an entry measured from a broken start measures the break, not pre-training).

A seed did not learn when either

* its pre-training-task accuracy is not above chance: below the best constant prediction's accuracy on the
  same labels (``task_chance``) plus ``TASK_SIGMAS`` binomial standard errors of that chance level over the
  ``task_examples`` it was measured on (one-sided p of about 0.001 for a network that learned nothing); or
* its dense network after pre-training ends more than ``DENSE_SHORTFALL`` points below the normal dense
  network of the same seed, on validation accuracy where the record has it (test accuracy otherwise, as in
  records written before pre-training records carried validation accuracy). Dense networks of different seeds
  differ by about one point on the default preset, a collapse to a constant prediction by about 85.

Records written before the task accuracy was recorded are judged by the second test alone.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

TASK_SIGMAS = 3.0
DENSE_SHORTFALL = 10.0  # accuracy points


def task_threshold(chance: float, examples: int) -> float:
    """The task accuracy (percent) a seed must exceed to count as having learned its pre-training task."""
    p = chance / 100
    return chance + TASK_SIGMAS * 100 * math.sqrt(p * (1 - p) / examples)


def seed_problem(record: dict[str, Any]) -> str | None:
    """Why this pre-training record's pre-trained network did not learn, or None (also for other records)."""
    if record.get("kind") != "pretraining":
        return None
    pre, problems = record.get("pretraining") or {}, []
    if all(isinstance(pre.get(k), (int, float)) for k in ("task_accuracy", "task_chance", "task_examples")):
        limit = task_threshold(pre["task_chance"], int(pre["task_examples"]))
        if pre["task_accuracy"] <= limit:
            problems.append(f"pre-training-task accuracy {pre['task_accuracy']:.1f}% is at chance "
                            f"({pre['task_chance']:.1f}%, threshold {limit:.1f}%)")
    val = record.get("validation_accuracy") or {}
    split, acc = ("validation", val) if "pretrained_dense" in val else ("test", record["accuracy"])
    if "pretrained_dense" in acc:
        short = acc["dense"] - acc["pretrained_dense"]
        if short > DENSE_SHORTFALL:
            problems.append(f"dense after pre-training {acc['pretrained_dense']:.1f}% is {short:.1f} points below "
                            f"dense ({split}; more than {DENSE_SHORTFALL:g})")
    return " and ".join(problems) or None


def not_learned(records: Iterable[dict[str, Any]]) -> dict[int, str]:
    """The seeds whose pre-trained network did not learn, with the reason."""
    found = {r["seed"]: seed_problem(r) for r in records}
    return {seed: why for seed, why in sorted(found.items()) if why}


def reason(flagged: dict[int, str]) -> str:
    """The row's reason for not being ranked, seed by seed."""
    return "pre-trained network did not learn: " + "; ".join(f"seed {s}: {why}" for s, why in flagged.items())
