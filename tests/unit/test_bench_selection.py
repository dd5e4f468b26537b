"""bench/selection.py runs as a user would run it (`--quick`) and prints its table with every scheme; what it
measures is not checked here (a benchmark is not timed or judged in tests)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "selection.py"
SCHEMES = [
    "today: sica [5] promising",
    "sica [5, 15] sequential",
    "sica [5, 15] sequential remat-all",
    "sica [5, 15] sequential rematches=0",
    "sica [5] sequential",
    "greedy [5, 15] sequential",
    "dgm [5, 15] dgm",
    "hgm [5, 15] sequential α=0.6",
]


def run_quick(*extra: str) -> str:
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", *extra],
        capture_output=True,
        text=True,
        env=environ,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_quick_run_prints_every_scheme_against_today() -> None:
    out = run_quick()
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("scheme"))
    columns = (
        "P(best=true)",
        "ΔP vs today",
        "true U",
        "regret",
        "evals",
        "×today",
        "better",
        "remat",
        "steps",
        "verdict",
    )
    for column in columns:
        assert column in header
    rows = {
        scheme: next((line for line in lines if re.match(re.escape(scheme) + r" +\d", line)), None)
        for scheme in SCHEMES
    }
    assert all(rows.values()), rows
    assert rows["today: sica [5] promising"].rstrip().endswith("baseline")
    number = r"[-+]?\d+\.\d+"
    figures = rf"\s+{number} \[{number}, {number}\]\s+{number}\s+{number} ± {number}\s+{number}\s+{number} ± {number}"
    for scheme, line in rows.items():
        assert line is not None
        assert re.match(figures + rf"\s+{number}\s+\d+(\s+{number}){{7}}\s+\S", line[len(scheme) :]), line
    # the last two figures: rematches and HGM evaluation steps per run
    extra = {scheme: re.findall(number, line[len(scheme) :])[-2:] for scheme, line in rows.items() if line}
    assert float(extra["sica [5, 15] sequential rematches=0"][0]) == 0.0
    assert all(float(steps) == 0.0 for scheme, (_, steps) in extra.items() if not scheme.startswith("hgm"))
    assert any(line.startswith("default ([loop] policy, stages, staging): sica [5, 15] sequential") for line in lines)
    assert any(line.startswith("highest true utility: ") for line in lines)


def test_quick_sweep_is_reproducible() -> None:
    """The sweep's rows follow the table, and the same seed gives the same figures (the CPU time aside)."""
    first, second = run_quick("--sweep", "--seed", "3"), run_quick("--sweep", "--seed", "3")
    assert "sweep (" in first
    assert "sica [5, 15] level" in first and "sica, whole mix at once (no looks)" in first
    assert first.splitlines()[:-1] == second.splitlines()[:-1]
