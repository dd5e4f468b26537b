"""`sica improve`: the meta-agent loop of the SICA paper, over one run folder (`sica.archive.Run`).

Agent 0 is evaluated first. Each iteration then: the policy picks the meta agent and the base version (its random
state is stored with the run; no iteration starts once the run's budget in money or time is spent, and the
spend is carried over on resume) → the meta agent's `improve` runs sandboxed on a copy of the base's code, with the
archive view mounted read-only and its own time and cost caps → the result is validated (environment, import,
own tests) and committed as the next version, valid or invalid with the reason → a valid version solves the
first stage and, when promising, the rest of the mix (held-out problems included, reported apart). Evaluations go
through `sica eval`'s machinery, so a rerun after a crash reuses every result already stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import uv

from sica.archive import Run
from sica.benchmarks.base import Problem
from sica.config import Settings, UtilitySettings
from sica.loop.archive_view import write_archive_view
from sica.loop.policies import POLICIES, VersionStanding
from sica.loop.staging import first_stage, promising
from sica.loop.utility import problem_utility
from sica.loop.validation import Validation, validate_version
from sica.runner.attempt import AttemptLimits, run_attempt
from sica.runner.diffs import copy_tree
from sica.runner.environments import seed_agent_dir
from sica.runner.evaluate import SELECTION, EvalRequest, run_eval
from sica.runner.setup import prepared_agent, serve_gateway
from sica.sandbox import Sandbox, open_sandbox
from sica.sandbox.untrusted import read_untrusted_text

@dataclass(frozen=True)
class ImproveRequest:
    """A run: where, on which benchmark mix (selection and held-out), for how many iterations, with which model
    for the agents it evaluates. A resumed run takes its mix (and, unless given, its model) from the run."""

    run_folder: Path
    benchmarks: list[str]
    holdout: list[str]
    iterations: int
    model: str | None = None
    sandbox: str = "bwrap"
    resume: bool = False


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
    seconds: float

    def line(self) -> str:
        if not self.valid:
            outcome = f"invalid: {self.reason}"
        elif self.score is None:
            outcome = self.evaluated
        else:
            outcome = f"score {self.score:.3f} ({self.evaluated})"
        return (f"iteration {self.iteration}: agent-{self.version} from agent-{self.base} by agent-{self.meta_agent}"
                f" · {outcome} · meta ${self.meta_cost_usd:.4f} · {self.seconds:.0f} s")


def standings(run: Run, weights: UtilitySettings) -> list[VersionStanding]:
    """What the policy sees: every valid version's per-problem selection utilities and scores."""
    children: dict[int, int] = {}
    for version in run.versions():
        if version.parent is not None:
            children[version.parent] = children.get(version.parent, 0) + 1
    found = []
    for version in run.versions():
        if version.state != "valid":
            continue
        evaluations = run.scored(version.number)
        found.append(VersionStanding(
            version.number, version.parent,
            tuple(problem_utility(e, weights) for e in evaluations),
            tuple(e.score for e in evaluations), children.get(version.number, 0)))
    return found


async def improve(settings: Settings, environ: Mapping[str, str], request: ImproveRequest,
                  on_line: Callable[[str], None], stop: asyncio.Event) -> list[IterationSummary]:
    """Run (or resume) the loop until `request.iterations` iterations are done or `stop` is set."""
    if request.resume:
        run = Run.open(request.run_folder)
        stored = run.db.get_state("config", {})
        request = dataclasses.replace(request, benchmarks=stored.get("benchmarks", []),
                                      holdout=stored.get("holdout", []), model=request.model or stored.get("model"))
    else:
        snapshot = {"benchmarks": request.benchmarks, "holdout": request.holdout, "model": request.model,
                    "policy": settings.loop.policy}
        run = Run.create(request.run_folder, seed_agent_dir(), snapshot)
    sandbox = open_sandbox(request.sandbox, allow_unsafe=request.sandbox == "none")
    loop = _Loop(settings, environ, request, run, sandbox, on_line, stop)
    with run:
        return await loop.iterate()


