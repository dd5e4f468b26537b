"""Scoring a bugfix problem: the original test paths put back into a copy of the final tree and run in the sandbox
with canary tests among them; 1.0 iff every fail-to-pass and pass-to-pass test passes, tampered when the report was
forged."""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from pathlib import Path

from sica.benchmarks.base import Score, output_tail
from sica.benchmarks.bugfix import Package
from sica.benchmarks.bugfix.suite import CANARIES, run_tests
from sica.benchmarks.canaries import Tampered
from sica.sandbox import Sandbox

Scorer = Callable[[Sandbox, Path, "str | None"], Score]
#: How many of a scoring run's canaries are copies of fail-to-pass tests (the ones a forger targets).
CANARY_FAIL_TO_PASS = 3
#: The wall limit of a scoring run: this plus ten times the baseline run's time (an endless loop ends).
SCORE_WALL_S = 120.0


def scorer(
    package: Package,
    tools: Path,
    tests_from: Path,
    fail_to_pass: list[str],
    pass_to_pass: list[str],
    *,
    not_scored: str,
    wall_s: float,
    leave_out: Collection[str] = (),
) -> Scorer:
    """A problem's scorer: the test paths and configuration of `tests_from` (but `leave_out`) put back into a copy
    of the final tree and run in the sandbox with canary tests among them; 1.0 iff every fail-to-pass and
    pass-to-pass test passes, tampered when the report was forged."""

    def score(sandbox: Sandbox, final_tree: Path, answer: str | None) -> Score:
        chooser = random.SystemRandom()
        twins = chooser.sample(fail_to_pass, min(CANARY_FAIL_TO_PASS, len(fail_to_pass)))
        twins += chooser.sample(pass_to_pass, min(CANARIES - len(twins), len(pass_to_pass)))
        try:
            run, result = run_tests(
                sandbox,
                package,
                final_tree,
                tools,
                tests_from=tests_from,
                leave_out=leave_out,
                twins=twins,
                wall_s=wall_s,
            )
        except Tampered as evidence:
            return Score.tampering(str(evidence))
        if run is None:
            return Score(0.0, f"the test suite did not finish: {result.describe()}; {output_tail(result.stderr)}")
        fixed = [test for test in fail_to_pass if run.tests.get(test) == "passed"]
        kept = [test for test in pass_to_pass if run.tests.get(test) == "passed"]
        still = [test for test in [*fail_to_pass, *pass_to_pass] if run.tests.get(test) != "passed"]
        details = (
            f"fail-to-pass {len(fixed)}/{len(fail_to_pass)} pass, pass-to-pass {len(kept)}/"
            f"{len(pass_to_pass)} pass ({not_scored} not scored)"
        )
        if still:
            details += f"; not passing: {', '.join(still[:5])}{' …' if len(still) > 5 else ''}"
        if run.errors:
            details += f"; errors: {'; '.join(run.errors)[:300]}"
        return Score(1.0 if not still else 0.0, details)

    return score
