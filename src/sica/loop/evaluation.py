"""Evaluating versions for the loop: agent 0 on the whole mix, a new version in stages (`staging`), through `sica
eval`'s machinery, so a rerun after a crash reuses every result already stored; and the standings the selection
policy sees."""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sica.archive import ArchiveError, Evaluation, Run
from sica.config import Settings, UtilitySettings
from sica.gateway import RunningGateway
from sica.loop.comparison import Standing, best_version, paired_difference
from sica.loop.policies import hgm_evaluation_pick, hgm_expands
from sica.loop.run_state import RunState
from sica.loop.staging import Look, dgm_look, sequential_look, stages
from sica.loop.utility import problem_utility
from sica.runner.evaluate import SELECTION, EvalConfig, EvalProgress, EvalRequest, PlannedProblem, run_eval
from sica.runner.oversight import recorded_entries


def standings(run: Run, weights: UtilitySettings, part: str = SELECTION) -> list[Standing]:
    """What selection sees: every valid version's per-problem utilities and scores (each the mean over the
    problem's repeats) and the problems it was run on, of the selection part (or the held-out `part`). A repeat
    that does not cover the version's first evaluation (a rematch a crash cut short) counts only once finished, so
    a resumed run sees what an uninterrupted one saw."""
    found = []
    for version in run.summary():
        if version.state != "valid":
            continue
        evaluations = _whole_rounds(run.evaluations(version.number, part=part, every_repeat=True))
        scored = [e for e in evaluations if not e.infra]
        found.append(
            Standing(
                version.number,
                version.parent,
                _per_problem_means((e.problem_id, problem_utility(e, weights)) for e in scored),
                _per_problem_means((e.problem_id, e.score) for e in scored),
                frozenset(e.problem_id for e in evaluations),
                version.children,
                version.tampered,
            )
        )
    return found


def _round_problems(evaluations: Iterable[Evaluation]) -> dict[int, set[str]]:
    """The problems of each round (repeat) among `evaluations`."""
    rounds: dict[int, set[str]] = {}
    for e in evaluations:
        rounds.setdefault(e.repeat, set()).add(e.problem_id)
    return rounds


def _whole_rounds(evaluations: list[Evaluation]) -> list[Evaluation]:
    """`evaluations` without the repeats that do not cover every problem of the first evaluation."""
    rounds = _round_problems(evaluations)
    first = rounds.get(0, set())
    return [e for e in evaluations if e.repeat == 0 or first <= rounds[e.repeat]]


def _per_problem_means(values: Iterable[tuple[str, float]]) -> dict[str, float]:
    groups: dict[str, list[float]] = {}
    for problem, value in values:
        groups.setdefault(problem, []).append(value)
    return {problem: sum(found) / len(found) for problem, found in groups.items()}


def selection_mix(run: Run) -> list[str]:
    """The run's selection mix: the problems agent 0 was run on, in the order its evaluation planned them."""
    return RunState(run.db).selection_problems


