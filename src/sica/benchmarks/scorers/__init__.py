"""Scorer scripts: standalone modules (standard library only, Python 3.11) that the sandbox's `python3` runs
as `score.py TREE`, their input (what the harness read of the agent's output, and the hidden target or expected
place) as one JSON object on standard input; each prints its details and a last line `score: X` and exits 0 iff
solved. The harness imports them only to test their formulas and to share their definitions (what a change is)
with the generators."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

from sica.benchmarks.base import Problem, Score, fingerprint, run_checks, score_from_output
from sica.sandbox import Sandbox

#: What a scorer script is given for one attempt, read from the final tree and the answer by the harness; or,
#: instead, the score the attempt gets without running the script (what the agent left could not be read).
ScorerInput = Callable[[Path, str | None], Mapping[str, object] | Score]


def script_problem(
    problem_id: str,
    benchmark: str,
    statement: str,
    lay_out: Callable[[Path], None],
    script: ModuleType,
    scorer_input: ScorerInput,
    decided_by: tuple[str, ...],
) -> Problem:
    """A problem scored by `script` (one of these modules) on what `scorer_input` reads of the attempt. Its
    fingerprint digests `decided_by` (what decides the score besides the statement: the original, the target,
    the expected place) and the script's code."""
    source = _source(script)

    def score(sandbox: Sandbox, final_tree: Path, answer: str | None) -> Score:
        given = scorer_input(final_tree, answer)
        return given if isinstance(given, Score) else run_scorer(sandbox, script, given)

    return Problem(problem_id, benchmark, statement, lay_out, score, fingerprint=fingerprint(*decided_by, source))


def run_scorer(sandbox: Sandbox, script: ModuleType, payload: Mapping[str, object], *, wall_s: float = 60.0) -> Score:
    """Run `script` (one of these modules) sandboxed, `payload` as JSON on its standard input, on an empty tree:
    the hidden material is in no file, and none of the agent's files is there to be read, linked or run (the
    harness hands the scorer what it read of them itself). `python3 -I`: no environment, no user site, not even
    the script's own folder on the import path."""
    source = _source(script)
    with (
        tempfile.TemporaryDirectory(prefix="sica-scorer-") as scorer,
        tempfile.TemporaryDirectory(prefix="sica-scorer-tree-") as empty,
    ):
        hidden = Path(scorer)
        (hidden / "score.py").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
        result = run_checks(
            sandbox,
            Path(empty),
            hidden,
            lambda tree: ("python3", "-I", str(hidden / "score.py"), str(tree)),
            wall_s=wall_s,
            stdin=json.dumps(payload).encode("utf-8"),
        )
    return score_from_output(result)


def _source(script: ModuleType) -> Path:
    if script.__file__ is None:
        raise ValueError(f"{script.__name__} has no source file to run")
    return Path(script.__file__)
