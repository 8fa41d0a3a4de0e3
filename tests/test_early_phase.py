"""Pre-training tasks, the rewind curve and the trace (issue 6): tiny tensors and the smoke preset."""

import json
import re
import math

import pytest
import torch
import torch.nn as nn
from click.testing import CliRunner

from bench import execute, paths, stages
from bench.cli import cli
from bench.data import BatchStream, Dataset, load_dataset
from bench.errors import BenchError
from bench.plugins import default_plugins
from bench.presets import get_preset
from bench.experiments.pretrain import run_pretraining, task_data
from bench.experiments.rewind_curve import CurveReplicate, default_ks, ensure_states, parse_ks, run_rewind_curve
from bench.experiments.setup import RunOptions
from bench.experiments.trace import Recorder, grad_norm, record_steps, trace_seed, weight_metrics
from bench.presets import PRESETS, pretrain_defaults
from bench.pretraining import PretrainContext, PretrainSchedule, Task, blur, check_blur, legacy_params, resolve, rotation_group
from bench.results import validate
from bench.seeding import generator

SMOKE = get_preset("smoke")
CPU = torch.device("cpu")


def dataset(x, y=None, classes=10):
    y = torch.zeros(x.shape[0], dtype=torch.long) if y is None else y
    return Dataset(x, y, x[:4], y[:4], classes)


def context(data, params, seed=0):
    return PretrainContext(data=data, spatial_dims=data.x_train.dim() - 2, num_classes=data.num_classes,
                           params=params, generator=generator(seed, "test"), seed=seed)


def builtin(name):
    return default_plugins().pretraining(name).pretraining


# -- the tasks -------------------------------------------------------------------------------------
def test_builtins_are_registered_with_steps_param():
    known = default_plugins().pretrainings()
    assert {"random-labels", "rotation", "blur", "blur-rotation"} <= set(known)
    for reg in known.values():
        assert reg.plugin.name == "builtin-pretraining" and reg.label == "pretrain:" + reg.pretraining.name
        assert resolve(reg.pretraining, {})["steps"] == "10ep"
    with pytest.raises(BenchError, match="has no parameter 'bogus'"):
        resolve(builtin("blur"), {"bogus": "1"})


def test_pretraining_hyperparameters_default_to_the_presets_and_are_checked():
    # every preset's defaults resolve; the default preset's are its own, the others' its training rate
    for preset in PRESETS.values():
        params = resolve(builtin("blur"), {}, pretrain_defaults(preset, preset.experiment))
        assert params["steps"] == preset.pretrain_steps and params["schedule"] == preset.pretrain_schedule
        assert params["lr"] == (preset.pretrain_lr or preset.experiment.train.lr)
    default = PRESETS["mnist1d-resnet"]
    assert default.pretrain_lr is not None and default.pretrain_lr < default.experiment.train.lr
    given = resolve(builtin("rotation"), {"lr": "0.05", "schedule": "cosine"}, pretrain_defaults(SMOKE, SMOKE.experiment))
    assert (given["lr"], given["schedule"], given["warmup"]) == (0.05, "cosine", "0it")
    with pytest.raises(BenchError, match="Unknown pre-training schedule 'linear'. Known: constant, cosine, step"):
        resolve(builtin("blur"), {"schedule": "linear"})
    with pytest.raises(BenchError, match="lr must be positive"):
        resolve(builtin("blur"), {"lr": "0"})
    # a record written before the hyperparameters existed was trained at the training rate, constant, no warm-up
    assert legacy_params({"steps": "3it"}, 0.8) == {"steps": "3it", "lr": 0.8, "warmup": "0it", "schedule": "constant"}
    assert legacy_params({"lr": 0.1, "warmup": "5it", "schedule": "step"}, 0.8)["lr"] == 0.1


def test_pretraining_schedules():
    constant = PretrainSchedule(0.4, "constant", 100, warmup=10)
    assert [constant.lr_at(s) for s in (0, 5, 10, 99)] == [0.0, 0.2, 0.4, 0.4]  # linear warm-up from 0
    cosine = PretrainSchedule(0.4, "cosine", 100)
    assert cosine.lr_at(0) == 0.4 and cosine.lr_at(50) == pytest.approx(0.2) and cosine.lr_at(100) == pytest.approx(0)
    step = PretrainSchedule(0.4, "step", 100)
    assert [step.lr_at(s) for s in (0, 49, 50, 74, 75)] == pytest.approx([0.4, 0.4, 0.04, 0.04, 0.004])


