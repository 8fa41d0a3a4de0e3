"""The leaderboard's data model: replicate statistics over stored result records, grouped and ranked.

Records are grouped by (preset, config hash, level, perturbation, parameters, perturbation seed). Each
record's drop is already paired (ticket minus perturbed accuracy of the same replicate seed), so a group's
statistic is the mean of its per-seed drops with a 95% t-interval (bench.stats.summarize). Rows are ordered
within a board (one preset, configuration, level, hardware class and estimand) by mean drop, largest first;
what the order establishes comes from paired comparisons between rows (bench.report.verdicts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from bench.errors import BenchError
from bench.plugins import BUILTIN_DIST, CONTROLS, is_control
from bench.provenance import PROTOCOL_VERSION, record_class
from bench.report import integrity, learned, verified as verification
from bench.report.instability import instability_summary, match_instability
from bench.report.labels import label, params_key, params_text, pruning_label  # noqa: F401 - named here too
from bench.report.verdicts import BoardVerdicts, RowVerdict, board_verdicts
from bench.results import Problem, Result, is_instability, load_results
from bench.stats import Summary, summarize

REFERENCE = "imp-rewind-0"  # the paper's k = 0 reference: IMP rewound to iteration 0 with its own pruning chain
NOISE_FLOOR = "data-order"  # the ticket's own start retrained on another data order: SGD noise alone
DEFAULT_MIN_SEEDS = 2  # the fewest seeds that give an interval
COMMITTED_MIN_SEEDS = 3  # what the committed leaderboard (and a submission) needs
SPARSITY_TOLERANCE = 0.05  # --sparsity matches percent remaining to one decimal


@dataclass
class Row:
    preset: str
    config_hash: str
    level: int
    percent_remaining: float
    rewind_step: int
    steps: int
    name: str
    params: dict[str, Any]
    perturbation_seed: int
    plugin: str
    distribution: str
    version: str
    seeds: tuple[int, ...]
    drop: Summary
    ticket: Summary
    perturbed: Summary
    effective_std: float  # mean over seeds
    control: bool
    sources: tuple[str, ...]
    description: str = ""  # the plugin's one-line description, when the records carry it
    pretraining: bool = False  # a pre-training entry (bench pretrain): the rewind point itself was replaced
    protocol: int = PROTOCOL_VERSION  # the lowest protocol version among the row's records
    hardware: str = ""  # the kernel class its records were trained on (hardware_class)
    dense: Summary | None = None  # the dense network of the same seeds (the same at every level)
    pruning: str = "magnitude"  # the pruning strategy that made the masks, with its parameters (records' 'pruning')
    effective_density: float | None = None  # mean over seeds, when the records carry it (bench.connectivity)
    rank: int | None = None
    verdict: RowVerdict | None = None  # what the paired comparisons of its board establish about it
    reason: str | None = None  # why the row is not ranked
    no_op: bool = False  # a record says W' was W_k on every tensor: it measures nothing, so it is not ranked
    not_learned: dict[int, str] = field(default_factory=dict)  # pre-training seeds that did not learn (report.learned)
    verified: int = 0  # how many of its files a recorded `bench verify` re-proved exactly (bench.report.verified)
    # bench instability's test-error barrier of this perturbation per seed, where instability records match
    instability: dict[int, float] = field(default_factory=dict)
    instability_setting: str = ""  # their BatchNorm mode and points, e.g. "recompute, 30 points"
    instability_k: int | None = None  # the step their copies started from

    @property
    def n(self) -> int:
        return self.drop.n

    @property
    def drops(self) -> dict[int, float]:
        """The drop per replicate seed: what paired comparisons pair on."""
        return dict(zip(self.seeds, self.drop.values))

    @property
    def label(self) -> str:
        return label(self.name, self.params, self.perturbation_seed)

    @property
    def reference(self) -> bool:
        """The paper's reference row (built in, like every control: a name alone does not make one)."""
        return self.control and self.name == REFERENCE

    def sort_key(self) -> tuple:
        return (self.name, params_key(self.params), self.perturbation_seed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank, "preset": self.preset, "config_hash": self.config_hash, "level": self.level,
            "percent_remaining": self.percent_remaining, "rewind_step": self.rewind_step, "steps": self.steps,
            "perturbation": self.name, "params": self.params, "perturbation_seed": self.perturbation_seed,
            "plugin": self.plugin, "distribution": self.distribution, "version": self.version,
            "control": self.control, "reference": self.reference, "pretraining": self.pretraining,
            "n": self.n, "mean_drop": self.drop.mean, "ci_low": self.drop.low, "ci_high": self.drop.high,
            "std_drop": self.drop.std,
            "per_seed": [{"seed": s, "drop": d, "ticket": t, "perturbed": p} for s, d, t, p in
                         zip(self.seeds, self.drop.values, self.ticket.values, self.perturbed.values)],
            "mean_ticket": self.ticket.mean, "mean_perturbed": self.perturbed.mean,
            "mean_effective_std": self.effective_std, "reason": self.reason, "files": list(self.sources),
            "description": self.description, "pruning": self.pruning, "effective_density": self.effective_density,
            "verified": self.verified,
            **({"not_learned": [{"seed": s, "reason": r} for s, r in self.not_learned.items()]}
               if self.not_learned else {}),
            **(self.verdict.as_dict() if self.verdict else {}),
            **({"instability": {"per_seed": [{"seed": k, "barrier": v} for k, v in sorted(self.instability.items())],
                                "mean_barrier": self.mean_instability, "setting": self.instability_setting}}
               if self.instability else {}),
        }

    @property
    def mean_instability(self) -> float | None:
        return _mean(list(self.instability.values())) if self.instability else None


