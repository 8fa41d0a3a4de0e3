"""Issue 26, items 1, 2 and 6: a damaged cache heals to the same numbers, bit for bit, or refuses with the reason.

One smoke cache (2 seeds, identity and shuffle-layer at level 2, seeds trained as one group) is trained once;
each test damages a copy of it and reruns."""

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bench import paths
from bench.cache import save_json, save_tensors
from bench.cache_doctor import diagnose, fix
from bench.cli import cli
from bench.config import config_hash
from bench.errors import BenchError
from bench.execute import execute
from bench.experiments.perturb import run_perturbations
from bench.experiments.setup import RunOptions, prepare
from bench.presets import get_preset
from bench.provenance import fingerprint
from bench.stages import Replicate

PRESET = get_preset("smoke")
HASH = config_hash(PRESET.experiment)


def run(cache: Path, data_dir: Path) -> dict:
    """identity and shuffle-layer on seeds 0, 1: every result's accuracies, drop and fingerprints."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # what was moved aside or recomputed: asserted where it matters
        outcomes = run_perturbations(PRESET, [("identity", {}), ("shuffle-layer", {})],
                                     RunOptions(cache=cache, data_dir=data_dir), seeds=2)
    return {(o.name, r["seed"]): (r["accuracy"], r["drop"], r["fingerprints"]) for o in outcomes for r in o.records}


def stage(cache: Path, seed: int, name: str) -> Path:
    return paths.replicate_dir(cache, HASH, seed) / name


def results(cache: Path) -> dict:
    return {p.relative_to(cache): p.read_bytes() for p in sorted((cache / "results").rglob("*.json"))}


def file_fingerprint(path: Path) -> str:
    return fingerprint(torch.load(path, weights_only=True))


def record(folder: Path) -> dict:
    return json.loads((folder / paths.DONE).read_text())


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, data_dir):
    cache = tmp_path_factory.mktemp("baseline")
    numbers = run(cache, data_dir)
    assert record(stage(cache, 1, "level-2"))["trained_with_seeds"] == [0, 1]
    return cache, numbers, results(cache)


@pytest.fixture
def cache(baseline, tmp_path):
    copy = tmp_path / "cache"
    shutil.copytree(baseline[0], copy, symlinks=True)
    return copy


def assert_unchanged(cache, baseline, data_dir):
    assert run(cache, data_dir) == baseline[1]
    assert results(cache) == baseline[2]  # the result files too, byte for byte


# -- 1. recovery in the recorded seed group -----------------------------------------------------------
@pytest.mark.parametrize("where", ["trunk", "level-1", "level-2", "level-2/branch"])
@pytest.mark.parametrize("damage", ["corrupt", "deleted"])
def test_a_damaged_or_deleted_record_is_recomputed_in_its_seed_group(cache, baseline, data_dir, where, damage):
    folder = stage(cache, 1, where)
    if where.endswith("branch"):
        folder = next(folder.glob("shuffle-layer-*"))
    if damage == "corrupt":
        (folder / paths.DONE).write_text("{")
    else:
        (folder / paths.DONE).unlink()
    assert_unchanged(cache, baseline, data_dir)
    assert record(folder)["trained_with_seeds"] == [0, 1]


def test_swapped_stage_files_are_recomputed_not_paired(cache, baseline, data_dir):
    a, b = stage(cache, 0, "trunk") / paths.WK, stage(cache, 1, "trunk") / paths.WK
    data = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(data)
    assert_unchanged(cache, baseline, data_dir)


@pytest.mark.parametrize("name", [paths.W0, paths.WK, paths.FINAL, "level-1/" + paths.FINAL,
                                  "level-2/" + paths.MASK, "level-2/" + paths.FINAL])
def test_a_deleted_or_corrupt_stage_file_heals_to_the_same_numbers(cache, baseline, data_dir, name):
    path = stage(cache, 0, name if "/" in name else "trunk/" + name)
    original = baseline[0] / path.relative_to(cache)
    path.write_bytes(b"garbage")
    assert [f.kind for f in diagnose(cache).findings] == ["corrupt-file"]
    assert_unchanged(cache, baseline, data_dir)
    assert file_fingerprint(path) == file_fingerprint(original)  # healed, even where nothing read it
    path.unlink()
    assert "missing-file" in [f.kind for f in diagnose(cache).findings]  # beside the record moved aside above
    assert_unchanged(cache, baseline, data_dir)
    assert file_fingerprint(path) == file_fingerprint(original)


@pytest.mark.parametrize("where,field,value", [("trunk", "seconds", "1 s"), ("level-2", "trained_with_seeds", [5]),
                                               ("level-2/branch", "effective_std", "big"),
                                               ("level-2/branch", "ticket_accuracy", None)])
def test_a_bad_record_field_is_recomputed_in_its_group(cache, baseline, data_dir, where, field, value):
    folder = stage(cache, 1, where)
    if where.endswith("branch"):
        folder = next(folder.glob("shuffle-layer-*"))
    save_json(folder / paths.DONE, record(folder) | {field: value})
    assert_unchanged(cache, baseline, data_dir)


def test_a_result_is_never_rewritten_with_other_evidence(cache, baseline, data_dir):
    # tickets retrained alone, as an old main's recovery left them: the result files keep what they proved
    for seed in (0, 1):
        shutil.rmtree(stage(cache, seed, "level-2"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        setup = prepare(PRESET, RunOptions(cache=cache, data_dir=data_dir), seeds=[1])
        Replicate(setup.experiment, 1, setup.env).level(2)
    with pytest.raises(BenchError, match="seed-0.json holds other .*fingerprints.*The result was kept"):
        run(cache, data_dir)
    assert results(cache) == baseline[2]


def test_a_branch_from_another_group_than_its_ticket_is_refused_and_doctor_mends_it(cache, baseline, data_dir):
    folder = next(stage(cache, 1, "level-2/branch").glob("shuffle-layer-*"))
    save_json(folder / paths.DONE, record(folder) | {"trained_with_seeds": [1]})  # an old main's lone retrain
    with pytest.raises(BenchError, match="trained with seeds \\[1\\], its ticket with seeds \\[0, 1\\].*doctor --fix"):
        run(cache, data_dir)
    assert [f.kind for f in diagnose(cache).findings] == ["mispaired"]
    fix(diagnose(cache))
    assert_unchanged(cache, baseline, data_dir)


def test_a_stale_fused_checkpoint_is_not_resumed_on_other_start_weights(tmp_path, data_dir):
    setup = prepare(PRESET, RunOptions(cache=tmp_path, data_dir=data_dir, checkpoint_every=5), seeds=[0, 1])

    class Crash(Exception):
        pass

    class Crashing:
        def start(self, label, total):
            return self

        def advance(self, done):
            if done >= 7:
                raise Crash

        def done(self, accuracies, seconds):
            pass

    setup.env.progress = Crashing()
    reps = [Replicate(setup.experiment, seed, setup.env) for seed in (0, 1)]
    with pytest.raises(Crash):
        execute([rep.trunk_job() for rep in reps], setup.env)
    assert list(tmp_path.rglob("fused/*/checkpoint.pt"))
    jobs = [rep.trunk_job() for rep in reps]
    jobs[1].state = {n: t * 0.5 if t.is_floating_point() else t for n, t in jobs[1].state.items()}  # W_0 redrawn
    with pytest.warns(UserWarning, match="started from other weights"), pytest.raises(Crash):
        execute(jobs, setup.env)


# -- 2. one numerics class per cache ------------------------------------------------------------------
def test_training_on_stages_of_another_numerics_class_is_refused(cache, baseline, data_dir):
    folder = stage(cache, 0, "trunk")
    there = "cpu:AVX512:threads=2:Some CPU"
    save_json(folder / paths.DONE, record(folder) | {"hardware": there})
    with pytest.raises(BenchError, match=f"trained in numerics class {there}, this process runs in cpu:.*"
                                         "another --cache-dir.*BENCH_NUM_THREADS"):
        run(cache, data_dir)
    result = CliRunner().invoke(cli, ["trace", "--preset", "smoke", "--seeds", "1", "--iterations", "3",
                                      "--cache-dir", str(cache), "--data-dir", str(data_dir)])
    assert result.exit_code == 1 and "numerics class" in result.stderr, result.output


# -- 6. bench cache doctor mends what the errors send users to it for -----------------------------------
def strip_fingerprints(cache: Path) -> None:
    """The cache as an older bench left it: records without files or inputs."""
    for done in (cache / "experiments").rglob(paths.DONE):
        save_json(done, {k: v for k, v in record(done.parent).items() if k not in ("files", "inputs")})


@pytest.mark.parametrize("name", ["trunk/" + paths.WK, "level-2/" + paths.MASK, "level-2/" + paths.FINAL])
def test_an_error_that_sends_users_to_doctor_is_mended_by_it(cache, baseline, data_dir, name):
    strip_fingerprints(cache)
    path = stage(cache, 0, name)
    path.write_bytes(b"garbage")
    with pytest.raises(BenchError, match="run `bench cache doctor --fix`"):
        run(cache, data_dir)
    found = diagnose(cache).findings
    assert [(f.kind, f.path) for f in found] == [("corrupt-file", path)]
    result = CliRunner().invoke(cli, ["cache", "doctor", "--fix", "--cache-dir", str(cache)])
    assert result.exit_code == 0 and "1 item" in result.stderr, result.output
    assert_unchanged(cache, baseline, data_dir)


def test_doctor_finds_missing_files_bad_fields_and_swapped_files(cache, baseline, data_dir):
    (stage(cache, 0, "level-1") / paths.FINAL).unlink()
    save_json(stage(cache, 1, "trunk") / paths.DONE, record(stage(cache, 1, "trunk")) | {"seconds": "x"})
    a, b = stage(cache, 0, "level-2") / paths.MASK, stage(cache, 1, "level-2") / paths.MASK
    save_tensors(a, torch.load(b, weights_only=True))
    found = sorted((f.kind, f.path.relative_to(paths.experiment_dir(cache, HASH)).as_posix()) for f in diagnose(cache).findings)
    assert found == [("corrupt", "seed-1/trunk/done.json"), ("missing-file", "seed-0/level-1/final.pt"),
                     ("wrong-file", "seed-0/level-2/mask.pt")]
    fix(diagnose(cache))
    assert not diagnose(cache).findings
    assert_unchanged(cache, baseline, data_dir)


def test_doctor_reports_a_leftover_fused_checkpoint_of_finished_stages(cache):
    stages = [paths.stage_id(stage(cache, s, "trunk"), cache) for s in (0, 1)]
    folder = paths.experiment_dir(cache, HASH) / "fused" / "abc"
    save_tensors(folder / paths.CHECKPOINT, {"step": 5, "identity": {"stages": stages}})
    assert [(f.kind, f.detail) for f in diagnose(cache).findings] == [("stale-fused", "its stages are finished")]


def test_doctor_reports_symlinks_without_following_them(cache, tmp_path):
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "done.json").write_text("{")  # would be a finding if doctor followed the link
    link = stage(cache, 0, "trunk") / "elsewhere"
    link.symlink_to(outside, target_is_directory=True)
    loop = paths.experiment_dir(cache, HASH) / "loop"
    loop.symlink_to(paths.experiment_dir(cache, HASH), target_is_directory=True)
    found = sorted((f.kind, f.path.name) for f in diagnose(cache).findings)
    assert found == [("symlink", "elsewhere"), ("symlink", "loop")]
    fix(diagnose(cache))
    assert not link.exists() and not loop.exists() and (outside / "deep" / "done.json").exists()
