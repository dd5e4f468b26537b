"""HGM's evaluation steps in the loop: while evaluations^alpha < versions, a version not yet run on the whole mix
solves one more of its problems; a real run folder, the evaluation itself replaced by recording a result."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sica.archive import Run
from sica.config import LoopSettings, Settings
from sica.loop.evaluation import Evaluations, Mix, standings
from sica.runner.environments import seed_agent_dir
from tests.support.runs import Result, edited

MIX = [f"toy/{index}" for index in range(6)]


class RecordingEvaluations(Evaluations):
    """Evaluations whose `evaluate` records a result at once (version 2 solves everything, the others nothing)
    and notes what it was asked."""

    asked: list[tuple[int, str]]

    async def evaluate(self, number: int, only: frozenset[str] | None, account: str, label: str,
                       repeat: int = 0) -> None:
        for problem in sorted(only or MIX):
            self.asked.append((number, problem))
            self.run.record_evaluation(number, Result(problem, 1.0 if number == 2 else 0.0), repeat)


def hgm_run(folder: Path, alpha: float) -> RecordingEvaluations:
    run = Run.create(folder, seed_agent_dir(), {})
    for problem in MIX:
        run.record_evaluation(0, Result(problem, 0.5))
    for number, base in ((1, 0), (2, 0), (3, 1)):
        code = edited(run, base, folder.parent / f"{folder.name}-e{number}", f"v{number}")
        assert run.add_version(base, code, "", "") == number
    for problem in MIX:
        run.record_evaluation(1, Result(problem, 0.0))
    for number in (2, 3):
        for problem in MIX[:2]:
            run.record_evaluation(number, Result(problem, 1.0 if number == 2 else 0.0))
    settings = Settings(loop=LoopSettings(hgm_alpha=alpha, seed=5))
    evaluations = RecordingEvaluations(settings, run, None, Mix([], [], None, "bwrap"),  # type: ignore[arg-type]
                                       asyncio.Event(), lambda status: None)
    evaluations.asked = []
    return evaluations


def test_hgm_evaluates_unfinished_versions_one_problem_a_step_until_its_rule_says_expand(tmp_path: Path):
    evaluations = hgm_run(tmp_path / "r", alpha=0.3)
    # 3 versions after agent 0, 6 + 2 + 2 = 10 evaluations: 10^0.3 = 2.0 < 3, so evaluate; until versions 2 and 3
    # have run the whole mix (18 evaluations: 18^0.3 = 2.4, still < 3, but nothing is left to evaluate).
    steps = asyncio.run(evaluations.hgm_evaluation_steps("account"))
    assert steps == 8 and len(evaluations.asked) == 8
    assert {number for number, _ in evaluations.asked} == {2, 3}
    assert len(set(evaluations.asked)) == 8  # one new problem a step, never one run before
    mix = frozenset(MIX)
    assert all(s.complete(mix) for s in standings(evaluations.run, evaluations.settings.loop.utility))
    # Thompson sampling on its own results favours version 2 (all solved) before version 3 (none).
    assert [number for number, _ in evaluations.asked[:4]].count(2) >= 3
    assert asyncio.run(evaluations.hgm_evaluation_steps("account")) == 0  # nothing unfinished: expand
    evaluations.run.close()

    again = hgm_run(tmp_path / "again", alpha=0.3)  # the same run, from scratch: the same steps, in order
    asyncio.run(again.hgm_evaluation_steps("account"))
    assert again.asked == evaluations.asked
    again.run.close()


def test_hgm_expands_at_once_when_evaluations_to_the_alpha_reach_the_versions(tmp_path: Path):
    evaluations = hgm_run(tmp_path / "r", alpha=0.6)  # 10^0.6 = 3.98 ≥ 3
    assert asyncio.run(evaluations.hgm_evaluation_steps("account")) == 0 and evaluations.asked == []
    evaluations.run.close()