@dataclass
class Board:
    """The ranked rows of one preset, configuration, IMP level and hardware class: only these are comparable
    (across kernel classes a seed's drop moves by as much as across seeds: docs/reproducibility.md)."""

    preset: str
    config_hash: str
    level: int
    percent_remaining: float
    rewind_step: int
    rows: list[Row]
    hardware: str = ""
    pretraining: bool = False  # a board of pre-training entries (another IMP chain and mask: another estimand)
    verdicts: BoardVerdicts | None = None

    @property
    def reference(self) -> Row | None:
        """The imp-rewind-0 row (the best ranked, should it have been run with several perturbation seeds)."""
        return next((r for r in self.rows if r.reference), None)

    @property
    def noise_floor(self) -> Row | None:
        """The data-order row: the ticket retrained on another data order, whose drop is SGD noise alone."""
        return next((r for r in self.rows if r.control and r.name == NOISE_FLOOR), None)

    @property
    def ranks(self) -> str:
        """What the board ranks, in words."""
        if self.pretraining:
            return ("pre-training entries: the rewind point W_k replaced by pre-training on another task, each with "
                    "its own IMP chain and mask, so their drops are not comparable with the mask-fixed board")
        return ("perturbations of the rewound weights W_k under the fixed IMP mask of each seed, with the "
                "harness's controls and the reference beside them (marked)")

    def as_dict(self) -> dict[str, Any]:
        out = {"preset": self.preset, "config_hash": self.config_hash, "level": self.level,
               "hardware": self.hardware, "estimand": "pretraining" if self.pretraining else "mask-fixed",
               "ranks": self.ranks,
               "percent_remaining": self.percent_remaining, "rewind_step": self.rewind_step,
               "rows": [r.as_dict() for r in self.rows]}
        if self.verdicts is not None:
            out["statistics"] = self.verdicts.as_dict()
            out["pairs"] = [{"a": self.rows[p.i].label, "b": self.rows[p.j].label, "rank_a": self.rows[p.i].rank,
                             "rank_b": self.rows[p.j].rank, **p.as_dict()} for p in self.verdicts.pairs]
        return out


@dataclass(frozen=True)
class Duplicate:
    label: str
    seed: int
    files: tuple[str, ...]  # every file that claims this seed of this row: all refused
    paths: tuple[str, ...] = ()  # the same files as found on disk (for messages to the user)

    def __str__(self) -> str:
        return (f"seed {self.seed} of {self.label} appears in {len(self.files)} different files "
                f"({', '.join(self.files)}); all are refused, none preferred: keep one of them")


@dataclass
class Leaderboard:
    boards: list[Board]
    ineligible: list[Row]
    duplicates: list[Duplicate]
    problems: list[Problem]
    files: int
    min_seeds: int
    preset: str | None = None
    sparsity: float | None = None
    # every record that passed the preset and sparsity filters, one per file (the per-seed CSV export)
    results: list[Result] = field(default_factory=list, repr=False)
    instability: list[Result] = field(default_factory=list, repr=False)  # bench instability records, filtered alike

    @property
    def rows(self) -> list[Row]:
        return [r for b in self.boards for r in b.rows]

    def unranked_reference(self, board: Board, name: str = REFERENCE) -> Row | None:
        """A control row ``name`` (default the reference) of ``board``'s preset, configuration, level and hardware
        that is not ranked."""
        return next((r for r in self.ineligible if r.control and r.name == name and (r.preset, r.config_hash, r.level,
                     r.hardware) == (board.preset, board.config_hash, board.level, board.hardware)), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "leaderboard_version": 2,
            "filters": {"preset": self.preset, "sparsity": self.sparsity, "min_seeds": self.min_seeds},
            "files": self.files,
            "boards": [b.as_dict() for b in self.boards],
            "ineligible": [r.as_dict() for r in self.ineligible],
            "duplicates": [{"perturbation": d.label, "seed": d.seed, "files": list(d.files)}
                           for d in self.duplicates],
            "problems": [{"file": p.source, "problem": p.message} for p in self.problems],
            **({"instability": [instability_summary(r) for r in self.instability]} if self.instability else {}),
        }