@pytest.mark.parametrize("name", ["rotation", "blur-rotation"])
def test_image_rotation_labels_match_the_rotation_applied(name):
    x = torch.randn(64, 3, 6, 6)
    raw = {"factor": "1"} if name == "blur-rotation" else {}  # factor 1: the rotation alone is checked
    task = builtin(name).prepare(context(dataset(x), resolve(builtin(name), raw)))
    assert task.outputs == 4
    out, labels = task.batch(x, torch.zeros(64, dtype=torch.long), generator(1, "batch"))
    assert out.shape == x.shape and labels.dtype == torch.long
    assert set(labels.tolist()) == {0, 1, 2, 3}  # 64 draws: every class occurs
    for i in range(64):
        assert torch.equal(out[i], torch.rot90(x[i], int(labels[i]), dims=(1, 2)))


def test_signal_rotation_analogue_labels_match_the_transform_applied():
    x = torch.randn(40, 1, 12)
    task = builtin("rotation").prepare(context(dataset(x), resolve(builtin("rotation"), {})))
    out, labels = task.batch(x, torch.zeros(40, dtype=torch.long), generator(2, "batch"))
    expected = {0: lambda s: s, 1: lambda s: s.flip(-1), 2: lambda s: -s.flip(-1), 3: lambda s: -s}
    assert set(labels.tolist()) == {0, 1, 2, 3}
    for i in range(40):
        assert torch.equal(out[i], expected[int(labels[i])](x[i]))


def test_rotation_batches_are_seeded_per_step():
    x = torch.randn(16, 1, 8)
    task = builtin("rotation").prepare(context(dataset(x), resolve(builtin("rotation"), {})))
    y = torch.zeros(16, dtype=torch.long)
    a = task.batch(x, y, generator(0, "batch", 3))[1]
    assert torch.equal(a, task.batch(x, y, generator(0, "batch", 3))[1])
    assert not torch.equal(a, task.batch(x, y, generator(0, "batch", 4))[1])


@pytest.mark.parametrize("shape", [(5, 1, 40), (5, 3, 8, 8)])
def test_blur_is_a_no_op_at_factor_1(shape):
    x = torch.randn(*shape)
    assert torch.equal(blur(x, 1), x)
    task = builtin("blur").prepare(context(dataset(x), resolve(builtin("blur"), {"factor": "1"})))
    assert torch.equal(task.x_train, x)


def test_blur_downsamples_and_upsamples_back():
    x = torch.randn(4, 2, 8, 8)
    out = blur(x, 4)
    assert out.shape == x.shape
    # averaging and interpolating preserve constants (so blurring commutes with normalisation)
    assert torch.allclose(blur(torch.full((2, 1, 40), 3.0), 4), torch.full((2, 1, 40), 3.0))
    assert out.std() < x.std()  # high frequencies are gone
    # only the window means survive: adding anything with zero mean in every window changes nothing
    sig = torch.randn(3, 1, 40)
    wiggle = torch.randn(3, 1, 10, 4)
    wiggle = (wiggle - wiggle.mean(-1, keepdim=True)).flatten(2)
    assert torch.allclose(blur(sig, 4), blur(sig + wiggle, 4), atol=1e-6)
    assert not torch.allclose(blur(sig, 4), sig)
    img_wiggle = torch.randn(4, 2, 2, 4, 2, 4)  # (n, c, block row, row, block col, col)
    img_wiggle = (img_wiggle - img_wiggle.mean((3, 5), keepdim=True)).reshape(4, 2, 8, 8)
    assert torch.allclose(out, blur(x + img_wiggle, 4), atol=1e-6)


def test_blur_and_rotation_refuse_where_they_have_no_meaning():
    signal, image, wide = torch.randn(2, 1, 40), torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 6)
    with pytest.raises(BenchError, match="no 90-degree rotation"):
        rotation_group(signal, "rot90")
    with pytest.raises(BenchError, match="square images"):
        rotation_group(wide, "auto")
    with pytest.raises(BenchError, match="1D analogue"):
        rotation_group(image, "flips")
    with pytest.raises(BenchError, match="Unknown rotation group"):
        rotation_group(image, "spin")
    with pytest.raises(BenchError, match="fewer than 2 samples"):
        check_blur(signal, 30)
    with pytest.raises(BenchError, match="at least 1"):
        check_blur(signal, 0)
    assert rotation_group(signal, "auto") == "flips" and rotation_group(image, "auto") == "rot90"


