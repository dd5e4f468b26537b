"""Scorer scripts: standalone modules (standard library only, Python 3.11) that the sandbox's `python3` runs
as `score.py TREE`, their input (what the harness read of the agent's output, and the hidden target or expected
place) as one JSON object on standard input; each prints its details and a last line `score: X` and exits 0 iff
solved. The harness imports them only to test their formulas and to share their definitions (what a change is)
with the generators."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

from sica.benchmarks.base import Score, run_checks, score_from_output
from sica.sandbox import Sandbox


def run_scorer(sandbox: Sandbox, script: ModuleType, payload: Mapping[str, object], *, wall_s: float = 60.0) -> Score:
    """Run `script` (one of these modules) sandboxed, `payload` as JSON on its standard input, on an empty tree:
    the hidden material is in no file, and none of the agent's files is there to be read, linked or run (the
    harness hands the scorer what it read of them itself). `python3 -I`: no environment, no user site, not even
    the script's own folder on the import path."""
    if script.__file__ is None:
        raise ValueError(f"{script.__name__} has no source file to run")
    with (
        tempfile.TemporaryDirectory(prefix="sica-scorer-") as scorer,
        tempfile.TemporaryDirectory(prefix="sica-scorer-tree-") as empty,
    ):
        hidden = Path(scorer)
        (hidden / "score.py").write_text(Path(script.__file__).read_text(encoding="utf-8"), encoding="utf-8")
        result = run_checks(
            sandbox,
            Path(empty),
            hidden,
            lambda tree: ("python3", "-I", str(hidden / "score.py"), str(tree)),
            wall_s=wall_s,
            stdin=json.dumps(payload).encode("utf-8"),
        )
    return score_from_output(result)
