"""One iteration of the loop: plan (the policy picks the meta agent and the base) → meta step (the meta agent edits
a copy of the base) → validate (the checks a new version passes) → stage (a valid version solves growing stages of
the mix, stopping early when a look says so: `staging`). A resumed run finishes the iteration under way as planned,
without editing again once its version is committed."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sica.archive import Run
from sica.archive.run_db import Version
from sica.config import LoopSettings
from sica.loop.accounts import RunAccounts
from sica.loop.budget import RunBudget
from sica.loop.checks import VersionChecks
from sica.loop.evaluation import Evaluations, selection_mix, standings
from sica.loop.meta_step import MetaStep
from sica.loop.plan import Plan, choose_plan
from sica.loop.run_state import RunState


@dataclass(frozen=True)
class IterationSummary:
    """One iteration, as its one-line summary shows it."""

    iteration: int
    meta_agent: int
    base: int
    version: int
    valid: bool
    reason: str
    evaluated: str
    score: float | None
    meta_cost_usd: float
    cost_usd: float
    seconds: float

    def line(self) -> str:
        if not self.valid:
            outcome = f"invalid: {self.reason}"
        elif self.score is None:
            outcome = self.evaluated
        else:
            outcome = f"score {self.score:.3f} ({self.evaluated})"
        return (
            f"iteration {self.iteration}: agent-{self.version} from agent-{self.base} by agent-{self.meta_agent}"
            f" · {outcome} · ${self.cost_usd:.4f} (meta ${self.meta_cost_usd:.4f}) · {self.seconds:.0f} s"
        )


@dataclass
class Iteration:
    """The steps of an iteration, each its own component; `policy` is the run's selection policy."""

    loop: LoopSettings
    policy: str
    run: Run
    state: RunState
    accounts: RunAccounts
    budget: RunBudget
    meta_step: MetaStep
    checks: VersionChecks
    evaluations: Evaluations

    async def run_iteration(self, number: int) -> IterationSummary | None:
        """Iteration `number`, to its end; None when it was halted."""
        plan = self._plan(number)
        started = time.monotonic()
        account = self.accounts.iteration(plan.iteration)
        made = await self._version(plan, account)
        if made is None:
            return None
        version, meta_cost = made
        evaluated, score = "not evaluated", None
        if version.state == "valid":
            evaluated, score = await self.evaluations.staged(version.number, account)
            if self.budget.halted():
                return None
        self.state.iteration = plan.iteration
        return IterationSummary(
            plan.iteration,
            plan.meta_agent,
            plan.base,
            version.number,
            version.state == "valid",
            version.invalid_reason or "",
            evaluated,
            score,
            meta_cost,
            self.accounts.spent_usd(account),
            time.monotonic() - started,
        )

    def planned(self, number: int) -> bool:
        """Whether iteration `number` was planned already (a crash interrupted it)."""
        stored = self.state.plan
        return stored is not None and stored.iteration == number

    def _plan(self, number: int) -> Plan:
        """The stored plan of this iteration when a crash interrupted it; else a new one, stored."""
        stored = self.state.plan
        if stored is not None and stored.iteration == number:
            return stored
        scores = standings(self.run, self.loop.utility)
        mix = frozenset(selection_mix(self.run))
        plan = choose_plan(number, stored, scores, mix, self.policy, self.loop.seed, self.run.db.next_version_number())
        self.state.plan = plan
        return plan

    async def _version(self, plan: Plan, account: str) -> tuple[Version, float] | None:
        """The plan's version and its meta step's cost: the meta step's tree, validated and committed (valid or
        invalid), or the version committed before a crash (the meta step is not run again); None when halted
        before it was committed."""
        version = self.run.db.version(plan.version)
        if version is not None:
            return version, self.meta_step.settle(plan, version)
        edit = await self.meta_step.edit(plan, account)
        validation = None if self.budget.halted() else await self.checks.validate(plan.iteration, edit)
        if validation is None:  # halted during the meta step or its smoke problem
            self.meta_step.interrupt(edit)
            return None
        return self.meta_step.commit(plan, edit, validation), edit.outcome.cost_usd
