"""Screenshots of the committed leaderboard page at 1400 and 800 px (docs/figures/leaderboard-*.png).

    python scripts/leaderboard_screenshots.py [--restamp]

Renders leaderboard/results with the committed settings and shoots it with Debian's headless Chromium.
--restamp marks every record with this bench's protocol version first (in a temporary copy), so results
written before the current protocol still show as ranked rows: a preview of the layout, not a ranking.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.provenance import PROTOCOL_VERSION
from bench.report.html import render_html
from bench.report.model import COMMITTED_MIN_SEEDS, from_folders

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def main(restamp: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = ROOT / "leaderboard" / "results"
        if restamp:
            for path in results.rglob("*.json"):
                record = json.loads(path.read_text())
                record["protocol_version"] = PROTOCOL_VERSION
                target = tmp / "results" / path.relative_to(results)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(record))
            results = tmp / "results"
        page = tmp / "leaderboard" / "leaderboard.html"  # ../plugins/ resolves as in the repository
        page.parent.mkdir()
        page.write_text(render_html(from_folders([results], strict=True, min_seeds=COMMITTED_MIN_SEEDS)))
        for width in (1400, 800):
            out = ROOT / "docs" / "figures" / f"leaderboard-{width}.png"
            subprocess.run(["/usr/bin/chromium", *FLAGS, f"--user-data-dir={tmp / 'profile'}",
                            f"--window-size={width},900", f"--screenshot={out}", page.as_uri()],
                           check=True, capture_output=True, timeout=120)
            print(f"wrote {out}")


if __name__ == "__main__":
    main("--restamp" in sys.argv[1:])
