"""What a stored result may ask ``bench verify`` to re-run, checked before anything trains.

A result file names its own configuration, level and seed group, and ``bench verify`` re-runs exactly that, so
a forged file could ask for 10^9 iterations or a model of 10^9 channels. A result is re-run only when its
configuration is its preset's experiment, or that experiment with documented overrides (the fields a sweep's
``[overrides]`` or a changed preset may set: every field except the dataset and the model family, which make
it another preset) whose sizes stay within bounds of the preset's own: each size (examples, batch, widths,
blocks, IMP levels, iterations) at most SIZE_FACTOR times the preset's, and the whole training work
(iterations x batch x parameters) at most WORK_FACTOR times. docs/leaderboard.md lists them.
"""

from __future__ import annotations

from typing import Any, Sequence

from bench.config import Experiment, check_schedule, config_hash, parse_step, validate
from bench.errors import BenchError

FIXED = (("data", "dataset"), ("model", "name"))  # another value is another preset, not an override
SIZE_FACTOR = 4  # each size at most this many times the preset's own
WORK_FACTOR = 4  # iterations x batch x parameters at most this many times the preset's own
MAX_GROUP = 64  # seeds trained together in one seed group (bench run's groups are 16 at most by default)


def _refuse(preset: str, what: str) -> BenchError:
    return BenchError(f"Refusing to re-run a result of preset '{preset}': {what}; bench verify re-runs a preset's "
                      f"experiment, or one changed within the bounds in docs/leaderboard.md.")


def _sizes(exp: Experiment, per_epoch: int) -> dict[str, int]:
    return {
        "data.train_examples": exp.data.train_examples, "data.test_examples": exp.data.test_examples,
        "data.validation_examples": exp.data.validation_examples, "train.batch_size": exp.train.batch_size,
        "model.widths (largest)": max(exp.model.widths, default=0),
        "model.blocks_per_stage": exp.model.blocks_per_stage, "prune.levels": exp.prune.levels,
        "train.steps (iterations)": parse_step(exp.train.steps, per_epoch),
    }


def _per_epoch(exp: Experiment) -> int:
    from bench.datasets import dataset_info

    return exp.iterations_per_epoch(dataset_info(exp.data.dataset).train_size(exp.data))


def _work(exp: Experiment, level: int) -> int:
    """Replicate-iterations to train up to ``level`` (the trunk, then each level from k) x batch x parameters."""
    from bench import models
    from bench.datasets import dataset_info

    info = dataset_info(exp.data.dataset)
    per_epoch = _per_epoch(exp)
    T, k = parse_step(exp.train.steps, per_epoch), parse_step(exp.rewind, per_epoch)
    params = sum(p.numel() for p in models.build_model(exp.model, info.in_channels, info.num_classes).parameters())
    return (T + level * (T - k)) * exp.train.batch_size * params


def check_experiment(preset_name: str, exp: Experiment, level: int) -> None:
    """Refuse (one line) a configuration that is not ``preset_name``'s experiment under bounded overrides."""
    from bench.presets import get_preset

    base = get_preset(preset_name).experiment
    if config_hash(exp) == config_hash(base):
        return
    for section, name in FIXED:
        ours, theirs = getattr(getattr(exp, section), name), getattr(getattr(base, section), name)
        if ours != theirs:
            raise _refuse(preset_name, f"{section}.{name} is {ours!r}, not the preset's {theirs!r} (another preset)")
    try:
        validate(exp)
        per_epoch = _per_epoch(exp)
        sizes = _sizes(exp, per_epoch)
        for step in (exp.rewind, exp.train.warmup, *exp.train.milestones):
            parse_step(step, per_epoch)
        check_schedule(sizes["train.steps (iterations)"], parse_step(exp.rewind, per_epoch), per_epoch)
    except (BenchError, TypeError, ValueError) as exc:
        raise _refuse(preset_name, f"its configuration cannot be run ({exc})") from None
    bounds = _sizes(base, _per_epoch(base))
    # a preset without validation examples still allows as many as it has test examples
    bounds["data.validation_examples"] = max(bounds["data.validation_examples"], bounds["data.test_examples"])
    for key, value in sizes.items():
        if not 0 <= value <= SIZE_FACTOR * bounds[key]:
            raise _refuse(preset_name, f"{key} is {value:,}, outside 0..{SIZE_FACTOR * bounds[key]:,} "
                                       f"({SIZE_FACTOR}x the preset's {bounds[key]:,})")
    if len(exp.model.widths) > SIZE_FACTOR * len(base.model.widths):
        raise _refuse(preset_name, f"model.widths has {len(exp.model.widths)} stages, over {SIZE_FACTOR}x the "
                                   f"preset's {len(base.model.widths)}")
    ratio = _work(exp, level) / _work(base, level)
    if ratio > WORK_FACTOR:
        raise _refuse(preset_name, f"its training work (iterations x batch x parameters) is {ratio:.1f}x the "
                                   f"preset's at level {level}, over {WORK_FACTOR}x")


def check_group(record: dict[str, Any]) -> list[int]:
    """The seed group a result's ticket was trained in (the group its re-run trains), bounded."""
    seed = record["seed"]
    group: Sequence[Any] = (record.get("trained_with_seeds") or {}).get("ticket") or [seed]
    if (len(group) > MAX_GROUP or seed not in group or len(set(group)) != len(group)
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in group)):
        shown = group if len(group) <= 8 else f"{len(group)} seeds"
        raise BenchError(f"Refusing to re-run seed {seed} of preset '{record['preset']}': its seed group "
                         f"(trained_with_seeds.ticket: {shown}) must hold its seed, once each, at most {MAX_GROUP} "
                         f"seeds.")
    return list(group)


def check(record: dict[str, Any], experiment: Experiment) -> None:
    """Everything a re-run of ``record`` would train is within bounds, before anything trains."""
    check_group(record)
    level = record["level"]
    if not 0 <= level <= experiment.prune.levels:
        raise _refuse(record["preset"], f"level {level} is not one of its IMP levels 0..{experiment.prune.levels}")
    check_experiment(record["preset"], experiment, level)
