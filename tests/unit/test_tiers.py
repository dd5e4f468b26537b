"""The tiers' markers: a test is `sandbox` by what its code (and the test-suite helpers it calls) uses."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run_sica
from tests.support.tiers import uses_sandbox


def _evaluates(home: Path) -> None:
    run_sica(home, "eval", "-b", "humaneval:1")


def _reports(home: Path) -> None:
    run_sica(home, "report", "r1")


def _through_a_helper(home: Path) -> None:
    _evaluates(home)


#: Looked up by name, so that these tests' own code reaches none of them (they stay in the fast tier).
SAMPLES = {"evaluates": _evaluates, "reports": _reports, "through a helper": _through_a_helper}


def test_a_sica_command_that_runs_agents_marks_the_test_and_one_that_does_not_leaves_it_fast():
    assert uses_sandbox([SAMPLES["evaluates"]], [])
    assert not uses_sandbox([SAMPLES["reports"]], ["tmp_path"])


def test_helpers_are_followed_and_sandbox_fixtures_mark_the_test():
    assert uses_sandbox([SAMPLES["through a helper"]], [])
    assert uses_sandbox([SAMPLES["reports"]], ["tmp_path", "sandbox"])