def test_random_labels_are_fixed_per_example_across_epochs():
    n = 50
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1)  # the input is the example's index
    data = dataset(x, torch.arange(n) % 10)
    plugin = builtin("random-labels")
    task = plugin.prepare(context(data, resolve(plugin, {})))
    assert torch.equal(task.y_train, plugin.prepare(context(data, resolve(plugin, {}))).y_train)  # seeded
    assert not torch.equal(task.y_train, data.y_train)
    stream = BatchStream(task_data(data, task, 10, "test"), 16, seed=0)
    seen: dict[int, set[int]] = {}
    for step in range(4 * stream.per_epoch):  # four epochs, each a different order
        xb, yb = stream.batch(step)
        for index, label in zip(xb.flatten().long().tolist(), yb.tolist()):
            seen.setdefault(index, set()).add(label)
    assert len(seen) == n and all(len(labels) == 1 for labels in seen.values())
    assert {i: next(iter(v)) for i, v in seen.items()} == dict(enumerate(task.y_train.tolist()))


def test_task_output_is_checked():
    data = dataset(torch.randn(8, 1, 4))
    with pytest.raises(BenchError, match="labels outside 0..9"):
        task_data(data, Task(y_train=torch.full((8,), 12)), 10, "Pre-training 'bad'")
    with pytest.raises(BenchError, match="x_train shaped"):
        task_data(data, Task(x_train=torch.randn(8, 1, 5)), 10, "Pre-training 'bad'")


# -- the pre-training experiment -----------------------------------------------------------------
def test_pretraining_end_to_end_record_ranks_and_is_cached(tmp_path, data_dir):
    options = RunOptions(cache=tmp_path, device="cpu", data_dir=data_dir)
    out = run_pretraining(SMOKE, "rotation", {"steps": "3it"}, options, seeds=1)
    record = out.records[0]
    assert validate(record) == []
    assert record["kind"] == "pretraining" and record["perturbation"]["name"] == "pretrain:rotation"
    assert record["pretraining"]["steps"] == 3 and record["perturbation"]["params"] == {
        "group": "auto", "steps": "3it", "lr": 0.1, "warmup": "0it", "schedule": "constant"}
    pre = record["pretraining"]
    # rotation: its own 4-way accuracy on the 640 training examples, beside the best constant prediction's
    assert pre["task_examples"] == 640 and 25.0 <= pre["task_chance"] < 30.0 and 0 <= pre["task_accuracy"] <= 100
    assert set(record["validation_accuracy"]) == {"dense", "ticket", "perturbed", "pretrained_dense"}
    assert all(0 <= v <= 100 for v in record["validation_accuracy"].values())  # smoke has a validation split
    assert record["drop"] == record["accuracy"]["ticket"] - record["accuracy"]["perturbed"]
    files = list((tmp_path / "results").rglob("seed-0.json"))
    assert len(files) == 1 and "pretrain-rotation-" in str(files[0]) and ":" not in str(files[0].relative_to(tmp_path))

    exp_root = paths.experiment_dir(tmp_path, record["config_hash"]) / "seed-0"
    variant = next((exp_root / "pretrain").iterdir())
    pre, w0, normal_wk = (torch.load(p, weights_only=True) for p in
                          (variant / "trunk" / "wk.pt", exp_root / "trunk" / "w0.pt", exp_root / "trunk" / "wk.pt"))
    assert torch.equal(pre["fc.weight"], w0["fc.weight"])  # the real head is back, as at W_0
    assert not torch.equal(pre["conv.weight"], w0["conv.weight"])  # the body was pre-trained
    assert not torch.equal(pre["conv.weight"], normal_wk["conv.weight"])
    assert record["effective_std"] > 0

    again = run_pretraining(SMOKE, "rotation", {"steps": "3it"}, options, seeds=1)
    assert not any(e.kind == "trained" for e in again.events)
    assert again.records[0]["accuracy"] == record["accuracy"]

    from bench.report.model import build
    from bench.results import Result

    lb = build([Result(record, files[0], "x.json")], min_seeds=1)
    # 3 iterations teach no rotation: its task accuracy is at chance, so the entry is listed, not ranked
    assert lb.rows == [] and [r.name for r in lb.ineligible] == ["pretrain:rotation"]
    assert lb.ineligible[0].reason.startswith("pre-trained network did not learn: seed 0: pre-training-task accuracy")