# ------------------------------------------------------------------------------------------ building


def matches_sparsity(percent: float, wanted: float) -> bool:
    return abs(percent - wanted) <= SPARSITY_TOLERANCE + 1e-9 or round(percent, 1) == round(wanted, 1)


def _preset_hashes() -> dict[str, str]:
    from bench.config import config_hash
    from bench.presets import PRESETS

    return {name: config_hash(p.experiment) for name, p in PRESETS.items()}


def _strategy_hash(preset: str, pruning: dict[str, Any] | None) -> str | None:
    """The hash of ``preset`` pruned by another strategy (a record's ``pruning``): each strategy has its own
    boards. None for the preset's own pruning, or an unknown preset."""
    from bench.config import config_hash
    from bench.presets import PRESETS

    if not pruning or preset not in PRESETS:
        return None
    exp = PRESETS[preset].experiment
    chosen = {"strategy": pruning["strategy"], "strategy_params": pruning["params"]}
    return config_hash(exp.with_overrides(prune=chosen))


def _joined(values: Iterable[str]) -> str:
    return ", ".join(sorted(set(values)))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _row(results: list[Result]) -> Row:
    first = results[0].data
    pert = first["perturbation"]
    recs = [r.data for r in results]
    return Row(
        preset=first["preset"], config_hash=first["config_hash"], level=first["level"],
        percent_remaining=100 * _mean([r["density"] for r in recs]),
        rewind_step=first["rewind_step"], steps=first["steps"],
        name=pert["name"], params=dict(sorted(pert["params"].items())), perturbation_seed=pert["seed"],
        plugin=_joined(r["perturbation"]["plugin"] for r in recs),
        distribution=_joined(r["perturbation"]["distribution"] for r in recs),
        version=_joined(r["perturbation"]["version"] for r in recs),
        seeds=tuple(r["seed"] for r in recs),
        drop=summarize([r["drop"] for r in recs]),
        ticket=summarize([r["accuracy"]["ticket"] for r in recs]),
        perturbed=summarize([r["accuracy"]["perturbed"] for r in recs]),
        effective_std=_mean([r["effective_std"] for r in recs]),
        control=all(is_control(r["perturbation"]["name"], r["perturbation"]["distribution"]) for r in recs),
        sources=tuple(r.source for r in results),
        description=_joined(r["perturbation"].get("description", "") for r in recs),
        pretraining=all(r.get("kind") == "pretraining" for r in recs),
        protocol=min(protocol(r) for r in recs),
        hardware=_joined(hardware_class(r) for r in recs),
        dense=summarize([r["accuracy"]["dense"] for r in recs]),
        no_op=any(r.get("no_op") for r in recs),
        not_learned=learned.not_learned(recs),
        pruning=_joined(pruning_label(r) for r in recs),
        effective_density=(_mean([r["effective_density"] for r in recs])
                           if all(r.get("effective_density") is not None for r in recs) else None),
    )


def _judge(board: Board) -> None:
    """Paired verdicts for every row (the reference is compared with only on the mask-fixed board)."""
    ref = next((i for i, r in enumerate(board.rows) if r.reference), None)
    board.verdicts = board_verdicts([r.drops for r in board.rows], None if board.pretraining else ref)
    for row, verdict in zip(board.rows, board.verdicts.rows):
        row.verdict = verdict


def hardware_class(record: dict[str, Any]) -> str:
    """The kernel class a record was trained on, from its environment (bench.provenance.hardware_class)."""
    return record_class(record)


def protocol(record: dict[str, Any]) -> int:
    """The record's protocol version; 0 for records written before protocol versions existed."""
    return record.get("protocol_version", 0)