def best_in_run(run: Run, configured_weights: UtilitySettings) -> int:
    """The number of the run's best version (`comparison` defines it, with the run's stored utility weights; the
    configured ones only for a run that has none); a one-line error when there is none yet."""
    weights = RunState(run.db).utility_weights(configured_weights)
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
        best = self._staging_best(number, weights, frozenset(mix))
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
        if evaluated == "all" and best is not None:
            evaluated += await self._rematch(number, best.number, frozenset(mix), account)
            if self.halt.is_set():
                return "interrupted", None
        scores = [e.score for e in self.run.scored(number)]
        return evaluated, (sum(scores) / len(scores) if scores else None)

    def _staging_best(self, number: int, weights: UtilitySettings, mix: frozenset[str]) -> Standing | None:
        """The best the version is staged against: the best of the other versions when its staging began, kept in
        the run state so a resumed staging compares with the same version."""
        state = RunState(self.run.db)
        others = {s.number: s for s in standings(self.run, weights) if s.number != number}
        kept = state.staging_best(number)
        if kept is not None and kept in others:
            return others[kept]
        best = best_version(list(others.values()), mix)
        if best is not None:
            state.set_staging_best(number, best.number)
        return best

    async def _rematch(self, number: int, best: int, mix: frozenset[str], account: str) -> str:
        """When the candidate, now run on the whole mix, comes close to the best (their paired difference is within
        `[loop] close_margin` of taking its place, yet not provable either way), the best solves the mix once more
        (up to `[loop] rematches` times), so that a best that was lucky once does not hold its place on that round
        of noisy outcomes. Only the best: its descendants inherit what made it lucky, so a round of the challenger
        tells less for its cost (`bench/selection.py` measured both). What it did, as a phrase for the summary."""
        loop = self.settings.loop
        found = {s.number: s for s in standings(self.run, loop.utility)}
        difference = paired_difference(found[number].on_mix(mix), found[best].on_mix(mix))
        round_ = self._next_round(best, mix)
        if found[number].tampered or not difference.close(loop.close_margin) or round_ > loop.rematches:
            return ""
        label = f"agent-{best}, re-evaluated (agent-{number} came close)"
        await self.evaluate(best, only=mix, account=account, label=label, repeat=round_)
        return "" if self.halt.is_set() else f"; agent-{best} re-evaluated (came close: {difference})"

    def _keep_selection_order(self, planned: list[PlannedProblem]) -> None:
        """Store the order of the mix's selection problems, once, as agent 0's evaluation first plans them."""
        RunState(self.run.db).keep_selection_problems([p.problem.id for p in planned if p.part == SELECTION])

    def _next_round(self, version: int, mix: frozenset[str]) -> int:
        """The repeat a rematch of `version` takes: the first that does not cover the mix yet (a crash's half-done
        one is finished, its results reused), else a new one."""
        rounds = _round_problems(self.run.evaluations(version, SELECTION, every_repeat=True))
        unfinished = [repeat for repeat, problems in sorted(rounds.items()) if repeat and not mix <= problems]
        return unfinished[0] if unfinished else max(1, max(rounds, default=0) + 1)

    def _look(self, number: int, index: int, best: Standing | None) -> Look:
        mine = next(s for s in standings(self.run, self.settings.loop.utility) if s.number == number)
        if self.settings.loop.staging == "dgm":
            return dgm_look(mine.counted_scores(), index)
        # A problem attempted but not scored counts 0, as in the best's definition: provoking an infrastructure
        # failure on a problem it is losing does not keep a version from being stopped.
        reference = best.on_mix(best.attempted) if best else None
        return sequential_look(mine.on_mix(mine.attempted), reference, best.number if best else 0)

    async def hgm_evaluation_steps(self, account: str) -> int:
        """HGM's evaluation steps before it makes a new version: while evaluations^alpha < versions (agent 0 and
        its evaluations not counted), the version `hgm_evaluation_pick` chooses among those with selection
        problems not run yet solves one of them, drawn at random. The draws are seeded by the run's seed and the
        evaluations so far, so a resumed run steps as an uninterrupted one. How many steps it took."""
        loop = self.settings.loop
        mix = selection_mix(self.run)
        steps = 0
        while not self.halt.is_set():
            later = [s for s in standings(self.run, loop.utility) if s.number != 0 and not s.tampered]
            evaluations = sum(len(s.attempted) for s in later)
            unfinished = [s for s in later if not s.complete(frozenset(mix))]
            if not unfinished or hgm_expands(evaluations, len(later), loop.hgm_alpha):
                break
            rng = random.Random(f"{loop.seed}:{evaluations}")
            chosen = hgm_evaluation_pick(unfinished, rng)
            problem = rng.choice([p for p in mix if p not in chosen.attempted])
            label = f"agent-{chosen.number}, an HGM evaluation step"
            await self.evaluate(chosen.number, only=frozenset({problem}), account=account, label=label)
            if problem not in {e.problem_id for e in self.run.evaluations(chosen.number)}:
                break  # nothing was recorded (halted, or the problem is gone from the mix): no step to repeat
            steps += 1
        return steps

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
                EvalConfig.of(self.settings),
                request,
                show,
                self.halt,
                gateway=self.gateway,
                parent_account=account,
                on_planned=self._keep_selection_order if number == 0 else None,
            )
        for result in report.results:
            self.run.record_evaluation(number, result, repeat, recorded_entries(Path(result.folder)))