def test_pretrain_cli_refuses_a_meaningless_task_before_training(tmp_path, data_dir):
    result = CliRunner().invoke(cli, ["pretrain", "--task", "rotation", "--param", "group=rot90", "--preset", "smoke",
                                      "--cache-dir", str(tmp_path), "--data-dir", str(data_dir)])
    assert result.exit_code == 1
    # a batch log (no terminal here) may open with its header line; the refusal itself is one line
    lines = [line for line in result.output.splitlines() if not re.match(r"\[\d\d:\d\d:\d\d\] bench ", line)]
    assert len(lines) == 1 and lines[0].startswith("Error: A 1D signal has no 90-degree rotation"), result.output
    assert not (tmp_path / "experiments").exists()
    unknown = CliRunner().invoke(cli, ["pretrain", "--task", "rotaton", "--preset", "smoke"])
    assert "Unknown pre-training 'rotaton'. Did you mean 'rotation'?" in unknown.output


# -- the rewind curve ----------------------------------------------------------------------------
def test_default_and_parsed_ks():
    assert default_ks(20, 945) == [0, 5, 10, 20, 40, 80, 160]
    assert parse_ks("10, 0,1ep,10", 5, 40, 10) == [0, 10]
    with pytest.raises(BenchError, match="outside 0..39"):
        parse_ks("40", 5, 40, 10)


def test_rewind_curve_trains_one_trunk_per_seed_and_saves_every_k(tmp_path, data_dir, monkeypatch):
    dense_runs = []
    real = execute.run

    def spy(trainer, stream, start, end, **kw):
        if start == 0 and not trainer.masked:  # dense (the k = 0 point starts at 0 too, but masked)
            dense_runs.append(end)
        return real(trainer, stream, start, end, **kw)

    monkeypatch.setattr(execute, "run", spy)
    options = RunOptions(cache=tmp_path, device="cpu", data_dir=data_dir)
    curve = run_rewind_curve(SMOKE, "0,2,10,12", options, seeds=1)
    assert dense_runs == [120]  # the trunk, once (T = 120): every k < T after it starts at k
    assert curve.trunks_trained == 1 and curve.iterations_replayed == 0
    assert curve.ks == [0, 2, 10, 12]
    root = paths.experiment_dir(tmp_path, curve.as_dict()["config_hash"]) / "seed-0" / "trunk"
    assert (root / "states" / "w-2.pt").exists() and (root / "states" / "w-12.pt").exists()
    # at the preset's k the point is the ticket itself
    ticket = json.loads((root.parent / "level-2" / "done.json").read_text())
    assert curve.accuracy[10] == [ticket["accuracy"]]  # the smoke preset's k = 10
    again = run_rewind_curve(SMOKE, "0,2,10,12", options, seeds=1)
    assert dense_runs == [120] and not any(e.kind == "trained" for e in again.events)
    assert again.accuracy == curve.accuracy


def test_rewind_curve_replays_states_a_cached_trunk_lacks(tmp_path, data_dir, monkeypatch):
    exp = SMOKE.experiment
    env = stages.Env(cache=tmp_path / "a", device=CPU, data=load_dataset(exp.data, data_dir, CPU))
    with_states = CurveReplicate(exp, 0, env, [3, 12])
    with_states.trunk()  # trained by the curve: states saved in the dense run
    plain_env = stages.Env(cache=tmp_path / "b", device=CPU, data=env.data)
    stages.Replicate(exp, 0, plain_env).trunk()  # trained by `bench run`: only W_0 and W_k
    late = CurveReplicate(exp, 0, plain_env, [3, 12])
    assert ensure_states([late]) == 12
    assert execute.StageEvent("replayed", "dense trunk 0 -> 12", 0) in plain_env.events
    for k in (3, 12):  # the replay retraces the trunk exactly (CPU)
        a = torch.load(with_states.state_file(k), weights_only=True)
        b = torch.load(late.state_file(k), weights_only=True)
        assert all(torch.equal(a[n], b[n]) for n in a)
    assert ensure_states([late]) == 0


