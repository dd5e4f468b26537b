"""What a report shows, gathered from an open run into typed rows: one per version, one per meta step, and the
run's totals. Read-only: it never writes to the run, so it can run beside a `sica improve` that does.

Whether a version was evaluated fully is not stored; it is read off its problems: agent 0 is evaluated on the
whole selection mix, so a version with all of agent 0's selection problems was evaluated fully, one with some of
them stopped early (`loop/staging.py`). The best version is the loop's (`loop/comparison.py`).

Utilities are computed with the run's stored weights (`loop/run_numbers.py`), whatever the configuration says
now; only a run made before they were stored, and not resumed since, falls back on the configuration's."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sica.archive import Run
from sica.archive.run_db import Evaluation, MetaStep, Version
from sica.config import UtilitySettings
from sica.loop.comparison import acceptances, best_version
from sica.loop.evaluation import selection_mix, standings
from sica.loop.run_numbers import NumbersChange, RunNumbers
from sica.loop.run_state import RunConfig, RunState
from sica.loop.utility import version_utility
from sica.runner.stats import MeanInterval, mean_interval

HOLDOUT = "holdout"
SELECTION = "selection"
ALL = "all"
STOPPED_EARLY = "stopped early"
NOT_EVALUATED = "not evaluated"


@dataclass(frozen=True)
class VersionRow:
    """One version: lineage, change, scores of its first evaluation (mean ± 95% CI over scored problems,
    infrastructure failures left out) per benchmark and part, utility, what it cost and took (its evaluation, any
    rematches included, and the meta step that made it)."""

    number: int
    parent: int | None
    change: str
    state: str
    invalid_reason: str | None
    selection: Mapping[str, MeanInterval]
    holdout: Mapping[str, MeanInterval]
    mean_selection: MeanInterval | None
    mean_holdout: MeanInterval | None
    utility: float | None
    eval_cost_usd: float
    meta_cost_usd: float
    eval_seconds: float
    meta_seconds: float
    evaluated: str
    selection_problems: int
    mix_size: int
    infra_failures: int
    tampered: int = 0
    #: Results the overseer judged tampering: shown for review, never a change of score.
    marked_for_review: int = 0

    @property
    def valid(self) -> bool:
        return self.state == "valid"

    @property
    def cost_usd(self) -> float:
        return self.eval_cost_usd + self.meta_cost_usd

    @property
    def seconds(self) -> float:
        return self.eval_seconds + self.meta_seconds


@dataclass(frozen=True)
class MetaStepRow:
    """One meta-agent step: who edited what, its outcome, cost and wall time (None while it runs)."""

    id: int
    iteration: int
    meta_version: int
    base_version: int
    state: str
    cost_usd: float
    seconds: float | None
    result_version: int | None
    error: str | None
    #: The overseer's line (empty: none watched).
    overseer: str = ""


@dataclass(frozen=True)
class RunTotals:
    """The run as a whole. `spent_usd` is what the run's gateway charged (its ledger, interrupted work included),
    else the recorded cost; `best` is the loop's best version (`loop/comparison.py`), `best_utility` its mean
    selection utility. `accepted` counts the times a version took the best's place from another, and
    `accepted_better_on_holdout` those where it also did better on the held-out problems both scored, out of
    `accepted_compared` that shared some."""

    spent_usd: float
    recorded_cost_usd: float
    #: Problems the valid versions after agent 0 were evaluated on, against evaluating each on the whole mix.
    staged_problems: int
    full_problems: int
    #: The run's wall time, the work under way excluded (0 until the loop first records it).
    elapsed_s: float
    iterations: int
    versions: int
    valid: int
    invalid: int
    best: int | None
    best_utility: float | None
    accepted: int = 0
    accepted_compared: int = 0
    accepted_better_on_holdout: int = 0


@dataclass(frozen=True)
class RunReport:
    """Everything a report shows, in the order it shows it. `numbers` is the run's record of what defines its
    numbers (None for a run that predates records), `weights` the utility weights its utilities were computed
    with, and `numbers_changes` the resumes that changed the record."""

    name: str
    folder: Path
    created_at: float | None
    config: RunConfig
    numbers: RunNumbers | None
    weights: UtilitySettings
    numbers_changes: Sequence[NumbersChange]
    selection_benchmarks: Sequence[str]
    holdout_benchmarks: Sequence[str]
    versions: Sequence[VersionRow]
    meta_steps: Sequence[MetaStepRow]
    totals: RunTotals

    @property
    def created(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created_at)) if self.created_at else "–"


def one_line(text: str, width: int) -> str:
    """The first non-blank line of `text`, white space folded, cut to `width` characters (an ellipsis if cut)."""
    line = next((" ".join(line.split()) for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def gather_report(run: Run, configured_weights: UtilitySettings) -> RunReport:
    """The report of `run` as it stands (versions still being added included, as `pending`). The versions are read
    once, so one a writer adds meanwhile is left out whole rather than half. Utilities use the run's stored
    weights; `configured_weights` only for a run that has none stored."""
    state = RunState(run.db)
    numbers = state.numbers
    weights = state.utility_weights(configured_weights)
    versions = run.versions()
    steps = [_meta_step_row(step) for step in run.db.meta_steps()]
    made_by = {step.result_version: step for step in steps if step.result_version is not None}
    evaluations = {version.number: run.evaluations(version.number, every_repeat=True) for version in versions}
    mix = {e.problem_id for e in evaluations.get(0, []) if e.part == SELECTION}
    rows = [
        _version_row(version, evaluations[version.number], made_by.get(version.number), mix, weights)
        for version in versions
    ]
    every = [e for found in evaluations.values() for e in found]
    return RunReport(
        name=run.folder.name,
        folder=run.folder,
        created_at=state.created_at,
        config=state.config,
        numbers=numbers,
        weights=weights,
        numbers_changes=state.numbers_changes,
        selection_benchmarks=_benchmarks(every, SELECTION),
        holdout_benchmarks=_benchmarks(every, HOLDOUT),
        versions=rows,
        meta_steps=steps,
        totals=_totals(run, state, rows, steps, weights),
    )


def _version_row(
    version: Version, evaluations: list[Evaluation], step: MetaStepRow | None, mix: set[str], weights: UtilitySettings
) -> VersionRow:
    first = [e for e in evaluations if e.repeat == 0]
    scored = [e for e in first if not e.infra]
    selection = [e for e in scored if e.part == SELECTION]
    holdout = [e for e in scored if e.part == HOLDOUT]
    run_selection = {e.problem_id for e in first if e.part == SELECTION}
    if not run_selection:
        evaluated = NOT_EVALUATED
    elif mix <= run_selection:
        evaluated = ALL
    else:
        evaluated = STOPPED_EARLY
    return VersionRow(
        number=version.number,
        parent=version.parent,
        change=one_line(version.description, 200),
        state=version.state,
        invalid_reason=version.invalid_reason,
        selection=_by_benchmark(selection),
        holdout=_by_benchmark(holdout),
        mean_selection=mean_interval([e.score for e in selection]) if selection else None,
        mean_holdout=mean_interval([e.score for e in holdout]) if holdout else None,
        utility=version_utility(selection, weights),
        eval_cost_usd=sum(e.cost_usd for e in evaluations),
        meta_cost_usd=step.cost_usd if step else 0.0,
        eval_seconds=sum(e.seconds for e in evaluations),
        meta_seconds=(step.seconds or 0.0) if step else 0.0,
        evaluated=evaluated,
        selection_problems=len(run_selection),
        mix_size=len(mix),
        infra_failures=sum(e.infra for e in first),
        tampered=sum(e.status == "tampered" for e in evaluations),
        marked_for_review=sum("marked for review" in e.overseer for e in evaluations),
    )


def _by_benchmark(evaluations: list[Evaluation]) -> dict[str, MeanInterval]:
    groups: dict[str, list[float]] = {}
    for e in evaluations:
        groups.setdefault(e.benchmark, []).append(e.score)
    return {name: mean_interval(scores) for name, scores in sorted(groups.items())}


def _benchmarks(evaluations: list[Evaluation], part: str) -> list[str]:
    return sorted({e.benchmark for e in evaluations if e.part == part})


def _meta_step_row(step: MetaStep) -> MetaStepRow:
    seconds = step.ended_at - step.started_at if step.ended_at is not None else None
    return MetaStepRow(
        step.id,
        step.iteration,
        step.meta_version,
        step.base_version,
        step.state,
        step.cost_usd,
        seconds,
        step.result_version,
        step.error,
        step.overseer,
    )


def _totals(
    run: Run, state: RunState, rows: list[VersionRow], steps: list[MetaStepRow], weights: UtilitySettings
) -> RunTotals:
    recorded = sum(row.eval_cost_usd for row in rows) + sum(step.cost_usd for step in steps)
    spent = run.db.ledger_spent_usd()
    selection = standings(run, weights)
    mix = frozenset(selection_mix(run))
    best = best_version(selection, mix)
    held_out = {s.number: s.utilities for s in standings(run, weights, part=HOLDOUT)}
    accepted = [a for a in acceptances(selection, held_out, mix) if a.previous is not None]
    later = [row.number for row in rows if row.valid and row.number != 0]
    return RunTotals(
        spent_usd=float(spent) if spent is not None else recorded,
        recorded_cost_usd=recorded,
        staged_problems=sum(len(run.evaluations(number)) for number in later),
        full_problems=len(run.evaluations(0)) * len(later),
        elapsed_s=state.elapsed_s,
        iterations=state.iteration,
        versions=len(rows),
        valid=sum(row.valid for row in rows),
        invalid=sum(row.state == "invalid" for row in rows),
        best=best.number if best else None,
        best_utility=best.utility if best else None,
        accepted=len(accepted),
        accepted_compared=sum(a.better_on_holdout is not None for a in accepted),
        accepted_better_on_holdout=sum(a.better_on_holdout is True for a in accepted),
    )
