"""`sica eval`: an agent version on a benchmark mix, every problem an attempt in its own sandbox with its own
gateway account, `workers` at a time (the local runner: asyncio tasks over sandbox threads).

Results reuse: a problem whose result key (agent code, problem, models, limits, repeat) is already stored is not
run again unless `fresh`; a request's `repeat` (1, 2, …) makes a further attempt at each problem, reusing its own
results but not the earlier attempts'. An interrupted evaluation stores what finished; running it again does the
rest. An infrastructure failure (the agent could not reach its model, the sandbox or the problem's set-up failed) is
retried, and when it persists it is reported as such, never scored.

One module, over 400 lines, because it is one evaluation in order (plan the problems, reuse stored results, run
the rest with their retries, record and report), its steps sharing the evaluation's progress and stop.

Held-out problems come after the selection problems of the same benchmark: `--benchmark humaneval:20
--holdout humaneval:10` selects on problems 1-20 and holds out 21-30; a benchmark only held out gives its first
problems.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import uv

from sica.benchmarks import BenchmarkContext, BenchmarkError, Problem, open_benchmark, split_name
from sica.config import BenchmarkSettings, EvalSettings, ModelRoles, RunnerSettings, Settings, SolveSettings
from sica.gateway import RunningGateway
from sica.gateway.pricing import nano_to_usd
from sica.runner.attempt import AttemptLimits, AttemptOutcome, AttemptRunner, run_attempt
from sica.runner.oversight import OverseerPlan, with_overseer
from sica.runner.results import (
    TAMPERED,
    ProblemResult,
    ResultLog,
    ResultStore,
    agent_code_hash,
    from_cache,
    models_fingerprint,
    result_key,
)
from sica.runner.setup import AgentSetup, GatewayStarter, prepared_agent
from sica.sandbox import Sandbox, open_sandbox

SELECTION, HOLDOUT = "selection", "holdout"


@dataclass(frozen=True)
class EvalRequest:
    """Which agent, on which benchmarks (selection and held-out parts), with which model, how wide; `only`
    keeps just the problems of the mix with these ids (the loop's staged evaluation); `repeat` is which attempt
    at each problem this is (0 the first; 1, 2, … fresh attempts beside it, each reusing only its own results)."""

    agent_dir: Path
    benchmarks: list[str]
    holdout: list[str] = field(default_factory=list)
    model: str | None = None
    workers: int | None = None
    sandbox: str = "bwrap"
    fresh: bool = False
    only: frozenset[str] | None = None
    repeat: int = 0

    def __post_init__(self) -> None:
        if self.repeat < 0:
            raise ValueError(f"repeat {self.repeat}: repeats are numbered from 0")


@dataclass(frozen=True)
class EvalConfig:
    """What an evaluation reads of the configuration: its own `[eval]`, the sandbox sizes and where environments
    are built (`[solve]`), `[benchmarks]`, the agent's models and their roles, and the local model's slots
    (`[local] n_parallel`, the width when the agent uses it), and the overseer each attempt gets (`[overseer]` with
    its role's model; None: none)."""

    evaluation: EvalSettings
    solve: SolveSettings
    benchmarks: BenchmarkSettings
    roles: ModelRoles
    local_slots: int
    overseer: OverseerPlan | None = None
    runner: RunnerSettings = RunnerSettings()

    @classmethod
    def of(cls, settings: Settings) -> EvalConfig:
        """These sections of the configuration loaded at the command line."""
        return cls(
            settings.eval,
            settings.solve,
            settings.benchmarks,
            settings.model_roles,
            settings.local.n_parallel,
            OverseerPlan.of(settings.overseer, settings.model_roles),
            settings.runner,
        )


@dataclass(frozen=True)
class PlannedProblem:
    """A problem of the mix: the benchmark name it came from (as the user wrote it) and its part."""

    problem: Problem
    benchmark: str
    part: str


@dataclass
class EvalProgress:
    """What a live display shows: problems done (cached ones among them), running, failed by the
    infrastructure and caught tampering, the sum of scores so far, and the spend (live, from the gateway)."""

    total: int = 0
    done: int = 0
    cached: int = 0
    running: int = 0
    infra: int = 0
    tampered: int = 0
    score_sum: float = 0.0
    cost_usd: float = 0.0
    phase: str = ""

    def add(self, result: ProblemResult) -> None:
        self.done += 1
        self.cached += result.cached
        self.infra += result.infra
        self.tampered += result.status == TAMPERED
        self.score_sum += 0.0 if result.infra else result.score
        if result.cached:
            self.cost_usd += result.cost_usd


@dataclass(frozen=True)
class EvalReport:
    """An evaluation's results (in the order of the mix), where they are kept, and whether it was interrupted."""

    eval_id: str
    folder: Path
    workers: int
    results: list[ProblemResult]
    interrupted: bool


def plan_problems(selection: list[str], holdout: list[str], context: BenchmarkContext) -> list[PlannedProblem]:
    """The mix's problems: each selection benchmark, then each held-out one (after the selection's problems of
    the same benchmark, so the two parts never overlap)."""
    chosen: dict[str, tuple[str, int | None]] = {}
    for name in selection:
        base, count = split_name(name)
        if base in chosen:
            raise BenchmarkError(f"benchmark '{base}' is named twice: give it once, with the count you want")
        chosen[base] = (name, count)
    planned: list[PlannedProblem] = []
    for name, _count in chosen.values():
        planned += [PlannedProblem(p, name, SELECTION) for p in open_benchmark(name, context)]
    held: set[str] = set()
    for name in holdout:
        base, count = split_name(name)
        if base in held:
            raise BenchmarkError(f"held-out benchmark '{base}' is named twice: give it once")
        held.add(base)
        skip = 0
        if base in chosen:
            skip = chosen[base][1] or 0
            if not skip:
                raise BenchmarkError(
                    f"'{base}' is both selected whole and held out: give the selection a count, "
                    f"e.g. --benchmark {base}:20 --holdout {name}"
                )
        wanted = f"{base}:{skip + count}" if count else base
        problems = open_benchmark(wanted, context)[skip:]
        if not problems:
            raise BenchmarkError(f"'{name}': no problems are left to hold out after the {skip} selected ones")
        planned += [PlannedProblem(p, name, HOLDOUT) for p in problems]
    return planned


def default_workers(config: EvalConfig, agent: AgentSetup) -> int:
    """The configured width; else the local model's slots when the agent uses it (more would only queue)."""
    if config.evaluation.workers is not None:
        return config.evaluation.workers
    if any(config.roles.aliases[alias].provider == "local" for alias in agent.aliases):
        return config.local_slots
    return 4


def _slug(problem_id: str) -> str:
    """A folder name for a problem id (which may hold slashes, colons and whole paths)."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", problem_id)[-80:].strip("_")
    return f"{tail}-{hashlib.sha256(problem_id.encode()).hexdigest()[:8]}"


async def run_eval(
    config: EvalConfig,
    request: EvalRequest,
    on_progress: Callable[[EvalProgress], None],
    stop: asyncio.Event,
    *,
    gateway: RunningGateway | GatewayStarter,
    parent_account: str | None = None,
    on_planned: Callable[[list[PlannedProblem]], None] | None = None,
) -> EvalReport:
    """Evaluate the agent on the mix; returns when every problem has a result or `stop` was set (then running
    attempts are cancelled and left unrecorded). `on_planned` gets the whole mix in its order once it is planned.

    `gateway` is a running gateway serving the agent's models (the loop's, whose ledger is the run's), or what
    starts one of the evaluation's own (its ledger in the eval's folder) once a problem is left to run; the
    evaluation's account is opened under `parent_account`."""
    sandbox = open_sandbox(request.sandbox, allow_unsafe=request.sandbox == "none")
    progress = EvalProgress(phase="building the agent's environment")
    on_progress(progress)
    async with contextlib.AsyncExitStack() as on_cluster:
        attempter: AttemptRunner = run_attempt
        cluster_width = None
        if config.runner.kind == "ray":
            from sica.runner.ray_runner import cluster_width as width_of
            from sica.runner.ray_runner import ray_attempts

            if config.overseer is not None:
                raise ValueError(
                    "the ray runner runs no overseer yet: set [overseer] enabled = false, or use --runner local"
                )
            progress.phase = "connecting to the Ray cluster"
            on_progress(progress)
            attempter = await on_cluster.enter_async_context(
                ray_attempts(config.runner, config.solve.envs_dir, request.sandbox, request.agent_dir)
            )
            cluster_width = width_of(config.runner)
        return await _evaluate(
            config,
            request,
            on_progress,
            stop,
            gateway,
            parent_account,
            on_planned,
            sandbox,
            progress,
            attempter,
            cluster_width,
        )


async def _evaluate(
    config: EvalConfig,
    request: EvalRequest,
    on_progress: Callable[[EvalProgress], None],
    stop: asyncio.Event,
    gateway: RunningGateway | GatewayStarter,
    parent_account: str | None,
    on_planned: Callable[[list[PlannedProblem]], None] | None,
    sandbox: Sandbox,
    progress: EvalProgress,
    attempter: AttemptRunner,
    cluster_width: int | None,
) -> EvalReport:
    """`run_eval`'s evaluation, its attempts run by `attempter` (here, or on a cluster `cluster_width` wide)."""
    async with prepared_agent(config.roles, config.solve.envs_dir, request.agent_dir, request.model) as agent:

        def building(message: str) -> None:
            progress.phase = message
            on_progress(progress)

        # Generators run foreign test suites sandboxed: never unconfined, even when the agents are.
        generator_sandbox = "bwrap" if request.sandbox == "none" else request.sandbox
        context = BenchmarkContext.from_settings(
            config.benchmarks, config.solve.envs_dir, uv.find_uv_bin(), sandbox=generator_sandbox, on_progress=building
        )
        planned = await asyncio.to_thread(plan_problems, request.benchmarks, request.holdout, context)
        if on_planned is not None:
            on_planned(planned)
        if request.only is not None:
            planned = [item for item in planned if item.problem.id in request.only]
        limits = AttemptLimits.for_eval(config.solve, config.evaluation)
        agent_hash = agent_code_hash(request.agent_dir)
        fingerprint = models_fingerprint(config.roles.aliases, agent.models)
        watched = config.overseer.fingerprint() if config.overseer is not None else None
        keys = [
            result_key(agent_hash, item.problem, fingerprint, limits, request.repeat, overseer=watched)
            for item in planned
        ]
        eval_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
        folder = config.evaluation.results_dir.expanduser() / eval_id
        folder.mkdir(parents=True)
        workers = request.workers or config.evaluation.workers or cluster_width or default_workers(config, agent)
        log = ResultLog(folder / "results.jsonl")
        results: dict[int, ProblemResult] = {}
        progress.total, progress.phase = len(planned), ""
        store = ResultStore(config.evaluation.results_dir.expanduser() / "results.sqlite")
        try:
            stored = {} if request.fresh else store.cached(keys)
            pending: list[int] = []
            for index, (item, key) in enumerate(zip(planned, keys, strict=True)):
                if key in stored:
                    results[index] = from_cache(stored[key], item.benchmark, item.part)
                    log.write(results[index])
                    progress.add(results[index])
                else:
                    pending.append(index)
            on_progress(progress)

            model_label = ",".join(sorted(agent.aliases))

            def record(index: int, result: ProblemResult) -> None:
                results[index] = result
                store.put(result, agent_hash, model_label, eval_id)
                log.write(result)
                progress.add(result)
                on_progress(progress)

            if pending:
                served = with_overseer(agent.aliases, config.overseer)
                async with contextlib.AsyncExitStack() as stack:
                    if not isinstance(gateway, RunningGateway):
                        gateway = await stack.enter_async_context(gateway(served, folder / "ledger.sqlite", folder))
                    elif missing := served - set(gateway.gateway.routes):
                        raise ValueError(f"the gateway given does not serve the agent's models {sorted(missing)}")
                    run = _EvalRun(
                        config.evaluation,
                        agent,
                        limits,
                        sandbox,
                        gateway,
                        eval_id,
                        folder,
                        progress,
                        on_progress,
                        stop,
                        parent_account,
                        config.overseer,
                        attempter,
                    )
                    await run.all([(index, planned[index], keys[index]) for index in pending], workers, record)
        finally:
            store.close()
    ordered = [results[index] for index in sorted(results)]
    return EvalReport(eval_id, folder, workers, ordered, interrupted=len(ordered) < len(planned))


@dataclass
class _EvalRun:
    """What every attempt of one evaluation shares: the agent, limits, sandbox, gateway and the eval account, and
    `[eval]`'s pacing and retries."""

    evaluation: EvalSettings
    agent: AgentSetup
    limits: AttemptLimits
    sandbox: Sandbox
    gateway: RunningGateway
    eval_id: str
    folder: Path
    progress: EvalProgress
    on_progress: Callable[[EvalProgress], None]
    stop: asyncio.Event
    parent_account: str | None = None
    overseer: OverseerPlan | None = None
    attempt: AttemptRunner = run_attempt
    account_id: str = ""
    spent_before: float = 0.0

    def __post_init__(self) -> None:
        self.account_id = self.gateway.gateway.open_account(
            f"eval {self.eval_id}",
            parent=self.parent_account,
            aliases=frozenset(with_overseer(self.agent.aliases, self.overseer)),
        ).id
        self.spent_before = self.progress.cost_usd

    async def all(
        self, jobs: list[tuple[int, PlannedProblem, str]], workers: int, record: Callable[[int, ProblemResult], None]
    ) -> None:
        """Run the jobs `workers` at a time until done or stopped; `record` each result as it arrives."""
        # Each running attempt holds a thread for its sandbox and briefly others (lay-out, scoring, diffs); the
        # loop's default pool (cores + 4 threads) would cap the width below `workers`.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(2 * workers + 4, "sica-eval"))
        queue = list(reversed(jobs))

        async def worker(position: int) -> None:
            # Staggered first starts: starting a sandboxed agent costs CPU (~0.35 s here), and workers that all
            # start together queue for the cores; spread once, they stay spread while problems take similar times.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=position * self.evaluation.stagger_s)
            while queue and not self.stop.is_set():
                index, item, key = queue.pop()
                result = await self.problem(item, key)
                if result is not None:
                    record(index, result)

        ticker = asyncio.create_task(self.tick())
        try:
            await asyncio.gather(*(worker(position) for position in range(min(workers, len(jobs)))))
        finally:
            ticker.cancel()

    async def tick(self) -> None:
        """Keep the shown spend live (the eval account's children are its problems)."""
        while True:
            spent = self.gateway.gateway.account(self.account_id).spent_nano
            self.progress.cost_usd = self.spent_before + nano_to_usd(spent)
            self.on_progress(self.progress)
            await asyncio.sleep(0.5)

    def _refused_above(self) -> int:
        """Calls refused by the budgets above the problems' own (the evaluation's account and its ancestors, such
        as a run's): a problem cut short by one of those ran out of the run's money, not of its own."""
        return sum(account.refused for account in self.gateway.gateway.accounts.chain(self.account_id))

    async def problem(self, item: PlannedProblem, key: str) -> ProblemResult | None:
        """One problem to a result, retrying infrastructure failures; None when stopped before it finished."""
        retries = self.evaluation.infra_retries
        failure = ""
        problem_folder = self.folder / "problems" / _slug(item.problem.id)
        for tries in range(1, retries + 2):
            attempt_folder = problem_folder / f"try-{tries}"
            self.progress.running += 1
            refused_before = self._refused_above()
            try:
                outcome = await self.attempt(
                    item.problem,
                    self.agent,
                    self.limits,
                    self.sandbox,
                    self.gateway,
                    self.eval_id,
                    attempt_folder,
                    lambda _: None,
                    self.stop,
                    parent_account=self.account_id,
                    overseer=self.overseer,
                )
            except Exception as error:  # setting up, running or scoring the attempt failed: not the agent's doing
                failure = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
            else:
                if self.stop.is_set() or self._refused_above() > refused_before:
                    return None  # halted, or cut short by a budget above the problem's own: not its result
                if outcome.status != "infra_error":
                    return _result(key, item, outcome, tries, attempt_folder)
                failure = outcome.summary
            finally:
                self.progress.running -= 1
            if self.stop.is_set():
                return None
            if tries <= retries:
                await asyncio.sleep(self.evaluation.retry_delay_s * 2 ** (tries - 1))
        return ProblemResult(
            key,
            item.problem.id,
            item.benchmark,
            item.part,
            "infra_error",
            0.0,
            f"infrastructure failure after {retries + 1} tries: {failure}",
            0.0,
            0,
            0,
            0.0,
            0.0,
            retries + 1,
            str(problem_folder),
            infra=True,
        )


def _result(key: str, item: PlannedProblem, outcome: AttemptOutcome, tries: int, folder: Path) -> ProblemResult:
    score = outcome.score
    return ProblemResult(
        key,
        item.problem.id,
        item.benchmark,
        item.part,
        outcome.status,
        score.value if score else 0.0,
        score.details if score else outcome.summary,
        outcome.cost_usd,
        outcome.input_tokens,
        outcome.output_tokens,
        outcome.charged_s,
        outcome.queued_s,
        tries,
        str(folder),
        outcome.trace_summary,
        overseer=outcome.overseer,
    )
