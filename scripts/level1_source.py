"""How much it matters which dense network level 1 prunes (issue 21, docs/paper-recipe.md).

For a preset (default ``mnist1d-resnet``, whose ``prune.level1_prunes`` is ``trunk``) and the given seeds,
trains the trunk, the level-0 ticket (W_k retrained k -> T with a fresh optimizer: OpenLTH's level 0 with
rewinding) and level 1 of the preset's chain (which prunes the trunk), then level 1 as
``prune.level1_prunes = "level-0"`` makes it: the level-0 ticket's end weights pruned by the same rule, the
survivors put back at W_k and trained k -> T in the same seed group. That is the computation the
``level-0`` chain does (tests/test_level1_prunes.py checks its mask rule); reusing the preset's own trunk
and level-0 ticket saves one trunk per seed. Prints per seed the overlap of the two level-1 masks
(surviving weights shared, as a fraction of the survivors) and the validation accuracies. The test split
is never evaluated.

    .venv/bin/python -P scripts/level1_source.py --cache-dir /tmp/level1-cache --seeds 4000 4001 4002
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from bench import paths
from bench.cache import load_tensors, save_tensors
from bench.data import load_dataset
from bench.execute import Job, execute
from bench.presets import get_preset
from bench.pruning import level_masks, ones_like, report
from bench.stages import Env, Replicate, train_chain

LABEL = "IMP level 1 pruned from the level-0 ticket"


def overlap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    both = sum(int((a[n].bool() & b[n].bool()).sum()) for n in a)
    return both / sum(int(a[n].sum()) for n in a)


def level1_from_level0(rep: Replicate) -> Job | None:
    """Level 1 of the ``level-0`` chain, in a folder of its own beside the preset's stages."""
    folder = rep.root / "level-1-from-level-0"
    if rep.cached_record(folder, LABEL) is not None:
        return None
    exp = replace(rep.exp, prune=replace(rep.exp.prune, level1_prunes="level-0"))
    dense = rep.prunable(load_tensors(rep.ticket_dir(0) / paths.FINAL))
    if not (folder / paths.MASK).exists():
        folder.mkdir(parents=True, exist_ok=True)
        save_tensors(folder / paths.MASK, level_masks(exp, dense, ones_like(dense), 1, rep.seed))
    masks = load_tensors(folder / paths.MASK, rep.env.device)
    fields = {"stage": "level", "level": 1, "rewind_step": rep.k, "sparsity": report(masks)}
    return Job(rep, LABEL, folder, rep.k, rep.trunk_state(rep.k), masks, rep.finisher(folder, LABEL, fields))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="mnist1d-resnet")
    parser.add_argument("--seeds", type=int, nargs="+", default=[4000, 4001, 4002])
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: <cache-dir>/data")
    args = parser.parse_args()
    preset = get_preset(args.preset)
    exp = preset.experiment
    device = torch.device("cpu")
    env = Env(cache=args.cache_dir, device=device, group_size=preset.group_size, evaluate_test=False,
              data=load_dataset(exp.data, args.data_dir or args.cache_dir / "data", device))
    reps = [Replicate(exp, s, env) for s in args.seeds]
    train_chain(reps, 0, env)  # the trunk and the level-0 ticket
    train_chain(reps, 1, env)  # level 1 pruned from the trunk
    execute([level1_from_level0(rep) for rep in reps], env)
    print(f"{args.preset}, level 1, validation accuracy (%); overlap = level-1 survivors shared / survivors")
    print("seed  trunk (dense)  level-0 ticket  mask overlap  L1 from trunk  L1 from level-0")
    for rep in reps:
        folder = rep.root / "level-1-from-level-0"
        new = rep.cached_record(folder, LABEL)
        assert new is not None
        print(f"{rep.seed:4d}  {rep.trunk_record()['val_accuracy']:13.2f}  "
              f"{rep.record(0)['val_accuracy']:14.2f}  "
              f"{overlap(rep.masks(1), load_tensors(folder / paths.MASK)):12.4f}  "
              f"{rep.record(1)['val_accuracy']:13.2f}  {new['val_accuracy']:15.2f}")


if __name__ == "__main__":
    main()