def build(results: Iterable[Result], *, preset: str | None = None, sparsity: float | None = None,
          min_seeds: int = DEFAULT_MIN_SEEDS, any_config: bool = False,
          problems: Sequence[Problem] = (), files: int | None = None, recompute_w0: bool = False,
          verified: frozenset[str] = frozenset()) -> Leaderboard:
    """Group, summarise, filter and rank. ``any_config`` also ranks rows whose configuration is not their
    preset's (otherwise they are listed as ineligible). Records that the checks across records refuse
    (bench.report.integrity; ``recompute_w0`` adds the W_0 recomputation) are named and left out. ``verified``:
    the sha256 digests of the result files a recorded ``bench verify`` re-proved (their rows say so)."""
    results = list(results)
    instability = [r for r in results if is_instability(r.data)
                   and (preset is None or r.data["preset"] == preset)
                   and (sparsity is None or matches_sparsity(100 * r.data["density"], sparsity))]
    results = [r for r in results if not is_instability(r.data)]
    problems = list(problems)
    files = len(results) + len(problems) if files is None else files
    checked = integrity.check(results, recompute_w0=recompute_w0)
    problems += checked.problems
    duplicates = []
    for members in checked.duplicates:
        d, pert = members[0].data, members[0].data["perturbation"]
        duplicates.append(Duplicate(label(pert["name"], pert["params"], pert["seed"]), d["seed"],
                                    tuple(m.source for m in members), tuple(str(m.path) for m in members)))
    chosen = [r for r in checked.kept
              if (preset is None or r.data["preset"] == preset)
              and (sparsity is None or matches_sparsity(100 * r.data["density"], sparsity))]
    groups: dict[tuple, list[Result]] = {}
    for res in chosen:
        d, p = res.data, res.data["perturbation"]
        key = (d["preset"], d["config_hash"], d["level"], p["name"], params_key(p["params"]), p["seed"],
               protocol(d), hardware_class(d))  # another protocol's or class's results: another row
        groups.setdefault(key, []).append(res)
    rows = []
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda r: r.data["seed"])  # one record per seed: duplicates are refused
        row = _row(members)
        if verified:
            row.verified = sum(verification.sha256_of(m.path) in verified for m in members)
        rows.append(row)
    match_instability(rows, instability)

    hashes = _preset_hashes()
    # a result pruned by another strategy is the preset's experiment too, on boards of its own (its hash)
    strategy_hashes = {res.data["config_hash"]: _strategy_hash(res.data["preset"], res.data.get("pruning"))
                       for res in chosen}
    ranked: dict[tuple, list[Row]] = {}
    ineligible = []
    for row in rows:
        if not any_config and row.preset not in hashes:
            row.reason = f"preset '{row.preset}' is not one this bench defines"
        elif not any_config and row.config_hash not in (hashes[row.preset], strategy_hashes.get(row.config_hash)):
            row.reason = (f"configuration {row.config_hash} differs from preset '{row.preset}' "
                          f"({hashes[row.preset]})")
        elif row.protocol != PROTOCOL_VERSION:
            row.reason = (f"protocol {row.protocol}, but this bench computes protocol {PROTOCOL_VERSION}: results of "
                          f"different protocols are not comparable; rerun them with this version")
        elif row.no_op:
            row.reason = "no-op: its perturbed weights equal W_k on every tensor, so it retrains the ticket"
        elif row.not_learned:
            row.reason = learned.reason(row.not_learned)
        elif row.n < min_seeds:
            row.reason = f"{row.n} seed{'s' if row.n != 1 else ''}, fewer than the minimum {min_seeds}"
        if row.reason:
            ineligible.append(row)
        else:
            # pre-training entries use another chain and mask: a board of their own
            ranked.setdefault((row.preset, row.level, row.config_hash, row.hardware, row.pretraining), []).append(row)

    boards = []
    for key in sorted(ranked):
        members = sorted(ranked[key], key=lambda r: (-r.drop.mean, r.sort_key()))
        for i, row in enumerate(members, 1):
            row.rank = i
        first = members[0]
        board = Board(first.preset, first.config_hash, first.level, _mean([r.percent_remaining for r in members]),
                      first.rewind_step, members, first.hardware, first.pretraining)
        _judge(board)
        boards.append(board)
    ineligible.sort(key=lambda r: (r.preset, r.level, r.config_hash, r.sort_key()))
    return Leaderboard(boards, ineligible, duplicates, list(problems), files, min_seeds, preset, sparsity, chosen,
                       instability)


def from_folders(folders: Sequence[str | Path], *, strict: bool = False, missing_ok: bool = False,
                 **options: Any) -> Leaderboard:
    """The leaderboard of every result file under ``folders``. ``strict`` (``--strict``, ``python -m
    bench.report``) also recomputes every W_0, and refuses to give a leaderboard at all if any file is
    invalid, refused or a duplicate: one BenchError with one line per file."""
    loaded = load_results(folders, missing_ok=missing_ok)
    marks, unreadable = verification.read(loaded.folders)
    lb = build(loaded.results, problems=[*loaded.problems, *unreadable], files=loaded.files, recompute_w0=strict,
               verified=marks, **options)
    if strict:
        lines = [str(p) for p in lb.problems] + [f"{path}: {d}" for d in lb.duplicates for path in d.paths]
        if lines:
            raise BenchError(f"{len(lines)} invalid result file(s), refused because of --strict (one per line):\n"
                             + "\n".join(lines))
    return lb
