"""The archive view the meta agent reads: every version, its change, its selection results and an account of
each failed problem, but never a held-out problem nor what a scorer printed (it can quote hidden tests)."""

from __future__ import annotations

import json


from sica.archive import Run
from sica.config import UtilitySettings
from sica.loop.archive_view import write_archive_view
from sica.runner.environments import seed_agent_dir
from sica.workspace.trees import copy_tree
from tests.support.runs import Result

HIDDEN = "assert candidate([1, 2]) == 3  # hidden test line"
TRACE = "## Problem\n\nsum a list\n\n## How it ended\n\ntimeout: ran out of time\n"


def result(problem_id: str, part: str, status: str, score: float, seconds: float = 0.0) -> Result:
    return Result(problem_id, score, part, "humaneval:2", status, 0.0, seconds, details=HIDDEN,
                  trace_summary=TRACE if score < 1 else "")


def make_view(tmp_path):
    with Run.create(tmp_path / "run", seed_agent_dir(), {}) as run:
        code = tmp_path / "v1"
        copy_tree(seed_agent_dir(), code)
        (code / "description.txt").write_text("agent 1: plans first\n")
        run.add_version(0, code, "agent 1: plans first", "- plans before editing")
        run.add_version(0, code, "agent 2: broken", "- broke it", invalid_reason="its own tests fail")
        run.record_evaluation(0, result("humaneval/0", "selection", "done", 1.0))
        run.record_evaluation(0, result("humaneval/1", "selection", "timeout", 0.0, seconds=300))
        run.record_evaluation(0, result("humaneval/9", "holdout", "timeout", 0.0))
        run.record_evaluation(1, result("humaneval/0", "selection", "done", 1.0))
        run.record_evaluation(0, result("humaneval/2", "selection", "tampered", 0.0))
        return write_archive_view(run, tmp_path / "view", UtilitySettings())


def test_the_view_shows_versions_changes_and_selection_results_only(tmp_path):
    view = make_view(tmp_path)
    table = (view / "versions.md").read_text()
    # agent 0: utilities 0.5 + 0.25 + 0.25 = 1.0, (0 + 0.25 + 0) × 0.5 = 0.125 and the tampered one's 0 + 0.25 +
    # 0.25 = 0.5 → mean 0.542; score 1/3; one tampered attempt
    assert "| agent-0 |  | valid | 0.542 | 0.333 | humaneval:2 0.333 | 3 | 1 | $0.0000 | 300 s |" in table
    assert "| agent-1 | agent-0 | valid | 1.000 | 1.000 | humaneval:2 1.000 | 1 | 0 | $0.0000 | 0 s | agent 1: " in table
    assert "| agent-2 | agent-0 | invalid: its own tests fail | – | – |  | 0 | 0 |" in table
    assert "+agent 1: plans first" in (view / "agent-1" / "diff.patch").read_text()
    assert (view / "agent-1" / "CHANGELOG.md").read_text() == "- plans before editing\n"
    everything = "".join(p.read_text() for p in view.rglob("*") if p.is_file())
    assert "humaneval/9" not in everything
    assert all(p.stat().st_mode & 0o004 for p in view.rglob("*"))  # readable by the sandbox user


def test_each_failed_problem_has_an_account_of_its_attempt_but_never_what_its_scorer_printed(tmp_path):
    view = make_view(tmp_path)
    lines = [json.loads(line) for line in (view / "agent-0" / "results.jsonl").read_text().splitlines()]
    assert [line.get("failure") for line in lines] == [None, "failures/humaneval_1.md", "failures/humaneval_2.md"]
    failure = (view / "agent-0" / "failures" / "humaneval_1.md").read_text()
    assert failure.startswith("# humaneval/1 (humaneval:2)\n\nscore 0.000 · timeout · $0.0000 · 300 s")
    assert TRACE in failure and "The hidden checks gave 0.000" in failure
    tampered = (view / "agent-0" / "failures" / "humaneval_2.md").read_text()
    assert "caught this attempt tampering" in tampered
    everything = "".join(p.read_text() for p in view.rglob("*") if p.is_file())
    assert HIDDEN not in everything
    assert not (view / "agent-1" / "failures").exists()  # it solved its one problem


def test_a_versions_diff_is_taken_once_and_kept_with_the_run(tmp_path, monkeypatch):
    """Each meta step writes a new view: versions never change, so their diffs come from the run folder."""
    view = make_view(tmp_path)
    kept = tmp_path / "run" / "diffs" / "agent-1.patch"
    assert kept.read_text() == (view / "agent-1" / "diff.patch").read_text()

    def asked_again(self, number):
        raise AssertionError(f"agent-{number}'s diff was taken again")

    monkeypatch.setattr(Run, "diff", asked_again)
    with Run.open(tmp_path / "run") as run:
        again = write_archive_view(run, tmp_path / "view-2", UtilitySettings())
    assert (again / "agent-1" / "diff.patch").read_text() == kept.read_text()
