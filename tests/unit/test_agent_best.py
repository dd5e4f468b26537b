"""`--agent best` and `RUN:best` resolve to the loop's best version (`loop/comparison.py`), the one the report and
the policies name: never a version evaluated on part of the mix, however well it did there."""

from __future__ import annotations

from pathlib import Path

import pytest

from sica.archive import Run
from sica.cli.agent_ref import agent_folder
from sica.cli.state import UserError
from sica.config import LoopSettings, Settings
from sica.runner.environments import seed_agent_dir
from tests.support.runs import Result, edited

MIX = [f"toy/{index}" for index in range(6)]


def test_best_is_the_loops_best_not_the_highest_mean_over_what_a_version_ran(tmp_path: Path):
    runs = tmp_path / "runs"
    settings = Settings(loop=LoopSettings(runs_dir=runs))
    with Run.create(runs / "r1", seed_agent_dir(), {}) as run:
        for problem in MIX:
            run.record_evaluation(0, Result(problem, 1.0 if problem in MIX[:2] else 0.0))
        for number in (1, 2):
            code = edited(run, 0, tmp_path / f"e{number}", f"agent {number}")
            assert run.add_version(0, code, f"agent {number}", "") == number
        for problem in MIX[:2]:  # stopped early after two easy problems, all solved: a mean of 1.0
            run.record_evaluation(1, Result(problem, 1.0))
    with agent_folder("r1:best", settings) as folder:
        assert "agent 1" not in (folder / "CHANGELOG.md").read_text()  # agent 0, mean 0.33 over the whole mix

    with Run.open(runs / "r1") as run:
        for problem in MIX:  # run on the whole mix, better than agent 0
            run.record_evaluation(2, Result(problem, 1.0 if problem in MIX[:3] else 0.0))
    with agent_folder("best", settings) as folder:
        assert (folder / "CHANGELOG.md").read_text().endswith("agent 2\n")


def test_best_of_a_run_with_nothing_evaluated_on_the_whole_mix_says_what_to_do(tmp_path: Path):
    runs = tmp_path / "runs"
    Run.create(runs / "r1", seed_agent_dir(), {}).close()
    with pytest.raises(UserError, match="no valid version evaluated on the whole selection mix yet: name a version"):
        with agent_folder("r1:best", Settings(loop=LoopSettings(runs_dir=runs))):
            pass