@dataclass
class _Loop:
    settings: Settings
    environ: Mapping[str, str]
    request: ImproveRequest
    run: Run
    sandbox: Sandbox
    on_line: Callable[[str], None]
    stop: asyncio.Event

    async def iterate(self) -> list[IterationSummary]:
        if not self.run.evaluations(0):
            self.on_line("evaluating agent 0")
            started = time.monotonic()
            await self._evaluate(0, only=None)
            self._charge(0.0, time.monotonic() - started)
        rng = random.Random(self.settings.loop.seed)
        if (stored := self.run.db.get_state("rng", None)) is not None:
            version, internal, gauss = stored
            rng.setstate((version, tuple(internal), gauss))
        summaries = []
        while (iteration := int(self.run.db.get_state("iteration", 0))) < self.request.iterations:
            if self.stop.is_set() or self._budget_spent():
                break
            started = time.monotonic()
            summary = await self._iteration(iteration + 1, rng)
            self._charge(0.0, time.monotonic() - started)
            if summary is None:
                break
            summaries.append(summary)
            self.on_line(summary.line())
        return summaries

    def _charge(self, cost_usd: float, seconds: float) -> None:
        """Add to the run's spend, kept in its state so that a resumed run carries it on."""
        state = self.run.db
        state.set_state("spent_usd", float(state.get_state("spent_usd", 0.0)) + cost_usd)
        state.set_state("elapsed_s", float(state.get_state("elapsed_s", 0.0)) + seconds)

    def _budget_spent(self) -> bool:
        """Whether the run's budget in money or time (`[loop] budget_usd`, `time_budget_s`) is used up; says so."""
        spent, elapsed = self.run.db.get_state("spent_usd", 0.0), self.run.db.get_state("elapsed_s", 0.0)
        budget, time_budget = self.settings.loop.budget_usd, self.settings.loop.time_budget_s
        if budget is not None and spent >= budget:
            self.on_line(f"the run's budget is spent: ${spent:.4f} of ${budget:.4f}; stopping")
            return True
        if time_budget is not None and elapsed >= time_budget:
            self.on_line(f"the run's time is up: {elapsed:.0f} s of {time_budget:.0f} s; stopping")
            return True
        return False

    def _meta_budget(self) -> float | None:
        """The meta step's cap: its own, and never more than what is left of the run's budget."""
        caps = [self.settings.loop.meta_budget_usd]
        if self.settings.loop.budget_usd is not None:
            caps.append(max(0.0, self.settings.loop.budget_usd - self.run.db.get_state("spent_usd", 0.0)))
        known = [cap for cap in caps if cap is not None]
        return min(known) if known else None

    async def _iteration(self, iteration: int, rng: random.Random) -> IterationSummary | None:
        started = time.monotonic()
        weights = self.settings.loop.utility
        selection = POLICIES[self.settings.loop.policy](standings(self.run, weights), rng)
        version, internal, gauss = rng.getstate()
        self.run.db.set_state("rng", [version, list(internal), gauss])
        folder = self.run.folder / "meta" / f"iteration-{iteration}"
        with tempfile.TemporaryDirectory(prefix="sica-meta-") as scratch:
            Path(scratch).chmod(0o755)
            meta_code = self.run.checkout(selection.meta_agent, Path(scratch) / "meta-agent")
            base_code = self.run.checkout(selection.base, Path(scratch) / "base")
            view = write_archive_view(self.run, Path(scratch) / "archive", weights)
            base = Problem(f"meta/iteration-{iteration}", "meta", "", lambda dest: copy_tree(base_code, dest), None)
            limits = dataclasses.replace(AttemptLimits.for_solve(self.settings),
                                         time_limit_s=self.settings.loop.meta_time_limit_s,
                                         budget_usd=self._meta_budget())
            model = self.settings.loop.meta_model or self.request.model
            async with contextlib.AsyncExitStack() as stack:
                agent = await stack.enter_async_context(prepared_agent(self.settings, meta_code, model))
                gateway = await stack.enter_async_context(
                    serve_gateway(self.settings, self.environ, agent, folder.parent / "ledger.sqlite", folder.parent))
                step = self.run.db.start_meta_step(iteration, selection.meta_agent, selection.base)
                outcome = await run_attempt(base, agent, limits, self.sandbox, gateway, self.run.folder.name, folder,
                                            lambda progress: None, self.stop, archive=view)
        self._charge(outcome.cost_usd, 0.0)
        if self.stop.is_set():
            self.run.db.end_meta_step(step, "cancelled", outcome.cost_usd, error="stopped by the user")
            return None
        new_code = folder / "workdir"
        if not outcome.diff.strip():
            validation = Validation(False, f"the meta agent changed nothing ({outcome.status}: {outcome.summary})")
        else:
            validation = await asyncio.to_thread(validate_version, new_code, self.settings.solve.envs_dir.expanduser(),
                                                 uv.find_uv_bin(), self.sandbox)
        reason = validation.reason
        description = _first_line(new_code / "description.txt") or outcome.summary
        change_log = (read_untrusted_text(new_code / "CHANGELOG.md", 4000) or "").strip() or outcome.summary
        number = self.run.add_version(selection.base, new_code, description, change_log,
                                      invalid_reason=None if validation.valid else reason)
        self.run.db.end_meta_step(step, outcome.status, outcome.cost_usd, number, None if validation.valid else reason)
        evaluated, score = "not evaluated", None
        if validation.valid:
            evaluated, score = await self._staged(number, weights)
        self.run.db.set_state("iteration", iteration)
        return IterationSummary(iteration, selection.meta_agent, selection.base, number, validation.valid, reason,
                                evaluated, score, outcome.cost_usd, time.monotonic() - started)

    async def _staged(self, number: int, weights: UtilitySettings) -> tuple[str, float | None]:
        """Evaluate the first stage; the rest only when the version is promising against the best so far."""
        mix = [e.problem_id for e in self.run.evaluations(0, part=SELECTION)]
        stage = first_stage(mix, self.settings.loop.first_stage)
        await self._evaluate(number, only=frozenset(stage))
        candidate = self._utilities(number, stage, weights)
        ranked = [s for s in standings(self.run, weights) if s.utilities and s.number != number]
        best = max(ranked, key=lambda s: (s.utility, s.number)) if ranked else None
        reference = self._utilities(best.number, stage, weights) if best else None
        evaluated = "first stage" if len(stage) < len(mix) else "all"
        if promising(candidate, reference) and len(stage) < len(mix):
            await self._evaluate(number, only=None)
            evaluated = "all"
        scores = [e.score for e in self.run.scored(number)]
        return evaluated, (sum(scores) / len(scores) if scores else None)

    def _utilities(self, number: int, problems: list[str], weights: UtilitySettings) -> dict[str, float]:
        return {e.problem_id: problem_utility(e, weights) for e in self.run.scored(number) if e.problem_id in problems}

    async def _evaluate(self, number: int, only: frozenset[str] | None) -> None:
        with tempfile.TemporaryDirectory(prefix="sica-version-") as scratch:
            code = self.run.checkout(number, Path(scratch) / "code")
            request = EvalRequest(code, self.request.benchmarks, self.request.holdout, self.request.model,
                                  sandbox=self.request.sandbox, only=only)
            report = await run_eval(self.settings, self.environ, request, lambda progress: None, self.stop)
        for result in report.results:
            self.run.record_evaluation(number, result)
        self._charge(sum(result.cost_usd for result in report.results if not result.cached), 0.0)


def _first_line(path: Path) -> str:
    """The first non-blank line of a file the meta agent wrote (never through a link)."""
    text = read_untrusted_text(path, 4000) or ""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:300]
