"""The leaderboard: result loading and validation, paired statistics, ranking, renderers, CLI."""

from __future__ import annotations

import copy
import functools
import html
import hashlib
import json
import math
import pickle
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cache import save_json
from bench.cli import cli
from bench.config import config_hash, full
from bench.errors import BenchError
from bench.paths import result_file as result_path
from bench.presets import get_preset
from bench.provenance import PROTOCOL_VERSION
from bench.report.html import render_html
from bench.report.markdown import render_markdown
from bench.report.model import build, from_folders
from bench.report.render import render_json
from bench.results import load_results, validate
from bench.report.terminal import render_table, rich_tables

SMOKE = get_preset("smoke").experiment
HOSTILE = "<script>alert(1)</script>"


def _fp(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def _w0(experiment, seed: int) -> str:
    """The W_0 fingerprint the seed's initialiser really draws (--strict recomputes it; milliseconds)."""
    from bench import models
    from bench.datasets import dataset_info
    from bench.provenance import fingerprint
    from bench.seeding import generator

    info = dataset_info(experiment.data.dataset)
    model = models.build_model(experiment.model, info.in_channels, info.num_classes)
    models.initialize(model, generator(seed, "init"), experiment.model)
    return fingerprint(model.state_dict())


def record(name="identity", *, seed=0, drop=0.0, ticket=60.0, params=None, pseed=0, level=2,
           density=0.25, dist="earlyphase-bench", plugin="builtin-controls", version="0.1.0", preset="smoke",
           experiment=SMOKE, created="2026-01-01T00:00:00Z", effective_std=0.0, **extra):
    """A valid result record shaped exactly like bench.experiments.perturb's (schema 2, this protocol)."""
    rec = {
        "schema_version": 2, "protocol_version": PROTOCOL_VERSION, "preset": preset, "config_hash": config_hash(experiment), "config": full(experiment),
        "seed": seed, "level": level, "density": density, "steps": 40, "rewind_step": 5,
        "perturbation": {"name": name, "params": params or {}, "seed": pseed, "generator_seed": 12345,
                         "plugin": plugin, "distribution": dist, "version": version},
        "accuracy": {"dense": 70.0, "ticket": ticket, "perturbed": ticket - drop},
        "drop": drop, "effective_std": effective_std, "relative_change": 0.0,
        "timings": {"trunk_s": 1.0, "ticket_s": 1.0, "branch_s": 1.0},
        "environment": {"bench_version": "0.1.0", "protocol_version": PROTOCOL_VERSION, "torch_version": "2.4.0",
                        "python_version": "3.11.7", "platform": "linux", "device": "cpu", "device_name": "x86_64",
                        "cpu_capability": "AVX2", "threads": 1},
        "created": created,
        # one replicate per (config, level, seed): its W_k and mask, whatever the perturbation
        "fingerprints": extra.pop("fingerprints", None) or {
            "w0": _w0(experiment, seed), "wk": _fp("wk", seed), "mask": _fp("mask", seed, level),
            "ticket": _fp("ticket", seed, level)},
    }
    rec.update(extra)
    return rec


def write(root: Path, rec: dict) -> Path:
    try:
        path = result_path(root, rec)
    except BenchError:  # bench never builds a path from a hostile name; a contributor's file may carry one
        pert = rec["perturbation"]
        key = f"hostile-{hashlib.sha256(repr(pert).encode()).hexdigest()[:12]}"
        path = root / rec["config_hash"] / f"level-{rec['level']}" / key / f"seed-{rec['seed']}.json"
    save_json(path, rec)
    return path


def write_series(root: Path, name: str, drops: list[float], seeds_from: int = 0, **kw) -> list[Path]:
    return [write(root, record(name, seed=s, drop=d, **kw)) for s, d in enumerate(drops, seeds_from)]


def board_rows(lb):
    assert len(lb.boards) == 1
    return lb.boards[0].rows


# ------------------------------------------------------------------------------------------ statistics


def test_ranked_by_mean_drop_largest_first(tmp_path):
    write_series(tmp_path, "identity", [0.0, 0.0, 0.0])
    write_series(tmp_path, "shuffle-layer", [10.0, 11.0, 12.0], dist="other", plugin="x")
    write_series(tmp_path, "gaussian-noise", [3.0, 4.0, 5.0], params={"scale": 0.5}, dist="other", plugin="x")
    rows = board_rows(from_folders([tmp_path]))
    assert [r.name for r in rows] == ["shuffle-layer", "gaussian-noise", "identity"]
    assert [r.rank for r in rows] == [1, 2, 3]
    assert rows[1].params == {"scale": 0.5}


def test_interval_is_the_hand_computed_t_interval(tmp_path):
    write_series(tmp_path, "x", [1.0, 2.0, 4.0], dist="other")
    (row,) = board_rows(from_folders([tmp_path]))
    mean = 7 / 3
    sd = math.sqrt(((1 - mean) ** 2 + (2 - mean) ** 2 + (4 - mean) ** 2) / 2)
    # Student t with 2 degrees of freedom has CDF 1/2 + t / (2 sqrt(2 + t^2)); solve it for 0.975 by hand
    t = math.sqrt(2 * 0.95 ** 2 / (1 - 0.95 ** 2))
    assert t == pytest.approx(4.302653, abs=1e-6)
    half = t * sd / math.sqrt(3)
    assert row.n == 3
    assert row.drop.mean == pytest.approx(mean)
    assert row.drop.low == pytest.approx(mean - half)
    assert row.drop.high == pytest.approx(mean + half)
    assert row.drop.values == (1.0, 2.0, 4.0)
    assert row.seeds == (0, 1, 2)


def test_drop_is_paired_by_seed(tmp_path):
    # the tickets differ a lot between seeds, the per-seed drops do not: the interval must be the narrow one
    for seed, ticket in enumerate([40.0, 60.0, 80.0]):
        write(tmp_path, record("x", seed=seed, ticket=ticket, drop=2.0 + 0.1 * seed, dist="other"))
    (row,) = board_rows(from_folders([tmp_path]))
    assert row.drop.high - row.drop.low < 1.0
    assert row.ticket.values == (40.0, 60.0, 80.0)


def test_groups_come_from_paired_tests_and_the_board_says_when_nothing_separates(tmp_path):
    # three seeds: the exact sign-flip test's smallest p is 2/8, so no pair can be separated, however clear
    write_series(tmp_path, "a", [10.0, 11.0, 12.0], dist="other")
    write_series(tmp_path, "b", [9.0, 10.0, 11.0], dist="other")
    write_series(tmp_path, "c", [0.0, 0.1, 0.2], dist="other")
    lb = from_folders([tmp_path])
    rows = board_rows(lb)
    assert [r.name for r in rows] == ["a", "b", "c"]
    assert [r.verdict.group for r in rows] == ["a", "a", "a"] and [r.verdict.rank_ub for r in rows] == [1, 1, 1]
    assert lb.boards[0].verdicts.separated == 0 and lb.boards[0].verdicts.comparisons == 3
    md = render_markdown(lb)
    assert "tied with" not in md and "Nothing on this board is separated at n = 3 seeds" in md
    assert "Holm's correction over the 3 pairs shown" in md


def test_min_seeds_excludes_and_lists_rows(tmp_path):
    write_series(tmp_path, "few", [5.0, 6.0], dist="other")
    write_series(tmp_path, "enough", [1.0, 2.0, 3.0], dist="other")
    lb = from_folders([tmp_path], min_seeds=3)
    assert [r.name for r in board_rows(lb)] == ["enough"]
    assert [(r.name, r.n) for r in lb.ineligible] == [("few", 2)]
    assert "fewer than the minimum 3" in lb.ineligible[0].reason
    assert "Not ranked" in render_markdown(lb)


def test_duplicate_seed_is_refused_whichever_order_and_is_reported(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_series(a, "x", [1.0, 2.0, 3.0], dist="other")
    write(b, record("x", seed=1, drop=50.0, dist="other", created="2027-01-01T00:00:00Z"))  # another record of seed 1
    for folders in ([a, b], [b, a]):
        lb = from_folders(folders)
        (row,) = board_rows(lb)
        assert row.n == 2 and row.drop.values == (1.0, 3.0)  # neither record of seed 1 is preferred
        assert len(lb.duplicates) == 1 and lb.duplicates[0].seed == 1 and len(lb.duplicates[0].files) == 2
    assert "Duplicate" in render_markdown(lb) and "all are refused" in render_markdown(lb)


def test_same_folder_twice_is_not_a_duplicate(tmp_path):
    write_series(tmp_path, "x", [1.0, 2.0], dist="other")
    lb = from_folders([tmp_path, tmp_path])
    assert board_rows(lb)[0].n == 2 and lb.duplicates == []


def test_controls_are_marked_only_when_built_in(tmp_path):
    write_series(tmp_path, "identity", [0.0, 0.0])
    write_series(tmp_path, "reinit", [5.0, 6.0])
    write_series(tmp_path, "rewind-to-init", [2.0, 3.0])
    write_series(tmp_path, "not-a-control", [1.0, 1.5], dist="someone-else")
    rows = {r.name: r for r in board_rows(from_folders([tmp_path]))}
    assert rows["identity"].control and rows["reinit"].control and rows["rewind-to-init"].control
    assert not rows["not-a-control"].control
    other = tmp_path / "other"
    write_series(other, "identity", [0.0, 0.0], dist="impostor")  # a name alone does not make a control
    assert not board_rows(from_folders([other]))[0].control


def test_imp_rewind_0_is_the_reference_row_in_every_renderer(tmp_path):
    from bench.report.render import render_csv

    write_series(tmp_path, "identity", [0.0, 0.0, 0.0])
    write_series(tmp_path, "imp-rewind-0", [1.0, 2.0, 3.0])
    write_series(tmp_path, "noise", [4.0, 5.0, 6.0], dist="o")
    lb = from_folders([tmp_path])
    rows = {r.name: r for r in board_rows(lb)}
    assert rows["imp-rewind-0"].control and rows["imp-rewind-0"].reference and not rows["identity"].reference
    assert lb.boards[0].reference is rows["imp-rewind-0"]
    # mean 2, sd 1: half-width 4.3027 / sqrt(3) = 2.4841
    line = ("Reference, IMP rewound to 0 (imp-rewind-0): mean drop 2.00, 95% CI [-0.48, 4.48], n = 3; positive: "
            "rewinding to k = 5 beats rewinding to 0.")
    text = render_markdown(lb)
    assert line.replace("[", "\\[").replace("]", "\\]") in text
    assert text.index("## smoke: 25.0%") < text.index("Reference, IMP") < text.index("| # |")  # under the title
    assert "| 2 | imp-rewind-0 |" in text and "reference (k = 0)" in text
    page = render_html(lb)
    assert f'<p class="reference">{html.escape(line)}</p>' in page and '<tr class="control reference' in page
    from bench.report.html import _SCRIPT, script_hash

    assert page.count("<script") == 1 and f"<script>{_SCRIPT}</script>" in page and script_hash() in page
    table = render_table(lb)
    assert " ".join(line.split()) in " ".join(table.split()) and "reference (k = 0)" in table
    assert json.loads(render_json(lb))["boards"][0]["rows"][1]["reference"] is True
    csv_lines = render_csv(lb).splitlines()  # a normal row per file, no new column
    assert csv_lines[0].split(",")[:3] == ["preset", "config_hash", "perturbation"] and len(csv_lines) == 10
    from rich.console import Console

    console = Console(record=True, width=80)
    for renderable in rich_tables(lb, 80):
        console.print(renderable)
    assert max(map(len, console.export_text().splitlines())) <= 80


def test_a_board_without_the_reference_says_how_to_add_it(tmp_path):
    write_series(tmp_path, "noise", [4.0, 5.0, 6.0], dist="o")
    write_series(tmp_path, "imp-rewind-0", [1.0, 2.0, 3.0], dist="impostor")  # a name alone is no reference
    write_series(tmp_path, "identity", [0.0, 0.0], level=1, density=0.5, seeds_from=5)
    write(tmp_path, record("imp-rewind-0", seed=5, drop=1.0, level=1, density=0.5))
    lb = from_folders([tmp_path])
    missing = "No IMP-rewound-to-0 reference at this sparsity: run bench run -p imp-rewind-0 --preset smoke"
    unranked = "The IMP-rewound-to-0 reference at this sparsity is not ranked: 1 seed, fewer than the minimum 2."
    level1, level2 = render_markdown(lb).split("## smoke: 50.0%")[1].split("## smoke: 25.0%")
    assert unranked in level1 and f"{missing} --seeds 3 --level 2." in level2
    for text in (render_html(lb), " ".join(render_table(lb).split())):
        assert unranked in text and f"{missing} --seeds 3 --level 2." in text
    default = tmp_path / "default"  # the default preset and its seeds: the command needs neither
    mnist = get_preset("mnist1d-resnet")
    write_series(default, "noise", [1.0, 2.0, 3.0, 1.5, 2.5, 2.0], dist="o", preset="mnist1d-resnet", experiment=mnist.experiment,
                 level=3, density=0.2)
    assert "run bench run -p imp-rewind-0 --level 3." in render_markdown(from_folders([default]))
    hostile = tmp_path / "hostile"
    write_series(hostile, "noise", [1.0, 2.0], dist="o", preset=HOSTILE)
    page = render_html(from_folders([hostile], any_config=True))
    assert page.count("<script") == 1 and f"--preset {html.escape(HOSTILE)} --seeds 2" in page


def test_perturbation_seed_and_params_are_separate_rows(tmp_path):
    write_series(tmp_path, "noise", [1.0, 2.0], params={"scale": 0.5}, pseed=0, dist="o")
    write_series(tmp_path, "noise", [3.0, 4.0], params={"scale": 0.5}, pseed=1, dist="o")
    write_series(tmp_path, "noise", [5.0, 6.0], params={"scale": 1.0}, pseed=0, dist="o")
    rows = board_rows(from_folders([tmp_path]))
    assert [(r.params["scale"], r.perturbation_seed) for r in rows] == [(1.0, 0), (0.5, 1), (0.5, 0)]


def test_filters_preset_and_sparsity(tmp_path):
    write_series(tmp_path, "x", [1.0, 2.0], dist="o")
    write_series(tmp_path, "x", [3.0, 4.0], dist="o", level=1, density=0.5)
    lb = from_folders([tmp_path])
    assert [(b.level, round(b.percent_remaining, 1)) for b in lb.boards] == [(1, 50.0), (2, 25.0)]
    assert [b.level for b in from_folders([tmp_path], sparsity=25.04).boards] == [2]
    assert [b.level for b in from_folders([tmp_path], sparsity=50).boards] == [1]
    assert from_folders([tmp_path], sparsity=30).boards == []
    assert from_folders([tmp_path], preset="mnist1d-resnet").boards == []


def test_config_that_differs_from_the_preset_is_not_ranked(tmp_path):
    changed = SMOKE.with_overrides(train={"lr": 0.05})
    write_series(tmp_path, "x", [1.0, 2.0, 3.0], dist="o", experiment=changed)
    lb = from_folders([tmp_path])
    assert lb.boards == [] and "differs from preset 'smoke'" in lb.ineligible[0].reason
    assert board_rows(from_folders([tmp_path], any_config=True))[0].config_hash == config_hash(changed)


# ------------------------------------------------------------------------------------------ renderers


def _mixed(tmp_path):
    write_series(tmp_path, "identity", [0.0, 0.0, 0.0])
    write_series(tmp_path, "noise", [3.0, 4.5, 5.0], params={"scale": 0.5}, dist="o", effective_std=0.01)
    write_series(tmp_path, "few", [1.0], dist="o")
    return from_folders([tmp_path], min_seeds=2)


def test_markdown(tmp_path):
    text = render_markdown(_mixed(tmp_path))
    assert text.startswith("# Leaderboard\n")
    assert "## smoke: 25.0% of weights remaining (level 2), k = 5" in text
    lines = [line for line in text.splitlines() if line.startswith("| 1 ")]
    # mean 12.5/3; sd sqrt(2.1667/2) = 1.0408; half-width 4.3027 * 1.0408 / sqrt(3) = 2.5856
    assert lines == ["| 1 | noise | scale=0.5 | 0 | 3 | 4.17 | [1.58, 6.75] | 1 | 1 | a | > 0 | - | 3.00, 4.50, 5.00 | 25.0 | 5 | 0.0100 "
                     "| builtin-controls (o 0.1.0) |   |"]
    assert "| 2 | identity |" in text and "control" in text
    assert "| smoke | 2 | few |" in text


def test_html_is_one_self_contained_page(tmp_path):
    from bench.report.html import _SCRIPT, script_hash

    page = render_html(_mixed(tmp_path))
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    # one inline script, allowed by its own hash and nothing else; no remote resource
    assert page.lower().count("<script") == 1 and f"<script>{_SCRIPT}</script>" in page
    assert f"script-src '{script_hash()}'" in page and "default-src 'none'" in page
    assert "http://" not in page and ' src="' not in page
    assert '<tr class="control' in page and "Not ranked" in page
    assert page.count("<svg") == 3  # the board's axis and one interval bar per ranked row
    assert "<a " not in page  # neither the built-ins nor "o" declare a home page: no link, none guessed
    assert "Same for every row: p-seed 0, n 3, % remaining 25.0, k 5, Rank (UB) 1, group a." in page  # constant columns left the table
    assert '<div id="controls" hidden>' in page  # shown by the script only: without it every board shows


def test_json(tmp_path):
    data = json.loads(render_json(_mixed(tmp_path)))
    (board,) = data["boards"]
    noise = board["rows"][0]
    assert noise["perturbation"] == "noise" and noise["n"] == 3 and noise["rank"] == 1
    assert [s["drop"] for s in noise["per_seed"]] == [3.0, 4.5, 5.0]
    assert noise["percent_remaining"] == 25.0 and noise["rewind_step"] == 5
    assert (noise["plugin"], noise["distribution"], noise["version"]) == ("builtin-controls", "o", "0.1.0")
    assert data["ineligible"][0]["ci_low"] is None  # n = 1: no interval, written as null rather than NaN


def test_every_renderer_is_deterministic(tmp_path):
    first = [render_markdown(_mixed(tmp_path)), render_html(_mixed(tmp_path)), render_json(_mixed(tmp_path)),
             render_table(_mixed(tmp_path))]
    # the same records under another folder name and order give the same bytes
    other = tmp_path.parent / (tmp_path.name + "-copy")
    for path in sorted(tmp_path.rglob("*.json"), reverse=True):
        target = other / path.relative_to(tmp_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    lb = from_folders([other], min_seeds=2)
    assert [render_markdown(lb), render_html(lb), render_json(lb), render_table(lb)] == first
    assert not re.search(r"20\d\d-\d\d-\d\d", "".join(first))  # no timestamps


def test_hostile_strings_are_escaped_everywhere(tmp_path):
    write_series(tmp_path, HOSTILE, [1.0, 2.0], dist='"><img src=x onerror=alert(1)>', plugin="[red]x[/red]",
                 version="1.0\x1b[31m", params={"a|b": "`<b>`"})
    for path in tmp_path.rglob("*.json"):  # a description with a quote that tries to leave the attribute
        rec = json.loads(path.read_text())
        rec["perturbation"]["description"] = '" onmouseover="alert(1)' + HOSTILE
        path.write_text(json.dumps(rec))
    lb = from_folders([tmp_path], any_config=True)
    page = render_html(lb)
    assert page.lower().count("<script") == 1  # the page's own script only
    assert "<img" not in page and 'onmouseover="' not in page
    assert html.escape(HOSTILE) in page
    text = render_markdown(lb)
    assert "<script" not in text.lower() and "<img" not in text and "<b>" not in text
    assert "&lt;script&gt;" in text
    assert "\x1b" not in text + page + render_table(lb) + render_json(lb)
    row_line = next(line for line in text.splitlines() if line.startswith("| 1 "))
    assert row_line.count(" | ") == 17  # the '|' in a parameter name did not add a column
    from rich.console import Console

    console = Console(record=True, width=300)
    for table in rich_tables(lb):
        console.print(table)
    assert "[red]x[/red]" in console.export_text()  # shown literally, not read as rich markup


# ------------------------------------------------------------------------------------------ bad input


def test_bad_files_are_named_and_skipped(tmp_path):
    good = write_series(tmp_path, "x", [1.0, 2.0], dist="o")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "truncated.json").write_text(good[0].read_text()[:100])
    (bad / "garbage.json").write_bytes(b"\x80\x81 not text")
    (bad / "empty.json").write_text("")
    (bad / "list.json").write_text("[1, 2]")
    (bad / "nan.json").write_text(good[0].read_text().replace('"drop": 1.0', '"drop": NaN'))
    violating = record("x", seed=5, dist="o")
    violating["accuracy"]["ticket"] = "high"
    save_json(bad / "schema.json", violating)
    tampered = record("x", seed=6, dist="o")
    tampered["drop"] = 40.0  # no longer ticket - perturbed
    save_json(bad / "tampered.json", tampered)
    rehashed = record("x", seed=7, dist="o")
    rehashed["config"]["train"]["lr"] = 0.5  # the config no longer hashes to config_hash
    save_json(bad / "rehashed.json", rehashed)
    future = record("x", seed=8, dist="o", schema_version=99)
    save_json(bad / "future.json", future)

    loaded = load_results([tmp_path])
    assert len(loaded.results) == 2
    problems = {p.path.name: p.message for p in loaded.problems}
    assert set(problems) == {"truncated.json", "garbage.json", "empty.json", "list.json", "nan.json", "schema.json",
                             "tampered.json", "rehashed.json", "future.json"}
    assert "truncated" in problems["truncated.json"]
    assert "accuracy.ticket" in problems["schema.json"]
    assert "drop" in problems["tampered.json"] and "config_hash" in problems["rehashed.json"]
    assert "NaN" in problems["nan.json"] and "schema_version 99" in problems["future.json"]
    with pytest.raises(BenchError, match="truncated.json"):
        load_results([tmp_path], strict=True)

    runner = CliRunner()
    result = runner.invoke(cli, ["leaderboard", "--results", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "truncated.json" in result.stderr and "Warning: skipped" in result.stderr
    assert json.loads(result.stdout)["boards"][0]["rows"][0]["n"] == 2
    strict = runner.invoke(cli, ["leaderboard", "--results", str(tmp_path), "--strict"])
    assert strict.exit_code == 1 and strict.stderr.startswith("Error: 9 invalid result file(s)")
    assert "Traceback" not in strict.output


def test_record_with_code_is_only_data(tmp_path, monkeypatch):
    marker = tmp_path / "PWNED"
    monkeypatch.chdir(tmp_path)

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "pickle.json").write_bytes(pickle.dumps(Exploit()))
    (folder / "yaml.json").write_text(f"!!python/object/apply:builtins.open ['{marker}', 'w']\n")
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    rec = record(code, dist="o", params={"k": "{{7*7}} ${{7*7}} `touch PWNED`"})
    save_json(folder / "code.json", rec)
    loaded = load_results([folder])
    assert {p.path.name for p in loaded.problems} == {"pickle.json", "yaml.json"}
    (res,) = loaded.results
    assert res.data["perturbation"]["name"] == code  # a string, nothing more
    lb = build(loaded.results, min_seeds=1)
    for text in (render_markdown(lb), render_html(lb), render_json(lb), render_table(lb)):
        assert text
    assert not marker.exists()


def test_validate_accepts_runner_shaped_records():
    assert validate(record()) == []
    extra = record(new_field_from_a_later_version={"fine": True})  # additions do not need a new version
    assert validate(extra) == []
    missing = copy.deepcopy(record())
    del missing["perturbation"]["plugin"]
    assert validate(missing)


# ------------------------------------------------------------------------------------------ CLI


def test_cli_formats_and_output(tmp_path):
    write_series(tmp_path / "r", "x", [1.0, 2.0, 3.0], dist="o")
    runner = CliRunner()
    for name, marker in (("t.md", "# Leaderboard"), ("t.html", "<!DOCTYPE html>"), ("t.json", '"boards"')):
        result = runner.invoke(cli, ["leaderboard", "--results", str(tmp_path / "r"), "--output",
                                     str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert marker in (tmp_path / name).read_text()
    result = runner.invoke(cli, ["leaderboard", "--results", str(tmp_path / "r"), "--format", "markdown"])
    assert result.stdout == (tmp_path / "t.md").read_text()
    missing = runner.invoke(cli, ["leaderboard", "--results", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    unknown = runner.invoke(cli, ["leaderboard", "--preset", "smok"])
    assert unknown.exit_code == 1 and "Did you mean 'smoke'" in unknown.stderr


def _pandas():
    try:
        import pandas
    except ImportError:  # an optional extra: the fixed list above still applies
        return None
    return pandas


def test_csv_one_row_per_result_file(tmp_path):
    import csv
    import io

    from bench.report.render import CSV_COLUMNS

    write_series(tmp_path / "r", "noise", [1.0, 2.0], params={"scale": 0.5, "a,b": 'q"'}, dist="o")
    # its own replicate (seed 5): files of one replicate must agree on W_k and the mask
    write(tmp_path / "r", record("identity", seed=5, fingerprints={"w0": "a" * 64, "wk": "b" * 64, "mask": None,
                                                                    "ticket": "c" * 64}))
    write(tmp_path / "r", record("few", seed=7, drop=3.0, dist="o"))  # one seed: not ranked, still exported
    result = CliRunner().invoke(cli, ["leaderboard", "--results", str(tmp_path / "r"), "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    columns = list(CSV_COLUMNS)
    columns[columns.index("params") + 1:columns.index("params") + 1] = ["param_a,b", "param_scale"]
    assert list(rows[0]) == columns and len(rows) == 4
    assert [(r["perturbation"], r["seed"]) for r in rows] == [("few", "7"), ("identity", "5"), ("noise", "0"),
                                                               ("noise", "1")]
    few, ident, noise = rows[0], rows[1], rows[3]
    assert json.loads(noise["params"]) == {"scale": 0.5, "a,b": 'q"'}  # a comma and a quote survive quoting
    assert (noise["param_scale"], noise["param_a,b"], few["param_scale"]) == ("0.5", 'q"', "")  # flat, one each
    assert (float(noise["ticket_accuracy"]) - float(noise["perturbed_accuracy"]), float(noise["drop_points"])) \
        == (2.0, 2.0)
    assert (few["level"], few["percent_remaining"], few["dense_accuracy"], few["perturbation_seed"]) == \
        ("2", "25.0", "70.0", "0")  # percent, as every other output prints it
    assert (ident["fingerprint_w0"], ident["fingerprint_mask"]) == ("a" * 64, "")
    assert len(few["fingerprint_w0"]) == 64 and few["file"].endswith(".json")
    # no column hides a DataFrame method behind attribute access (df.drop was the method, not the column)
    methods = {"drop", "rank", "count", "mean", "std", "min", "max", "sum", "size", "shape", "values", "index",
               "columns", "first", "last", "mode", "median", "round", "filter", "where", "mask", "pop", "get",
               "keys", "items", "sample", "clip", "diff", "plot", "query", "eval", "head", "tail", "abs", "all", "any"}
    assert not methods & set(columns)
    pd = _pandas()
    if pd is not None:
        assert not [c for c in columns if hasattr(pd.DataFrame, c)]
    out = tmp_path / "seeds.csv"  # the suffix picks the format
    assert CliRunner().invoke(cli, ["leaderboard", "--results", str(tmp_path / "r"), "--output", str(out)]).exit_code == 0
    assert out.read_text() == result.stdout


def test_plot_png_and_svg(tmp_path):
    root = tmp_path / "r"
    for level, density in ((1, 0.5), (2, 0.25)):
        write_series(root, "identity", [0.0, 0.0, 0.0], level=level, density=density)
        write_series(root, "imp-rewind-0", [0.5, 1.0, 2.0], level=level, density=density)
        write_series(root, "noise", [1.0, 2.0, 4.0], level=level, density=density, dist="o",
                     params={"scale": 0.5})
        write_series(root, "$\\frac{1}{0}$", [0.5, 1.0], level=level, density=density, dist="o")  # mathtext
    runner = CliRunner()
    for name, magic in (("p.png", b"\x89PNG"), ("p.svg", b"<?xml")):
        result = runner.invoke(cli, ["plot", "--results", str(root), "--output", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).read_bytes().startswith(magic)
    svg = (tmp_path / "p.svg").read_text()
    assert "<text" in svg and "control (harness)" in svg and "one seed" in svg  # text kept as text
    assert "imp-rewind-0 (IMP rewound to 0): mean" in svg and "accuracy vs. sparsity" not in svg  # one figure
    bad = runner.invoke(cli, ["plot", "--results", str(root), "--output", str(tmp_path / "p.jpg")])
    assert bad.exit_code == 1 and ".png, .svg, .pdf" in bad.stderr
    write_series(root, "x", [1.0, 2.0], preset="mnist1d-resnet", experiment=get_preset("mnist1d-resnet").experiment,
                 level=4, density=0.0256, dist="o")
    several = runner.invoke(cli, ["plot", "--results", str(root), "--output", str(tmp_path / "q.png")])
    assert several.exit_code == 1 and "--preset" in several.stderr
    assert runner.invoke(cli, ["plot", "--results", str(root), "--preset", "smoke", "--output",
                               str(tmp_path / "q.png")]).exit_code == 0


def test_accuracy_vs_sparsity_data(tmp_path):
    from bench.report.figures import accuracy_vs_sparsity
    from bench.stats import summarize

    tickets = {1: [70.0, 72.0, 74.0], 2: [60.0, 62.0, 67.0]}
    for level, density in ((1, 0.5), (2, 0.25)):
        for seed, ticket in enumerate(tickets[level]):
            write(tmp_path, record("imp-rewind-0", seed=seed, drop=seed + 1.0, ticket=ticket, level=level,
                                   density=density))
            if seed < 2:  # noise on seeds 0 and 1 only: the ticket line still has every seed
                write(tmp_path, record("noise", seed=seed, drop=seed + 4.0, ticket=ticket, level=level,
                                       density=density, dist="o"))
        write_series(tmp_path / "other", "imp-rewind-0", [9.0, 9.0], level=level, density=density,
                     environment={**record()["environment"], "cpu_capability": "AVX512"})  # another kernel class
    curve = accuracy_vs_sparsity(from_folders([tmp_path]), default_level=2)
    assert curve.hardware == "cpu:AVX2:threads=1:x86_64" and curve.levels == ((1, 50.0), (2, 25.0))
    assert [(line.kind, line.label) for line in curve.lines] == [
        ("ticket", "ticket, rewound to k = 5"), ("reference", "imp-rewind-0"), ("perturbation", "noise")]
    ticket, reference, noise = curve.lines
    assert [p.level for p in ticket.points] == [1, 2] and [p.percent_remaining for p in ticket.points] == [50.0, 25.0]
    for i, level in enumerate((1, 2)):
        t = tickets[level]
        assert ticket.points[i].accuracy == summarize(t)
        assert reference.points[i].accuracy == summarize([t[0] - 1, t[1] - 2, t[2] - 3])
        assert noise.points[i].accuracy == summarize([t[0] - 4, t[1] - 5])
    assert curve.dense == summarize([70.0, 70.0, 70.0])  # record()'s dense accuracy, each seed once


@pytest.mark.slow
def test_end_to_end_run_then_leaderboard(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    cache = tmp_path / "cache"
    runner = CliRunner()
    ran = runner.invoke(cli, ["run", "--preset", "smoke", "--seeds", "2", "--device", "cpu", "--cache-dir",
                              str(cache), "--data-dir", str(data_dir), "--json"])
    assert ran.exit_code == 0, ran.output
    loaded = load_results([cache / "results"])
    assert loaded.problems == [] and len(loaded.results) == 2  # what the runner writes fits the schema
    shown = runner.invoke(cli, ["leaderboard", "--cache-dir", str(cache)])
    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.stdout.splitlines() if "identity" in line)
    assert re.search(r"n = 2\s+seeds", shown.stdout), shown.stdout  # a seed count every row shares: in the title
    data = json.loads(runner.invoke(cli, ["leaderboard", "--cache-dir", str(cache), "--format", "json"]).stdout)
    (ident,) = data["boards"][0]["rows"]
    assert (ident["perturbation"], ident["n"], ident["control"]) == ("identity", 2, True)


def test_committed_regeneration_mechanics(tmp_path):
    from bench.report.committed import README_END, README_START, committed, write_committed

    folder = tmp_path / "leaderboard"
    write_series(folder / "results", "identity", [0.0, 0.0, 0.0])
    write_series(folder / "results", "noise", [2.0, 3.0, 4.0], dist="o")
    write_series(folder / "results", "two-seeds", [2.0, 3.0], dist="o")  # below the committed minimum of 3
    (folder / "README.md").write_text(f"# intro\n\n{README_START}\nstale\n{README_END}\n\ntail\n")
    write_committed(folder)
    md = (folder / "leaderboard.md").read_text()
    assert "| 1 | noise |" in md and "two-seeds" in md and "fewer than the minimum 3" in md
    readme = (folder / "README.md").read_text()
    assert readme.startswith("# intro\n") and readme.endswith(f"{README_END}\n\ntail\n") and "stale" not in readme
    assert "### smoke: 25.0%" in readme  # sections one level below the README's own headings
    again = committed(folder)  # regenerating what was just written changes nothing
    assert all((folder / name).read_text() == text for name, text in again.items())
    (folder / "results" / "broken.json").write_text("{")
    with pytest.raises(BenchError, match="broken.json"):
        committed(folder)  # the committed tables never silently skip a file
