"""``bench run`` without the command line: perturb the rewound weights, retrain, store one result per seed."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

from bench import paths
from bench.config import Experiment
from bench.errors import BenchError
from bench.execute import Env, run_stage
from bench.experiments.parallel import train_groups_side_by_side
from bench.experiments.records import Outcome, base_record, plugin_fields, plugin_trace, store
from bench.experiments.setup import RunOptions, prepare
from bench.perturbation import resolve_params, start_point
from bench.plugins import Plugins, Registered, default_plugins, is_control
from bench.presets import Preset
from bench.stages import Replicate, train_chain, training_groups


def run_perturbation(preset: Preset, perturbation: str, raw_params: dict[str, str], options: RunOptions,
                     **kwargs: Any) -> Outcome:
    """One perturbation end to end (see :func:`run_perturbations`)."""
    return run_perturbations(preset, [(perturbation, raw_params)], options, **kwargs)[0]


def run_perturbations(preset: Preset, requests: list[tuple[str, dict[str, str]]], options: RunOptions, *,
                      seeds: int | Sequence[int], level: int | None = None, sparsity: float | None = None,
                      perturbation_seed: int = 0, plugins: Plugins | None = None,
                      experiment: Experiment | None = None) -> list[Outcome]:
    """Several perturbations at one level, each over ``seeds`` replicates, sharing trunk and IMP levels.

    Each stage trains its replicates together as fused groups of up to the group size (the preset's unless
    ``options.group_size`` says otherwise); with ``options.workers`` > 1 on a CPU, the groups train side by
    side, one process each (bench.experiments.parallel), to the same numbers.
    """
    plugins = plugins or default_plugins()
    chosen = []
    for name, raw in requests:
        registered = plugins.perturbation(name)
        chosen.append((registered, resolve_params(registered.perturbation, raw)))
    setup = prepare(preset, options, seeds=seeds, level=level, sparsity=sparsity, experiment=experiment)
    exp, env, lvl = setup.experiment, setup.env, setup.level
    if options.tracking is not None:  # hyperparameters once, before anything trains
        options.tracking.begin(preset, setup, chosen, perturbation_seed)

    def train(group: list[int], on: Env) -> None:
        _train([Replicate(exp, seed, on) for seed in group], chosen, lvl, on, perturbation_seed)

    train_groups_side_by_side(train, setup.seeds, env, options.workers)
    reps = [Replicate(exp, seed, env) for seed in setup.seeds]
    _train(reps, chosen, lvl, env, perturbation_seed)  # after parallel groups: reads what they trained
    outcomes = []
    for registered, params in chosen:
        out = Outcome(preset.name, exp, lvl, setup.percent_remaining, registered.perturbation.name,
                      registered.plugin, params, events=env.events)
        for rep in reps:
            record = _record(preset, rep, registered, params, lvl, perturbation_seed)
            record["plugins"] = plugin_trace(plugins)
            out.records.append(store(paths.result_file(paths.results_dir(options.cache), record), record))
        if any(r.get("no_op") for r in out.records):
            warnings.warn(f"Perturbation '{out.name}' with {params or 'its defaults'} left W_k unchanged on every "
                          f"tensor: a no-op. Its results are marked no_op and not ranked.", stacklevel=2)
        outcomes.append(out)
    if options.tracking is not None:
        options.tracking.results(outcomes)
    return outcomes


def _train(reps: list[Replicate], chosen: list[tuple[Registered, dict[str, Any]]], lvl: int, env: Env,
           perturbation_seed: int) -> None:
    """Every stage the records need, stage by stage across ``reps`` (each stage's replicates train together
    as fused groups of up to ``env.group_size``)."""
    train_chain(reps, lvl, env)
    if any(start_point(registered.perturbation) == "imp-from-init" for registered, _ in chosen):
        train_chain(reps, lvl, env, rewind=0)  # the paper's reference: IMP rewound to 0, its own chain
    # Each perturbation's branches train together like its tickets did (same seeds, same group), so a
    # ticket and its branch follow the same numerical path; early training amplifies any rounding
    # difference (docs/harness.md), and then identity would no longer drop exactly 0.
    for registered, params in chosen:
        for group in training_groups(reps, lvl):
            run_stage(group, lambda rep: rep.branch_job(registered, params, lvl, perturbation_seed), env)


def _record(preset: Preset, rep: Replicate, registered: Registered, params: dict[str, Any], lvl: int,
            perturbation_seed: int) -> dict:
    """The stored result of one (configuration, perturbation, parameters, seed)."""
    dense, ticket = rep.trunk_record(), rep.record(lvl)
    branch = rep.branch_record(registered.perturbation.name, params, lvl, perturbation_seed)
    validation = {"dense": dense.get("val_accuracy"), "ticket": ticket.get("val_accuracy"),
                  "perturbed": branch.get("val_accuracy")}
    groups = {"trunk": dense.get("trained_with_seeds"), "ticket": ticket.get("trained_with_seeds"),
              "branch": branch.get("trained_with_seeds")}
    if start_point(registered.perturbation) != "imp-from-init":  # that one pairs with its own chain
        _check_pairing(rep, registered.perturbation.name, lvl, ticket, branch)
    return base_record(preset, rep, lvl) | {
        "perturbation": {
            "name": registered.perturbation.name, "description": registered.perturbation.description,
            "params": params, "seed": perturbation_seed, "generator_seed": branch["generator_seed"],
            # another data order than the ticket's (the data-order control): the seed it was trained with
            **({"data_seed": branch["data_seed"]} if branch.get("data_seed") is not None else {}),
            **plugin_fields(registered.plugin),
        },
        "accuracy": {"dense": dense["accuracy"], "ticket": ticket["accuracy"], "perturbed": branch["accuracy"]},
        "drop": ticket["accuracy"] - branch["accuracy"],
        # chosen on validation, reported on test: a record carries both (None where the data has no validation split)
        **({"validation_accuracy": validation} if None not in validation.values() else {}),
        "effective_std": branch["effective_std"],
        "relative_change": branch["relative_change"],
        # a non-control whose W' is W_k: it retrains the ticket (the leaderboard lists it, unranked)
        **({"no_op": True} if branch.get("no_op") and not is_control(registered.perturbation.name,
                                                                        registered.plugin.dist) else {}),
        "timings": {"trunk_s": dense["seconds"], "ticket_s": ticket["seconds"], "branch_s": branch["seconds"],
                    "replicas_trained_together": branch.get("replicas_trained_together", 1)},
    } | ({"trained_with_seeds": groups} if None not in groups.values() else {})  # absent in older caches


def _check_pairing(rep: Replicate, name: str, lvl: int, ticket: dict, branch: dict) -> None:
    """A branch pairs only with the ticket it was trained beside: in its seed group, from its weights."""
    where = f"{name} at level {lvl}, seed {rep.seed}"
    fix = "run `bench cache doctor --fix` (it invalidates the branch) and rerun"
    if None not in (ticket.get("trained_with_seeds"), branch.get("trained_with_seeds")) and \
            ticket["trained_with_seeds"] != branch["trained_with_seeds"]:
        raise BenchError(f"{where}: the branch was trained with seeds {branch['trained_with_seeds']}, its ticket with "
                         f"seeds {ticket['trained_with_seeds']}: they followed different rounding paths; {fix}.")
    key = (rep.ticket_dir(lvl) / paths.FINAL).relative_to(rep.root).as_posix()
    made_from, ticket_file = (branch.get("inputs") or {}).get(key), (ticket.get("files") or {}).get(paths.FINAL)
    if None not in (made_from, ticket_file) and made_from != ticket_file:
        raise BenchError(f"{where}: the branch was trained beside a ticket with other weights (fingerprint "
                         f"{made_from[:12]}, the ticket's now {ticket_file[:12]}); {fix}.")
