"""`sica improve`: the meta-agent loop of the SICA paper, over one run folder (`sica.archive.Run`).

One gateway serves the whole run; its ledger is in the run's `run.sqlite`, and its accounts form the tree run →
iteration → meta step / evaluated problem, the run's account holding the run's budget (so spend survives a crash
and is carried over on resume, and no evaluation can overshoot the budget). Agent 0 is evaluated first. Each
iteration then: the policy picks the meta agent and the base version (its random state is stored with the run;
no iteration starts once the run's budget in money or time is spent) → the meta agent's `improve` runs sandboxed
on a copy of the base's code, with the archive view mounted read-only and its own time and cost caps → the result
is validated (environment, import, own tests) and committed as the next version, valid or invalid with the reason
→ a valid version solves the first stage and, when promising, the rest of the mix (held-out problems included,
reported apart). Evaluations go through `sica eval`'s machinery, so a rerun after a crash reuses every result
already stored. Whatever the meta agent's tree makes the harness fail at (a tree the diff or copy had to leave
parts of out, links out of it, files git cannot stage) makes the version invalid with the reason, never a crash
of the loop, so a resume on the same stored plan goes on too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uv

from sica.archive import ArchiveError, Run
from sica.archive.run_db import Version
from sica.benchmarks.base import Problem
from sica.config import Settings, UtilitySettings
from sica.gateway import RunningGateway
from sica.gateway.pricing import nano_to_usd
from sica.loop.archive_view import write_archive_view
from sica.loop.policies import POLICIES, VersionStanding
from sica.loop.smoke import SMOKE_ALIAS, smoke_check, with_smoke_alias
from sica.loop.staging import first_stage, promising
from sica.loop.utility import problem_utility
from sica.loop.validation import Validation, validate_version
from sica.runner.attempt import AttemptLimits, Progress, run_attempt
from sica.runner.environments import AgentVersionError, seed_agent_dir
from sica.runner.evaluate import SELECTION, EvalProgress, EvalRequest, run_eval
from sica.runner.setup import describe_models, model_aliases, models_for_agent, prepared_agent, serve_gateway
from sica.sandbox import Sandbox, open_sandbox
from sica.sandbox.untrusted import UntrustedTreeError, links_leaving, read_untrusted_text
from sica.workspace.diffs import CUT_NOTE, LEFT_OUT_NOTE, NOTE, diff_notes
from sica.workspace.trees import copy_tree


@dataclass(frozen=True)
class ImproveRequest:
    """A run: where, on which benchmark mix (selection and held-out), for how many iterations, with which model
    for the agents it evaluates and which selection policy (default `[loop] policy`). A resumed run takes its mix
    and policy (and, unless given, its model) from the run."""

    run_folder: Path
    benchmarks: list[str]
    holdout: list[str]
    iterations: int
    model: str | None = None
    sandbox: str = "bwrap"
    resume: bool = False
    policy: str | None = None


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


async def improve(
    settings: Settings,
    environ: Mapping[str, str],
    request: ImproveRequest,
    on_line: Callable[[str], None],
    stop: asyncio.Event,
    on_status: Callable[[str], None] = lambda text: None,
) -> list[IterationSummary]:
    """Run (or resume) the loop until `request.iterations` iterations are done or `stop` is set. `on_line` gets the
    lines that stay (one per iteration); `on_status` a live one-line status of the work under way."""
    if request.resume:
        run = Run.open(request.run_folder)
        stored = run.db.get_state("config", {})
        request = dataclasses.replace(
            request,
            benchmarks=stored.get("benchmarks", []),
            holdout=stored.get("holdout", []),
            model=request.model or stored.get("model"),
            policy=stored.get("policy") or settings.loop.policy,
        )
    else:
        request = dataclasses.replace(request, policy=request.policy or settings.loop.policy)
        snapshot = {
            "benchmarks": request.benchmarks,
            "holdout": request.holdout,
            "model": request.model,
            "policy": request.policy,
            "models": describe_models(settings, request.model),
            "meta_models": describe_models(settings, settings.loop.meta_model or request.model),
        }
        run = Run.create(request.run_folder, seed_agent_dir(), snapshot)
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
            loop = _Loop(settings, environ, request, run, sandbox, gateway, on_line, stop, on_status)
            return await loop.iterate()


@dataclass(frozen=True)
class _Plan:
    """The iteration under way, stored before its meta step starts: who edits what, the policy's random state
    after choosing, and the number its version will get. A resumed run finishes this iteration as planned: it
    neither chooses again nor, once the version is committed, edits again."""

    iteration: int
    meta_agent: int
    base: int
    version: int
    rng: list[Any]


@dataclass
class _Loop:
    settings: Settings
    environ: Mapping[str, str]
    request: ImproveRequest
    run: Run
    sandbox: Sandbox
    gateway: RunningGateway
    on_line: Callable[[str], None]
    stop: asyncio.Event
    on_status: Callable[[str], None]
    halt: asyncio.Event = field(default_factory=asyncio.Event)
    run_account: str = ""
    #: When the work under way (agent 0's evaluation, an iteration) started, for the time budget; None between.
    work_started: float | None = None

    async def iterate(self) -> list[IterationSummary]:
        self.run_account = self._account("run", f"run {self.run.folder.name}", None, self.settings.loop.budget_usd)
        watcher = asyncio.create_task(self._watch())
        try:
            return await self._iterations()
        finally:
            watcher.cancel()

    async def _watch(self) -> None:
        """Halt running work when the user stops the run, when the run's account refuses a call or when the run's
        time is up: a meta step or evaluation cut short by a budget is cancelled, never recorded as the agent's
        failure."""
        time_budget = self.settings.loop.time_budget_s
        while not self.halt.is_set():
            started = self.work_started
            if started is not None and time_budget is not None and self._elapsed_s(started) >= time_budget:
                self.halt.set()
            if self.stop.is_set() or self.gateway.gateway.account(self.run_account).refused:
                self.halt.set()
            await asyncio.sleep(0.1)

    async def _iterations(self) -> list[IterationSummary]:
        summaries: list[IterationSummary] = []
        if not self.run.db.get_state("agent-0 evaluated", False):
            if self._budget_spent():
                return summaries
            self.on_line("evaluating agent 0")
            self._start_work()
            await self._evaluate(0, only=None, account=self._iteration_account(0), label="agent-0")
            self._end_work()
            if self._halted():
                self._budget_spent()  # says which budget ran out, if one did
                return summaries
            self.run.db.set_state("agent-0 evaluated", True)
        while (iteration := int(self.run.db.get_state("iteration", 0))) < self.request.iterations:
            if self.halt.is_set() or self._budget_spent():
                break
            self._start_work()
            summary = await self._iteration(self._plan(iteration + 1))
            self._end_work()
            if summary is None:  # halted
                self._budget_spent()
                break
            summaries.append(summary)
            self.on_line(summary.line())
        return summaries

    def _plan(self, iteration: int) -> _Plan:
        """The stored plan of this iteration when a crash interrupted it; else a new one, chosen by the policy
        with the random state the last plan left."""
        stored = self.run.db.get_state("plan", None)
        if stored is not None and stored["iteration"] == iteration:
            return _Plan(**stored)
        rng = random.Random(self.settings.loop.seed)
        if stored is not None:
            version, internal, gauss = stored["rng"]
            rng.setstate((version, tuple(internal), gauss))
        policy = POLICIES[self.request.policy or self.settings.loop.policy]
        selection = policy(standings(self.run, self.settings.loop.utility), rng)
        version, internal, gauss = rng.getstate()
        plan = _Plan(
            iteration,
            selection.meta_agent,
            selection.base,
            self.run.db.next_version_number(),
            [version, list(internal), gauss],
        )
        self.run.db.set_state("plan", dataclasses.asdict(plan))
        return plan

    def _account(self, key: str, name: str, parent: str | None, limit_usd: float | None) -> str:
        """A budget account of the run that outlives a crash: the one stored under `key` (with its spend, from the
        ledger; its limit as configured now), else a new one."""
        gateway = self.gateway.gateway
        stored = self.run.db.get_state(f"account:{key}")
        if stored in gateway.accounts:
            gateway.set_limit(stored, limit_usd)
            return str(stored)
        account_id = gateway.open_account(name, parent=parent, limit_usd=limit_usd).id
        self.run.db.set_state(f"account:{key}", account_id)
        return account_id

    def _iteration_account(self, iteration: int) -> str:
        return self._account(f"iteration-{iteration}", f"iteration {iteration}", self.run_account, None)

    def _spent_usd(self, account_id: str) -> float:
        return nano_to_usd(self.gateway.gateway.account(account_id).spent_nano)

    def _elapsed_s(self, work_started: float) -> float:
        """The run's wall time: what its state holds, and the work under way since `work_started`."""
        return float(self.run.db.get_state("elapsed_s", 0.0)) + time.monotonic() - work_started

    def _start_work(self) -> None:
        self.work_started = time.monotonic()

    def _end_work(self) -> None:
        """Add the work's time to the run's wall time, kept in its state so that a resumed run carries it on (its
        spend is the run account's, in the ledger)."""
        assert self.work_started is not None
        self.run.db.set_state("elapsed_s", self._elapsed_s(self.work_started))
        self.work_started = None

    def _halted(self) -> bool:
        """Whether running work was halted. A refused call's limit is remembered, so a resume with that limit
        stops at once and one with a higher limit carries on (the run's time is in its state already). A refusal
        halts the work even when it ended before the watcher saw the refusal."""
        if self.gateway.gateway.account(self.run_account).refused:
            self.halt.set()
        if not self.halt.is_set():
            return False
        if self.gateway.gateway.account(self.run_account).refused:
            self.run.db.set_state("budget ran out at", self.settings.loop.budget_usd)
        return True

    def _budget_spent(self) -> bool:
        """Whether the run's budget in money or time (`[loop] budget_usd`, `time_budget_s`) is used up; says so."""
        spent, elapsed = self._spent_usd(self.run_account), self.run.db.get_state("elapsed_s", 0.0)
        budget, time_budget = self.settings.loop.budget_usd, self.settings.loop.time_budget_s
        ran_out = budget is not None and self.run.db.get_state("budget ran out at", None) == budget
        if budget is not None and (spent >= budget or ran_out):
            self.on_line(
                f"the run's budget is spent: ${spent:.4f} of ${budget:.4f} (it cannot pay for another call); stopping"
            )
            return True
        if time_budget is not None and elapsed >= time_budget:
            self.on_line(f"the run's time is up: {elapsed:.0f} s of {time_budget:.0f} s; stopping")
            return True
        return False

    def _meta_budget(self) -> float | None:
        """The meta step's cap: its own, and never more than what is left of the run's budget (which the gateway
        enforces anyway; the agent is told the tighter figure)."""
        caps = [self.settings.loop.meta_budget_usd]
        left = self.gateway.gateway.account(self.run_account).left_nano()
        if left is not None:
            caps.append(max(0.0, nano_to_usd(left)))
        known = [cap for cap in caps if cap is not None]
        return min(known) if known else None

    async def _iteration(self, plan: _Plan) -> IterationSummary | None:
        started = time.monotonic()
        account = self._iteration_account(plan.iteration)
        version = self.run.db.version(plan.version)
        if version is None:
            made = await self._meta_step(plan, account)
            if made is None:
                return None
            version, meta_cost = made
        else:  # committed before a crash: the meta step is not run again
            meta_cost = self._settle_meta_step(plan, version)
        valid = version.state == "valid"
        evaluated, score = "not evaluated", None
        if valid:
            evaluated, score = await self._staged(version.number, self.settings.loop.utility, account)
            if self._halted():
                return None
        self.run.db.set_state("iteration", plan.iteration)
        return IterationSummary(
            plan.iteration,
            plan.meta_agent,
            plan.base,
            version.number,
            valid,
            version.invalid_reason or "",
            evaluated,
            score,
            meta_cost,
            self._spent_usd(account),
            time.monotonic() - started,
        )

    async def _meta_step(self, plan: _Plan, account: str) -> tuple[Version, float] | None:
        """The meta agent's `improve` on a copy of the base, validated and committed as the plan's version (valid
        or invalid); None when halted before it was committed."""
        folder = self._meta_folder(plan)
        _set_aside(folder)
        with tempfile.TemporaryDirectory(prefix="sica-meta-") as scratch:
            Path(scratch).chmod(0o755)
            meta_code = self.run.checkout(plan.meta_agent, Path(scratch) / "meta-agent")
            base_code = self.run.checkout(plan.base, Path(scratch) / "base")
            view = write_archive_view(self.run, Path(scratch) / "archive", self.settings.loop.utility)
            base = Problem(
                f"meta/iteration-{plan.iteration}", "meta", "", lambda dest: copy_tree(base_code, dest), None
            )
            limits = dataclasses.replace(
                AttemptLimits.for_solve(self.settings),
                time_limit_s=self.settings.loop.meta_time_limit_s,
                budget_usd=self._meta_budget(),
            )
            model = self.settings.loop.meta_model or self.request.model
            async with prepared_agent(self.settings, meta_code, model) as agent:
                step = self.run.db.start_meta_step(plan.iteration, plan.meta_agent, plan.base)

                def show(progress: Progress) -> None:
                    self.on_status(
                        f"iteration {plan.iteration}: agent-{plan.meta_agent} edits agent-{plan.base} · "
                        f"step {progress.step} {progress.tool} · {progress.tokens} tokens · "
                        f"${progress.cost_usd:.4f}"
                    )

                outcome = await run_attempt(
                    base,
                    agent,
                    limits,
                    self.sandbox,
                    self.gateway,
                    self.run.folder.name,
                    folder,
                    show,
                    self.halt,
                    parent_account=account,
                    archive=view,
                )
        if self._halted_during(step, outcome.cost_usd):
            return None
        new_code = folder / "workdir"
        unkept = _unkept_tree(outcome.diff, new_code)
        if unkept is not None:
            validation = Validation(False, unkept)
        elif not outcome.diff.strip():
            validation = Validation(False, f"the meta agent changed nothing ({outcome.status}: {outcome.summary})")
        else:
            self.on_status(f"iteration {plan.iteration}: validating the new version")
            validation, smoked = await self._validated(plan, new_code, folder)
            if smoked and self._halted_during(step, outcome.cost_usd):
                return None
        reason = None if validation.valid else validation.reason
        # The version's own description when the meta agent wrote one, else what the meta agent said it did.
        written = _first_line(read_untrusted_text(new_code / "description.txt", 4000) or "")
        description = (
            written
            if written and written != self.run.version(plan.base).description
            else (_first_line(outcome.summary) or "no description")
        )
        change_log = (read_untrusted_text(new_code / "CHANGELOG.md", 4000) or "").strip() or outcome.summary
        number, reason = self._add_version(plan, new_code, description, change_log, reason)
        state, error = _meta_step_end(outcome.status, outcome.summary, reason)
        self.run.db.end_meta_step(step, state, outcome.cost_usd, number, error)
        return self.run.version(number), outcome.cost_usd

    async def _validated(self, plan: _Plan, new_code: Path, folder: Path) -> tuple[Validation, bool]:
        """The checks of a new version (environment, import, compiling, own tests, then the smoke problem), and
        whether the smoke problem ran; a version the harness cannot copy or prepare is invalid with the reason,
        never a crash."""
        smoked = False
        try:
            validation = await asyncio.to_thread(
                validate_version, new_code, self.settings.solve.envs_dir.expanduser(), uv.find_uv_bin(), self.sandbox
            )
            if not validation.valid:
                return validation, smoked
            self.on_status(f"iteration {plan.iteration}: the new version on a smoke problem")
            smoked = True
            failure = await smoke_check(
                self.settings,
                new_code,
                self.sandbox,
                self.gateway,
                self.run.folder.name,
                folder / "smoke",
                self.halt,
                parent_account=self.run_account,
            )
        except (UntrustedTreeError, AgentVersionError) as error:
            return Validation(False, f"it cannot be prepared: {_one_line(str(error))}"), smoked
        return (validation if failure is None else Validation(False, failure)), smoked

    def _add_version(
        self, plan: _Plan, new_code: Path, description: str, change_log: str, reason: str | None
    ) -> tuple[int, str | None]:
        """Commit the plan's version: its files, or (when they cannot be archived: the meta agent's doing) its
        base's files, invalid with the reason. Its number and the reason it is invalid, if it is."""
        if new_code.is_dir():
            try:
                return self.run.add_version(plan.base, new_code, description, change_log, invalid_reason=reason), reason
            except (UntrustedTreeError, ArchiveError) as error:
                reason = f"{reason}; " if reason else ""
                reason += f"its files cannot be archived: {_one_line(str(error))}"
        reason = reason or "its files could not be kept"
        return self.run.add_version(plan.base, None, description, change_log, invalid_reason=reason), reason

    def _halted_during(self, step: int, cost_usd: float) -> bool:
        """Whether the run was halted during this meta step; if so its row is ended `interrupted`."""
        if not self._halted():
            return False
        self.run.db.end_meta_step(step, "interrupted", cost_usd, error="halted before it ended")
        return True

    def _settle_meta_step(self, plan: _Plan, version: Version) -> float:
        """The cost of the meta step that made the plan's version; a crash after the commit left its row
        interrupted, and it is settled from the attempt's outcome as the uninterrupted step would have been."""
        step = [s for s in self.run.db.meta_steps() if s.iteration == plan.iteration][-1]
        if step.result_version is None:
            try:
                outcome = json.loads((self._meta_folder(plan) / "outcome.json").read_text(encoding="utf-8"))
                status, summary, cost = str(outcome["status"]), str(outcome["summary"]), float(outcome["cost_usd"])
            except (OSError, ValueError, KeyError, TypeError):
                status, summary, cost = "error", "the meta step's outcome.json is missing or unreadable", step.cost_usd
            state, error = _meta_step_end(status, summary, version.invalid_reason)
            self.run.db.end_meta_step(step.id, state, cost, version.number, error)
            return cost
        return step.cost_usd

    def _meta_folder(self, plan: _Plan) -> Path:
        return self.run.folder / "meta" / f"iteration-{plan.iteration}"

    async def _staged(self, number: int, weights: UtilitySettings, account: str) -> tuple[str, float | None]:
        """Evaluate the first stage; the rest only when the version is promising against the best so far."""
        mix = [e.problem_id for e in self.run.evaluations(0, part=SELECTION)]
        stage = first_stage(mix, self.settings.loop.first_stage)
        await self._evaluate(number, only=frozenset(stage), account=account, label=f"agent-{number}, first stage")
        if self.halt.is_set():
            return "interrupted", None
        candidate = self._utilities(number, stage, weights)
        ranked = [s for s in standings(self.run, weights) if s.utilities and s.number != number]
        best = max(ranked, key=lambda s: (s.utility, s.number)) if ranked else None
        reference = self._utilities(best.number, stage, weights) if best else None
        evaluated = "first stage" if len(stage) < len(mix) else "all"
        if promising(candidate, reference) and len(stage) < len(mix):
            await self._evaluate(number, only=None, account=account, label=f"agent-{number}, the rest")
            evaluated = "all"
        scores = [e.score for e in self.run.scored(number)]
        return evaluated, (sum(scores) / len(scores) if scores else None)

    def _utilities(self, number: int, problems: list[str], weights: UtilitySettings) -> dict[str, float]:
        return {e.problem_id: problem_utility(e, weights) for e in self.run.scored(number) if e.problem_id in problems}

    async def _evaluate(self, number: int, only: frozenset[str] | None, account: str, label: str) -> None:
        """Evaluate a version on the mix (or the problems `only`), recording each result in the run; results
        already in the results store (a crash's survivors, say) are reused, not run again."""
        with tempfile.TemporaryDirectory(prefix="sica-version-") as scratch:
            code = self.run.checkout(number, Path(scratch) / "code")
            request = EvalRequest(
                code,
                self.request.benchmarks,
                self.request.holdout,
                self.request.model,
                sandbox=self.request.sandbox,
                only=only,
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
            self.run.record_evaluation(number, result)


def _meta_step_end(status: str, summary: str, invalid_reason: str | None) -> tuple[str, str | None]:
    """A finished meta step's row: `done` when its agent said so, else `failed`; the error, if any."""
    if status == "done":
        return "done", invalid_reason
    return "failed", invalid_reason or summary


def _unkept_tree(diff: str, code: Path) -> str | None:
    """Why the meta agent's tree cannot be a version as it left it, if it cannot: the harness's copy of it is
    missing (it could not be made), its diff left parts out or was cut (what git or the copy cannot keep: the
    archive would hold another version than the one the agent made), or links lead out of it (on the host they
    would reach the host's files, not the version's)."""
    if not code.is_dir():
        return "its files could not be kept (see the meta step's outcome.json)"
    notes = [note.removeprefix(NOTE) for note in diff_notes(diff) if note.startswith((LEFT_OUT_NOTE, CUT_NOTE))]
    if notes:
        return f"its tree holds what the archive cannot keep ({'; '.join(notes)})"
    leaving = links_leaving(code)
    if leaving:
        more = f" and {len(leaving) - 3} more" if len(leaving) > 3 else ""
        return f"its files hold links out of its folder ({', '.join(leaving[:3])}{more}): a version is its own files"
    return None


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def _set_aside(folder: Path) -> None:
    """Rename what an interrupted meta step left in `folder` to `folder`-interrupted-K, kept for its traces."""
    if not folder.exists():
        return
    tries = 1
    while (aside := folder.with_name(f"{folder.name}-interrupted-{tries}")).exists():
        tries += 1
    folder.rename(aside)


def _first_line(text: str) -> str:
    """The first non-blank line of `text`, at most 300 characters."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:300]