def test_replay_retraces_a_fused_trunk_in_its_own_group(tmp_path, data_dir):
    """A trunk trained with seeds 0 and 1 together is replayed with both, so its states match bit for bit."""
    exp = SMOKE.experiment
    data = load_dataset(exp.data, data_dir, CPU)
    env_a = stages.Env(cache=tmp_path / "a", device=CPU, data=data)
    with_states = [CurveReplicate(exp, s, env_a, [3, 12]) for s in (0, 1)]
    stages.execute([r.trunk_job() for r in with_states], env_a)  # fused, states saved in the dense run
    env_b = stages.Env(cache=tmp_path / "b", device=CPU, data=data)
    stages.execute([stages.Replicate(exp, s, env_b).trunk_job() for s in (0, 1)], env_b)  # fused, no states
    late = CurveReplicate(exp, 1, env_b, [3, 12])  # only seed 1 asked for: seed 0 comes along
    assert ensure_states([late]) == 24
    for k in (3, 12):
        a = torch.load(with_states[1].state_file(k), weights_only=True)
        b = torch.load(late.state_file(k), weights_only=True)
        assert all(torch.equal(a[n], b[n]) for n in a)


def test_rewind_curve_cli_writes_plot_and_json(tmp_path, data_dir):
    plot = tmp_path / "curve.png"
    result = CliRunner().invoke(cli, ["rewind-curve", "--preset", "smoke", "--k", "0,5", "--level", "1", "--json",
                                      "--output", str(plot), "--cache-dir", str(tmp_path),
                                      "--data-dir", str(data_dir), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [p["k"] for p in data["points"]] == [0, 5] and data["level"] == 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(open(data["files"]["json"]).read())["points"] == data["points"]


# -- the trace -----------------------------------------------------------------------------------
def test_weight_metrics_on_known_weights():
    init = {"a": torch.tensor([1.0, -2.0]), "b": torch.tensor([[3.0, -4.0]])}
    now = {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([[-3.0, -4.0]])}
    final = {"a": torch.tensor([2.0, 2.0]), "b": torch.tensor([[2.0, 2.0]])}
    m = weight_metrics(now, init, final)
    assert m["mean_abs_weight"] == pytest.approx(2.5)
    assert m["sign_flip_fraction"] == pytest.approx(0.5)  # the 2nd and 3rd of four weights flipped
    assert m["distance_from_init"] == pytest.approx(math.sqrt(0 + 16 + 36 + 0))
    assert m["distance_from_final"] == pytest.approx(math.sqrt(1 + 0 + 25 + 36))
    assert m["cosine_to_init"] == pytest.approx((1 - 4 - 9 + 16) / 30)
    assert m["cosine_to_final"] == pytest.approx((2 + 4 - 6 - 8) / (math.sqrt(30) * 4))
    same = weight_metrics(init, init, init)
    assert same["sign_flip_fraction"] == 0 and same["distance_from_init"] == 0 and same["cosine_to_init"] == \
        pytest.approx(1.0)


def test_grad_norm_and_recorder_on_a_toy_model():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0]]))
    assert grad_norm([model.weight]) is None
    (model(torch.tensor([[3.0, 4.0]])).sum()).backward()
    assert grad_norm([model.weight]) == pytest.approx(5.0)  # d(w.x)/dw = x = (3, 4)

    # the recorder reads the weights the model has at each recorded iteration
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, -1.0], [2.0, 0.5]]))
    init = {"1.weight": model[1].weight.detach().clone()}
    final = {"1.weight": torch.tensor([[1.0, 1.0], [2.0, 0.5]])}
    x, y = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
    rec = Recorder(model, ["1.weight"], [0, 1], init, x, y)
    rec.record(0)
    with torch.no_grad():
        model[1].weight[0, 1] = 1.0  # now exactly the final weights; one sign of four flipped
    rec.after_step(1)
    first, second = rec.table(final)
    assert first["distance_from_init"] == 0 and first["distance_from_final"] == pytest.approx(2.0)
    assert second["sign_flip_fraction"] == pytest.approx(0.25) and second["distance_from_final"] == 0
    assert second["cosine_to_final"] == pytest.approx(1.0) and second["distance_from_init"] == pytest.approx(2.0)
    assert first["test_accuracy"] == 50.0  # logits (1, 2) and (-1, 0.5): only the second example is right
    assert second["test_accuracy"] == 0.0  # logits (1, 2) and (1, 0.5): both wrong


def test_record_steps():
    assert record_steps(10, 5) == [0, 1, 2, 4, 5, 8, 10]
    with pytest.raises(BenchError):
        record_steps(10, 0)


