"""Scorer scripts: standalone modules (standard library only, Python 3.11) that the sandbox's `python3` runs
as `score.py TREE` on a copy of the final tree, their data beside them in a hidden folder; each prints its
details and a last line `score: X` and exits 0 iff solved. The harness imports them only to test their
formulas and to share their definitions (what a change is) with the generators."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import ModuleType

from sica.benchmarks.base import Score, run_checks, score_from_output
from sica.sandbox import Sandbox


def run_scorer(sandbox: Sandbox, final_tree: Path, script: ModuleType, data: dict[str, str], *,
               wall_s: float = 60.0) -> Score:
    """Run `script` (one of these modules) sandboxed on `final_tree`, from a hidden folder holding it as
    `score.py` and `data` (file name → text)."""
    if script.__file__ is None:
        raise ValueError(f"{script.__name__} has no source file to run")
    with tempfile.TemporaryDirectory(prefix="sica-scorer-") as scratch:
        hidden = Path(scratch)
        for name, text in {"score.py": Path(script.__file__).read_text(encoding="utf-8"), **data}.items():
            (hidden / name).write_text(text, encoding="utf-8")
        result = run_checks(sandbox, final_tree, hidden, lambda tree: ("python3", str(hidden / "score.py"), str(tree)),
                            wall_s=wall_s)
    return score_from_output(result)
