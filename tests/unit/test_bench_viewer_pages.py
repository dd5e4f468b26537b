"""bench/viewer_pages.py runs as a user would run it, on a small run (`--versions 5 --problems 10`), and prints a
line a page with its figures; how fast the pages are is not judged here (a benchmark is not timed in tests), but
the content checks the script makes on its pages must hold."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "viewer_pages.py"
PAGES = [
    "runs list, first visit",
    "runs list",
    "run",
    "version (10 results)",
    "version, filtered",
    "attempt (2000 events, page 1)",
    "attempt, events page 10",
    "meta step",
    "evaluations list",
]


def test_the_bench_prints_a_line_a_page(tmp_path: Path) -> None:
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]))
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--versions",
            "5",
            "--problems",
            "10",
            "--repeats",
            "1",
            "--keep",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "made a run of 5 versions × 10 problems" in done.stdout
    for name in PAGES:
        assert re.search(rf"^{re.escape(name)}\s+\d+\s+\d+\s+1000\s+(PASS|FAIL)", done.stdout, re.MULTILINE), name
    assert re.search(r"^run\s+.*\s\d+ ms$", done.stdout, re.MULTILINE)  # the baseline beside the run page
    assert (tmp_path / "run" / "runs" / "big" / "run.sqlite").is_file()
