"""`sica improve`: the meta-agent loop of the SICA paper, over one run folder (`sica.archive.Run`).

One gateway serves the whole run; its ledger is in the run's `run.sqlite`, and its accounts form the tree run →
iteration → meta step / evaluated problem, the run's account holding the run's budget (so spend survives a crash
and is carried over on resume, and no evaluation can overshoot the budget: `accounts`, `budget`). Agent 0 is
evaluated first; then each iteration (`iteration`) plans, runs its meta step, validates the new version and
evaluates it in stages, until the iterations asked for are done, the user stops the run or its budget in money or
time is spent. Evaluations go through `sica eval`'s machinery, so a rerun after a crash reuses every result
already stored, and the loop's state (`run_state`) lets a resume on the same stored plan go on. What defines the
run's numbers (utility, policy, stages: `run_numbers`) is stored with the run, and the loop runs with the run's.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sica.archive import Run
from sica.config import Settings
from sica.loop.accounts import RunAccounts
from sica.loop.budget import RunBudget
from sica.loop.checks import VersionChecks
from sica.loop.evaluation import Evaluations, Mix
from sica.loop.iteration import Iteration, IterationSummary
from sica.loop.meta_step import MetaStep
from sica.loop.run_numbers import RunNumbers, configured_policy, resume_numbers
from sica.loop.run_state import RunState
from sica.loop.smoke import SMOKE_ALIAS, with_smoke_alias
from sica.runner.environments import seed_agent_dir
from sica.runner.setup import describe_models, model_aliases, models_for_agent, serve_gateway
from sica.sandbox import open_sandbox


@dataclass(frozen=True)
class ImproveRequest:
    """A run: where, on which benchmark mix (selection and held-out), for how many iterations, with which model
    for the agents it evaluates and which selection policy (default `[loop] policy`). A resumed run takes its mix
    and (unless given) its model from the run, and its numbers (`run_numbers`) from its record: a resume whose
    configuration differs is refused unless `switch_config`."""

    run_folder: Path
    benchmarks: list[str]
    holdout: list[str]
    iterations: int
    model: str | None = None
    sandbox: str = "bwrap"
    resume: bool = False
    policy: str | None = None
    switch_config: bool = False


async def improve(
    settings: Settings,
    environ: Mapping[str, str],
    request: ImproveRequest,
    on_line: Callable[[str], None],
    stop: asyncio.Event,
    on_status: Callable[[str], None] = lambda text: None,
) -> list[IterationSummary]:
    """Run (or resume) the loop until `request.iterations` iterations are done or `stop` is set. `on_line` gets the
    lines that stay (one per iteration); `on_status` a live one-line status of the work under way. Raises
    NumbersMismatch, before anything is written, when a resume's configuration differs from the run's record."""
    if request.resume:
        run, request, numbers = _resumed(settings, request, on_line)
    else:
        policy = request.policy or settings.loop.policy
        request = dataclasses.replace(request, policy=policy)
        numbers = RunNumbers.of(settings.loop, request.benchmarks, request.holdout, policy)
        snapshot = {
            "benchmarks": request.benchmarks,
            "holdout": request.holdout,
            "model": request.model,
            "policy": request.policy,
            "models": describe_models(settings, request.model),
            "meta_models": describe_models(settings, settings.loop.meta_model or request.model),
        }
        run = Run.create(request.run_folder, seed_agent_dir(), snapshot, RunState.at_creation(numbers))
    settings = numbers.applied_to(settings)
    sandbox = open_sandbox(request.sandbox, allow_unsafe=request.sandbox == "none")
    meta_model = settings.loop.meta_model or request.model
    aliases = (
        model_aliases(models_for_agent(settings, request.model))
        | model_aliases(models_for_agent(settings, meta_model))
        | {SMOKE_ALIAS}
    )
    settings = with_smoke_alias(settings, run.folder / "logs" / "smoke.jsonl")
    with run:
        # One gateway for the whole run, its ledger in run.sqlite: every call of every meta step and evaluation
        # is charged to the run's account, which holds the run's budget.
        async with serve_gateway(settings, environ, aliases, run.db.path, run.folder / "logs") as gateway:
            state = RunState(run.db)
            accounts = RunAccounts.open(gateway.gateway, state, f"run {run.folder.name}", settings.loop.budget_usd)
            budget = RunBudget(settings.loop, state, accounts, stop, on_line)
            mix = Mix(request.benchmarks, request.holdout, request.model, request.sandbox)
            evaluations = Evaluations(settings, environ, run, gateway, mix, budget.halt, on_status)
            iteration = Iteration(
                settings.loop,
                numbers.policy,
                run,
                state,
                accounts,
                budget,
                MetaStep(settings, run, sandbox, gateway, budget, meta_model, on_status),
                VersionChecks(settings, sandbox, gateway, run.folder.name, budget, on_status),
                evaluations,
            )
            return await _Loop(request.iterations, state, accounts, budget, evaluations, iteration, on_line).run()


def _resumed(
    settings: Settings, request: ImproveRequest, on_line: Callable[[str], None]
) -> tuple[Run, ImproveRequest, RunNumbers]:
    """The run to resume, opened; the request with the run's mix, policy and (unless given) model; and the record
    of the run's numbers it goes on with. The record the configuration gives is checked against the run's with the
    run opened read-only, so a refused resume changes nothing, not even what a crash left to settle."""
    with Run.open(request.run_folder, read_only=True) as stored_run:
        stored = RunState(stored_run.db)
        config, record = stored.config, stored.numbers
        if record is None:  # made before records were stored: it ran with the policy it was made with
            policy = config.policy or settings.loop.policy
        else:
            policy = request.policy or configured_policy(settings.loop) or record.policy
        current = RunNumbers.of(settings.loop, config.benchmarks, config.holdout, policy)
        numbers, change = resume_numbers(
            record,
            current,
            switch=request.switch_config,
            run=request.run_folder.name,
            iteration=stored.iteration + 1,
        )
    run = Run.open(request.run_folder)
    if change is not None:
        RunState(run.db).adopt_numbers(change)
        on_line(change.line())
    request = dataclasses.replace(
        request,
        benchmarks=list(numbers.benchmarks),
        holdout=list(numbers.holdout),
        model=request.model or config.model,
        policy=numbers.policy,
    )
    return run, request, numbers


@dataclass
class _Loop:
    """The run's work: agent 0's evaluation, then `iterations` iterations in all, while the budget lasts."""

    iterations: int
    state: RunState
    accounts: RunAccounts
    budget: RunBudget
    evaluations: Evaluations
    iteration: Iteration
    on_line: Callable[[str], None]

    async def run(self) -> list[IterationSummary]:
        watcher = asyncio.create_task(self.budget.watch())
        try:
            return await self._iterations()
        finally:
            watcher.cancel()

    async def _iterations(self) -> list[IterationSummary]:
        summaries: list[IterationSummary] = []
        if not self.state.agent_0_evaluated:
            if self.budget.spent():
                return summaries
            self.on_line("evaluating agent 0")
            self.budget.start_work()
            await self.evaluations.evaluate(0, only=None, account=self.accounts.iteration(0), label="agent-0")
            self.budget.end_work()
            if self.budget.halted():
                self.budget.spent()  # says which budget ran out, if one did
                return summaries
            self.state.agent_0_evaluated = True
        while (done := self.state.iteration) < self.iterations:
            if self.budget.halt.is_set() or self.budget.spent():
                break
            self.budget.start_work()
            summary = await self.iteration.run_iteration(done + 1)
            self.budget.end_work()
            if summary is None:  # halted
                self.budget.spent()
                break
            summaries.append(summary)
            self.on_line(summary.line())
        return summaries