def test_trace_retraces_the_trunk_and_records_the_first_gradient(tmp_path, data_dir):
    exp = SMOKE.experiment
    env = stages.Env(cache=tmp_path, device=CPU, data=load_dataset(exp.data, data_dir, CPU))
    rep = stages.Replicate(exp, 0, env)
    rep.trunk()
    rows, checks = trace_seed(rep, rep.T, 10)
    assert checks == {"wk_max_abs_diff": 0.0, "final_max_abs_diff": 0.0}
    first, last = rows[0], rows[-1]
    assert first["iteration"] == 0 and last["iteration"] == rep.T
    assert first["sign_flip_fraction"] == 0 and first["distance_from_init"] == 0
    assert first["cosine_to_init"] == pytest.approx(1.0)
    assert last["distance_from_final"] == 0 and last["cosine_to_final"] == pytest.approx(1.0)
    assert last["grad_norm"] is None and all(r["grad_norm"] > 0 for r in rows[:-1])
    # the gradient at iteration 0: W_0 on batch 0, as the first training step computes it
    model = rep.new_model()
    model.load_state_dict(rep.state("w0.pt"))
    model.train()
    xb, yb = BatchStream(env.data, exp.train.batch_size, 0).batch(0)
    torch.nn.functional.cross_entropy(model(xb), yb).backward()
    names = list(rep.prunable(rep.state("w0.pt")))
    params = dict(model.named_parameters())
    assert first["grad_norm"] == pytest.approx(grad_norm([params[n] for n in names]), rel=1e-6)


def test_trace_cli_writes_csv_json_and_figure(tmp_path, data_dir):
    out_dir = tmp_path / "trace-out"
    result = CliRunner().invoke(cli, ["trace", "--preset", "smoke", "--iterations", "12", "--every", "4",
                                      "--output-dir", str(out_dir), "--cache-dir", str(tmp_path),
                                      "--data-dir", str(data_dir), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    lines = (out_dir / "trace.csv").read_text().splitlines()
    assert lines[0].startswith("seed,iteration,test_accuracy,test_loss,grad_norm")
    assert [int(line.split(",")[1]) for line in lines[1:]] == [0, 1, 2, 4, 8, 12]
    assert (out_dir / "trace.png").read_bytes()[:4] == b"\x89PNG"
    beside = list((tmp_path / "experiments").rglob("seed-0/trace/N12-every4/trace.csv"))
    assert len(beside) == 1


def test_untraced_training_never_records(tmp_path, data_dir, monkeypatch):
    # recording lives only in the progress callback bench trace passes: a bench run never builds a Recorder
    # nor measures a gradient
    from bench.experiments import trace

    def refuse(*args, **kwargs):
        raise AssertionError("bench run recorded a trace")

    monkeypatch.setattr(trace.Recorder, "__init__", refuse)
    monkeypatch.setattr(trace, "grad_norm", refuse)
    out = CliRunner().invoke(cli, ["run", "--preset", "smoke", "-p", "identity", "--cache-dir", str(tmp_path),
                                   "--data-dir", str(data_dir), "--json"])
    assert out.exit_code == 0, out.output


def test_workers_give_the_same_numbers_for_pretrain_rewind_curve_and_trace(tmp_path, data_dir):
    """--workers trains the seed groups side by side for every command that offers it, to the same numbers."""
    from bench.experiments.trace import run_trace

    def options(name: str, workers: int) -> RunOptions:
        return RunOptions(cache=tmp_path / name, device="cpu", data_dir=data_dir, group_size=2, workers=workers)

    runs = {}
    for workers in (1, 2):
        pre = run_pretraining(SMOKE, "rotation", {"steps": "3it"}, options(f"pre{workers}", workers), seeds=3, level=1)
        curve = run_rewind_curve(SMOKE, "0,10", options(f"curve{workers}", workers), seeds=3, level=1)
        trace = run_trace(SMOKE, options(f"trace{workers}", workers), iterations=8, every=4, seeds=3)
        runs[workers] = (pre, curve, trace)
    (pre1, curve1, trace1), (pre2, curve2, trace2) = runs[1], runs[2]
    for a, b in zip(pre1.records, pre2.records):
        assert (a["accuracy"], a["fingerprints"], a["trained_with_seeds"]) == \
            (b["accuracy"], b["fingerprints"], b["trained_with_seeds"])
    assert pre2.records[0]["trained_with_seeds"]["trunk"] == [0, 1]
    assert curve1.as_dict() == curve2.as_dict()
    assert trace1.as_dict() == trace2.as_dict()
    # the workers' events reach the parent: each trunk counted as trained once, none as cached
    for out in (pre2, curve2, trace2):
        assert not any(e.kind == "cached" for e in out.events)
    assert sum(e.kind == "trained" and e.stage == "dense trunk" for e in curve2.events) == 3
    assert sum(e.kind == "traced" for e in trace2.events) == 3
