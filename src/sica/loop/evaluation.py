"""Evaluating versions for the loop: agent 0 on the whole mix, a new version in stages (`staging`), through `sica
eval`'s machinery, so a rerun after a crash reuses every result already stored; and the standings the selection
policy sees."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sica.archive import ArchiveError, Run
from sica.config import Settings, UtilitySettings
from sica.gateway import RunningGateway
from sica.loop.comparison import Standing, best_version
from sica.loop.staging import Look, dgm_look, sequential_look, stages
from sica.loop.utility import problem_utility
from sica.runner.evaluate import SELECTION, EvalProgress, EvalRequest, run_eval


def standings(run: Run, weights: UtilitySettings) -> list[Standing]:
    """What selection sees: every valid version's per-problem selection utilities and scores, and the selection
    problems it was run on."""
    found = []
    for version in run.summary():
        if version.state != "valid":
            continue
        evaluations = run.evaluations(version.number, part=SELECTION)
        scored = [e for e in evaluations if not e.infra]
        found.append(
            Standing(
                version.number,
                version.parent,
                {e.problem_id: problem_utility(e, weights) for e in scored},
                {e.problem_id: e.score for e in scored},
                frozenset(e.problem_id for e in evaluations),
                version.children,
                version.tampered,
            )
        )
    return found


def selection_mix(run: Run) -> list[str]:
    """The run's selection mix: the problems agent 0 was run on, in their order."""
    return [e.problem_id for e in run.evaluations(0, part=SELECTION)]


def best_in_run(run: Run, weights: UtilitySettings) -> int:
    """The number of the run's best version (`comparison` defines it); a one-line error when there is none yet."""
    best = best_version(standings(run, weights), frozenset(selection_mix(run)))
    if best is None:
        raise ArchiveError(
            f"run {run.folder} has no valid version evaluated on the whole selection mix yet: name a version "
            "(agent-N) instead of best"
        )
    return best.number


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
        """Evaluate the version in growing stages, stopping at a look that says so (`staging`); what was evaluated,
        and the version's mean selection score."""
        weights = self.settings.loop.utility
        mix = selection_mix(self.run)
        others = [s for s in standings(self.run, weights) if s.number != number]
        best = best_version(others, frozenset(mix))
        looks = stages(mix, self.settings.loop.stages)
        evaluated = "all"
        for index, problems in enumerate(looks):
            whole = index == len(looks) - 1
            label = f"agent-{number}, " + ("the whole mix" if whole else f"stage {index + 1} of {len(looks)}")
            await self.evaluate(number, only=None if whole else frozenset(problems), account=account, label=label)
            if self.halt.is_set():
                return "interrupted", None
            if whole:
                break
            look = self._look(number, index, best)
            if look.stop:
                evaluated = f"stopped after {len(problems)} of {len(mix)} problems: {look.reason}"
                break
        scores = [e.score for e in self.run.scored(number)]
        return evaluated, (sum(scores) / len(scores) if scores else None)

    def _look(self, number: int, index: int, best: Standing | None) -> Look:
        mine = next(s for s in standings(self.run, self.settings.loop.utility) if s.number == number)
        if self.settings.loop.staging == "dgm":
            return dgm_look(mine.scores, index)
        return sequential_look(mine.utilities, best.utilities if best else None, best.number if best else 0)

    async def evaluate(
        self, number: int, only: frozenset[str] | None, account: str, label: str, repeat: int = 0
    ) -> None:
        """Evaluate a version on the mix (or the problems `only`), recording each result in the run as attempt
        number `repeat` at its problem (0 the first; a repeat is a fresh attempt beside it); results already in
        the results store for that repeat (a crash's survivors, say) are reused, not run again."""
        with tempfile.TemporaryDirectory(prefix="sica-version-") as scratch:
            code = self.run.checkout(number, Path(scratch) / "code")
            request = EvalRequest(
                code,
                self.mix.benchmarks,
                self.mix.holdout,
                self.mix.model,
                sandbox=self.mix.sandbox,
                only=only,
                repeat=repeat,
            )

            def show(progress: EvalProgress) -> None:
                self.on_status(
                    progress.phase
                    or f"evaluating {label}: {progress.done}/{progress.total} problems, "
                    f"{progress.running} running · ${progress.cost_usd:.4f}"
                )

            report = await run_eval(
                self.settings, self.environ, request, show, self.halt, gateway=self.gateway, parent_account=account
            )
        for result in report.results:
            self.run.record_evaluation(number, result, repeat)
