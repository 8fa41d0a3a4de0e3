"""The HTML leaderboard in a real headless browser (Debian's chromium): it loads without console errors or
content-security-policy violations, its script sorts, and screenshots are kept as test artefacts."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bench.report.html import render_html
from bench.report.model import from_folders
from test_leaderboard import write_series

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]
# what Chromium logs for a script error or a blocked script/style (a wrong hash in the policy shows here)
ERRORS = re.compile(r"Uncaught|Refused to|Content Security Policy|CONSOLE.*[Ee]rror")

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(),
                                 reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")]


def chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"  # a fresh profile per call: nothing from another run is reused
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                           *args, url], capture_output=True, text=True, timeout=120)


@pytest.fixture
def page(tmp_path) -> Path:
    results = tmp_path / "results"
    write_series(results, "identity", [0.0, 0.0, 0.0])
    write_series(results, "zeta-noise", [3.0, 4.5, 5.0], params={"scale": 0.5}, dist="o")
    write_series(results, "alpha-flip", [1.0, 1.5, 2.0], dist="o")
    write_series(results, "imp-rewind-0", [0.5, 0.8, 1.0])  # the paper's reference, marked on its board
    write_series(results, "<b>hostile</b>", [2.0, 2.5, 3.0], dist='"><img src=x>')
    write_series(results, "identity", [0.0, 0.0, 0.0], level=1, density=0.5)  # a second board (sparsity)
    path = tmp_path / "leaderboard.html"
    path.write_text(render_html(from_folders([results], min_seeds=2)), encoding="utf-8")
    return path


def _names(dom: str) -> list[str]:
    board = dom.split('id="board-2"')[1].split("</section>")[0]  # level 2; board-1 is level 1 (sparsity 50%)
    return re.findall(r'<td class="perturbation[^"]*"[^>]*>(?:<a [^>]*>|<span class="name">)([^<]*)</', board)


def test_page_loads_without_errors_and_sorts(page, tmp_path):
    ranked = chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert ranked.returncode == 0, ranked.stderr[-2000:]
    assert not ERRORS.findall(ranked.stderr), ranked.stderr[-2000:]
    assert '<div id="controls">' in ranked.stdout  # the script ran: it shows the controls it drives
    assert _names(ranked.stdout) == ["zeta-noise", "&lt;b&gt;hostile&lt;/b&gt;", "alpha-flip", "imp-rewind-0",
                                     "identity"]
    assert '<tr class="control reference' in ranked.stdout and '<p class="reference">Reference, IMP' in ranked.stdout
    assert "No IMP-rewound-to-0 reference at this sparsity" in ranked.stdout.split('id="board-2"')[0]  # level 1

    by_name = chromium(tmp_path, page.as_uri() + "#sort=perturbation", "--dump-dom")
    assert not ERRORS.findall(by_name.stderr), by_name.stderr[-2000:]
    assert _names(by_name.stdout) == ["&lt;b&gt;hostile&lt;/b&gt;", "alpha-flip", "identity", "imp-rewind-0",
                                      "zeta-noise"]
    assert 'aria-sort="ascending"' in by_name.stdout
    low_first = chromium(tmp_path, page.as_uri() + "#sort=mean-drop", "--dump-dom")
    assert _names(low_first.stdout) == ["identity", "imp-rewind-0", "alpha-flip", "&lt;b&gt;hostile&lt;/b&gt;",
                                        "zeta-noise"]


def test_screenshots(page, tmp_path):
    for width in (1400, 800):
        shot = tmp_path / f"leaderboard-{width}.png"
        done = chromium(tmp_path, page.as_uri(), f"--window-size={width},900", f"--screenshot={shot}")
        assert done.returncode == 0 and not ERRORS.findall(done.stderr), done.stderr[-2000:]
        assert shot.read_bytes().startswith(b"\x89PNG")  # kept under the pytest tmp dir as the artefact
