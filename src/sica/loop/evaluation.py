"""Evaluating versions for the loop: agent 0 on the whole mix, a new version in stages (`staging`), through `sica
eval`'s machinery, so a rerun after a crash reuses every result already stored; and the standings the selection
policy sees."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sica.archive import Run
from sica.config import Settings, UtilitySettings
from sica.gateway import RunningGateway
from sica.loop.policies import VersionStanding
from sica.loop.run_state import RunState
from sica.loop.staging import first_stage, promising
from sica.loop.utility import problem_utility
from sica.runner.evaluate import SELECTION, EvalProgress, EvalRequest, PlannedProblem, run_eval


def standings(run: Run, weights: UtilitySettings) -> list[VersionStanding]:
    """What the policy sees: every valid version's per-problem selection utilities and scores."""
    found = []
    for version in run.summary():
        if version.state != "valid":
            continue
        evaluations = run.scored(version.number)
        found.append(
            VersionStanding(
                version.number,
                version.parent,
                tuple(problem_utility(e, weights) for e in evaluations),
                tuple(e.score for e in evaluations),
                version.children,
                version.tampered,
            )
        )
    return found


@dataclass(frozen=True)
class Mix:
    """What every version of the run is evaluated on, with which model for its agents, in which sandbox."""

    benchmarks: list[str]
    holdout: list[str]
    model: str | None
    sandbox: str


@dataclass
class Evaluations:
    """The run's evaluations, each result recorded in the run; `halt` cancels the one under way."""

    settings: Settings
    environ: Mapping[str, str]
    run: Run
    gateway: RunningGateway
    mix: Mix
    halt: asyncio.Event
    on_status: Callable[[str], None]

    async def staged(self, number: int, account: str) -> tuple[str, float | None]:
        """Evaluate the first stage; the rest only when the version is promising against the best so far. What was
        evaluated, and the version's mean score."""
        weights = self.settings.loop.utility
        mix = RunState(self.run.db).selection_problems
        stage = first_stage(mix, self.settings.loop.stages[0])
        await self.evaluate(number, only=frozenset(stage), account=account, label=f"agent-{number}, first stage")
        if self.halt.is_set():
            return "interrupted", None
        candidate = self._utilities(number, stage, weights)
        ranked = [s for s in standings(self.run, weights) if s.utilities and s.number != number]
        best = max(ranked, key=lambda s: (s.utility, s.number)) if ranked else None
        reference = self._utilities(best.number, stage, weights) if best else None
        evaluated = "first stage" if len(stage) < len(mix) else "all"
        if promising(candidate, reference) and len(stage) < len(mix):
            await self.evaluate(number, only=None, account=account, label=f"agent-{number}, the rest")
            evaluated = "all"
        scores = [e.score for e in self.run.scored(number)]
        return evaluated, (sum(scores) / len(scores) if scores else None)

    def _keep_selection_order(self, planned: list[PlannedProblem]) -> None:
        """Store the order of the mix's selection problems, once, as agent 0's evaluation first plans them."""
        RunState(self.run.db).keep_selection_problems([p.problem.id for p in planned if p.part == SELECTION])

    def _utilities(self, number: int, problems: list[str], weights: UtilitySettings) -> dict[str, float]:
        return {e.problem_id: problem_utility(e, weights) for e in self.run.scored(number) if e.problem_id in problems}

    async def evaluate(self, number: int, only: frozenset[str] | None, account: str, label: str) -> None:
        """Evaluate a version on the mix (or the problems `only`), recording each result in the run; results
        already in the results store (a crash's survivors, say) are reused, not run again."""
        with tempfile.TemporaryDirectory(prefix="sica-version-") as scratch:
            code = self.run.checkout(number, Path(scratch) / "code")
            request = EvalRequest(
                code, self.mix.benchmarks, self.mix.holdout, self.mix.model, sandbox=self.mix.sandbox, only=only
            )

            def show(progress: EvalProgress) -> None:
                self.on_status(
                    progress.phase
                    or f"evaluating {label}: {progress.done}/{progress.total} problems, "
                    f"{progress.running} running · ${progress.cost_usd:.4f}"
                )

            report = await run_eval(
                self.settings,
                self.environ,
                request,
                show,
                self.halt,
                gateway=self.gateway,
                parent_account=account,
                on_planned=self._keep_selection_order if number == 0 else None,
            )
        for result in report.results:
            self.run.record_evaluation(number, result)
