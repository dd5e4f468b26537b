"""One attempt: an agent version on one problem, sandboxed, followed, diffed and scored.

`sica solve` runs one attempt; `sica eval` runs many through one gateway, each with its own account. While it
runs, the agent works in a size-capped scratch area (a tmpfs where the harness may mount one) that the sandbox
user can reach; afterwards the attempt's folder keeps `task.md`, `workdir/` and `logdir/` (events.jsonl,
inbox/, answer.txt) as the agent left them, `baseline.git` (the harness's record of the starting tree),
`diff.patch`, `agent.log`, `outcome.json` and, when an overseer watched, `overseer.jsonl`; `live.json` points at
the live folders while the attempt lasts.

One module, over 400 lines, because it is one attempt's life in order (lay out, sandbox, follow, cancel, decide
the end, diff, score, keep) and its steps share the attempt's folders, limits and clock; `_decide_end` weighs what
the follower, the sandbox and the ledger found together. What other code shares is elsewhere (`setup.py` for a
run's agent, `trace_summary.py`, the diffs and sandboxes). If it grows, the ledger's evidence (`upstream_failed`,
`queued_seconds`, `charged_seconds`) is the part to move out first.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol, TypeVar, cast

from sica.benchmarks.base import Problem, Score
from sica.config import EvalSettings, SolveSettings
from sica.events import STATUSES as AGENT_STATUSES
from sica.events import EventReader, read_events
from sica.gateway import AccountHandle, RunningGateway
from sica.gateway.accounts import Account
from sica.gateway.pricing import nano_to_usd
from sica.overseer import Limits as WindowLimits
from sica.overseer.inbox import post_notice
from sica.runner.oversight import AttemptOversight, OverseerPlan, OversightSummary, with_overseer
from sica.runner.setup import AgentSetup
from sica.runner.trace_summary import summarize_attempt
from sica.sandbox import Limits, Sandbox, SandboxResult, SandboxSpec
from sica.sandbox.scratch import ScratchArea
from sica.sandbox.untrusted import copy_untrusted_tree, read_untrusted_text
from sica.workspace.diffs import record_baseline, take_diff

T = TypeVar("T")

#: The answer an agent leaves in `answer.txt`, as far as the harness reads it.
MAX_ANSWER_BYTES = 64 << 10
#: How long an ended attempt waits for the model calls its agent left in flight (see `_calls_settled`).
SETTLE_WAIT_S = 180.0


@dataclass(frozen=True)
class AttemptLimits:
    """What one attempt may use: the agent's time (then a cancel, then a kill after the grace period), its
    gateway budget (None: unlimited), and the sandbox's memory, scratch and /tmp sizes."""

    time_limit_s: float
    budget_usd: float | None
    memory_mb: int
    scratch_mb: int
    tmp_mb: int
    cancel_grace_s: float

    @classmethod
    def for_solve(cls, solve: SolveSettings) -> AttemptLimits:
        """`[solve]`'s limits."""
        return cls(
            solve.time_limit_s, solve.budget_usd, solve.memory_mb, solve.scratch_mb, solve.tmp_mb, solve.cancel_grace_s
        )

    @classmethod
    def for_eval(cls, solve: SolveSettings, evaluation: EvalSettings) -> AttemptLimits:
        """`[eval]`'s time and budget per problem; the sandbox sizes of `[solve]`."""
        return dataclasses.replace(
            cls.for_solve(solve), time_limit_s=evaluation.time_limit_s, budget_usd=evaluation.budget_usd
        )


@dataclass
class Progress:
    """What a live display shows about an attempt, refreshed while the agent runs."""

    step: int = 0
    tool: str = ""
    tokens: int = 0
    cost_usd: float = 0.0
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class AttemptOutcome:
    """How an attempt ended: status and summary (the agent's own, or the harness's when it could not say), the
    score (None when the problem has no checks), cost and tokens (the gateway's), wall seconds, the part of
    them its calls spent queued in the gateway, the time it is charged (see `charged_seconds`), the diff, and
    the harness's account of what the agent did (`trace_summary.summarize_attempt`, with the overseer's part when
    one watched). `overseer` is the overseer's one-line summary (empty: none watched); `marked_for_review` says it
    judged the attempt tampering (a note for the report, never a change of score)."""

    status: str
    summary: str
    answer: str | None
    score: Score | None
    cost_usd: float
    input_tokens: int
    output_tokens: int
    seconds: float
    queued_s: float
    charged_s: float
    diff: str
    trace_summary: str
    overseer: str = ""
    marked_for_review: bool = False


def agent_environment(env: Path, code: Path, extra_path: list[Path], contract: Mapping[str, str]) -> dict[str, str]:
    """The agent's environment: an allow-list, never the harness's own (the backend adds HOME and LANG)."""
    path = ":".join([*(str(p) for p in extra_path), str(env / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
    return {
        **contract,
        "PATH": path,
        "PYTHONPATH": str(code),
        "PYTHONDONTWRITEBYTECODE": "1",
        "GIT_AUTHOR_NAME": "sica agent",
        "GIT_AUTHOR_EMAIL": "agent@sica.invalid",
        "GIT_COMMITTER_NAME": "sica agent",
        "GIT_COMMITTER_EMAIL": "agent@sica.invalid",
    }


@dataclass(frozen=True)
class RunFolders:
    """Where one attempt's pieces live in its scratch area (what the sandbox mounts)."""

    workdir: Path
    logdir: Path
    code: Path
    task: Path
    gateway_socket: Path
    extra_path: list[Path]


def lay_out_run(problem: Problem, code: Path, area: Path, gateway_socket: Path, folder: Path) -> RunFolders:
    """Fill the scratch area: the starting tree (recorded in the harness's baseline) and the task; the agent's
    code is the run's shared read-only snapshot."""
    workdir = area / "workdir"
    workdir.mkdir()
    problem.lay_out(workdir)
    record_baseline(workdir, folder / "baseline.git")
    run = RunFolders(
        workdir, area / "logdir", code, area / "task", gateway_socket, [problem.tools] if problem.tools else []
    )
    for made in (run.logdir, run.task):
        made.mkdir(mode=0o755)
    (run.task / "task.md").write_text(problem.statement, encoding="utf-8")
    return run


def agent_spec(
    limits: AttemptLimits,
    sandbox: Sandbox,
    run: RunFolders,
    env: Path,
    contract: dict[str, str],
    archive: Path | None = None,
) -> SandboxSpec:
    """The sandboxed entry point of the contract, with its mounts, environment and limits: `python -m sica_agent
    solve`, or `improve` with `archive` (the read-only archive view) when the workdir holds an agent's code."""
    # The harness's follower cancels at the time limit and kills after the grace; the sandbox's own wall time
    # is the backstop should the follower not be there to do it.
    sandbox_limits = Limits(
        wall_s=limits.time_limit_s + 2 * limits.cancel_grace_s + 5,
        cpu_s=None,
        memory_mb=limits.memory_mb,
        tmp_mb=limits.tmp_mb,
    )
    readonly = (env, run.code, run.task, *(p.parent for p in run.extra_path), *((archive,) if archive else ()))
    spec = SandboxSpec(
        command=(),
        workdir=run.workdir,
        logdir=run.logdir,
        gateway_dir=run.gateway_socket.parent,
        readonly=readonly,
        limits=sandbox_limits,
    )
    view = sandbox.inside(spec)
    contract = {**contract, "SICA_AGENT_GATEWAY": f"unix:{view.gateway_dir}/{run.gateway_socket.name}"}
    if archive is None:
        entry = ("solve", "--task", str(run.task / "task.md"))
    else:
        entry = ("improve", "--archive", str(archive))
    return dataclasses.replace(
        spec,
        environment=agent_environment(env, run.code, run.extra_path, contract),
        command=(
            str(env / "bin" / "python"),
            "-m",
            "sica_agent",
            *entry,
            "--workdir",
            str(view.workdir),
            "--logdir",
            str(view.logdir),
        ),
    )


def _contract(
    limits: AttemptLimits, run_id: str, problem_id: str, token: str, models: dict[str, dict[str, object]]
) -> dict[str, str]:
    """The `SICA_AGENT_*` variables of the agent contract (the gateway address is added where the sandbox is
    known)."""
    contract = {
        "SICA_AGENT_TOKEN": token,
        "SICA_AGENT_MODELS": json.dumps(models),
        "SICA_AGENT_RUN_ID": run_id,
        "SICA_AGENT_PROBLEM_ID": problem_id,
        "SICA_AGENT_TIME_LIMIT_S": str(limits.time_limit_s),
    }
    if limits.budget_usd is not None:
        contract["SICA_AGENT_COST_LIMIT_USD"] = str(limits.budget_usd)
    return contract


async def run_attempt(
    problem: Problem,
    agent: AgentSetup,
    limits: AttemptLimits,
    sandbox: Sandbox,
    gateway: RunningGateway,
    run_id: str,
    folder: Path,
    on_progress: Callable[[Progress], None],
    stop: asyncio.Event,
    *,
    parent_account: str | None = None,
    archive: Path | None = None,
    overseer: OverseerPlan | None = None,
) -> AttemptOutcome:
    """Run the agent on `problem` to its end (or until `stop` is set: then it is cancelled, with a grace
    period), keep its folders in `folder`, and score the final tree when the problem has checks. With
    `archive` (a read-only archive view the sandbox user can read) the agent runs `improve` instead of `solve`:
    the problem's tree is then an agent's code, and the kept `workdir/` the version it made. With `overseer`, an
    overseer watches beside the follower (`runner.oversight`); its cancel of the run is enforced as the harness's
    own time-out is (a kill after the grace period), and its summary joins the outcome.

    How the attempt ended is the harness's finding, not the agent's word (`_decide_end`): the harness's clock
    decides time-outs, an `infra_error` counts only with the gateway's evidence, and a score showing tampering
    makes the status `tampered`. Whatever the agent's output makes fail afterwards (diff, scoring, copies) is
    the agent's failure, recorded with the reason.

    Raises what setting the attempt up raises (laying out the problem, the sandbox): the caller decides
    whether that is the user's problem or an infrastructure failure worth a retry."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "task.md").write_text(problem.statement, encoding="utf-8")
    assert gateway.uds is not None, "agents reach the gateway through its unix socket"
    account = gateway.gateway.open_account(
        f"{problem.id} {run_id}",
        parent=parent_account,
        limit_usd=limits.budget_usd,
        aliases=frozenset(with_overseer(agent.aliases, overseer)),
    )
    failures: list[str] = []
    with ScratchArea(limits.scratch_mb) as scratch:
        run = await asyncio.to_thread(lay_out_run, problem, agent.code, scratch.path, gateway.uds, folder)
        # While the attempt lasts, its live folders are in the scratch area; followers find them here.
        (folder / "live.json").write_text(json.dumps({"workdir": str(run.workdir), "logdir": str(run.logdir)}))
        started, started_wall = time.monotonic(), time.time()
        contract = _contract(limits, run_id, problem.id, account.token, agent.models)
        spec = agent_spec(limits, sandbox, run, agent.env, contract, archive)
        halt = threading.Event()
        async with contextlib.AsyncExitStack() as watching:
            oversight = None
            if overseer is not None:
                oversight = await watching.enter_async_context(
                    AttemptOversight(
                        overseer,
                        gateway,
                        account,
                        WindowLimits(started_wall, limits.time_limit_s, limits.budget_usd),
                        run.logdir,
                        run.workdir,
                        folder / "overseer.jsonl",
                        grace_s=limits.cancel_grace_s,
                        task=problem.statement,
                        task_paths=[str(path) for path in spec.readonly],
                    )
                )
            agent_run = asyncio.ensure_future(asyncio.to_thread(sandbox.run, spec, halt))
            try:
                watch = await _follow(
                    agent_run,
                    run.logdir,
                    lambda: gateway.gateway.account(account.id),
                    started,
                    on_progress,
                    stop,
                    limits,
                    halt,
                    oversight.cancel_requested_at if oversight is not None else lambda: None,
                )
            except BaseException:
                halt.set()  # the caller is going away: the sandbox kills the agent's whole process tree
                raise
            seconds = time.monotonic() - started  # before the overseer stops: its wait is not the agent's time
        result = agent_run.result()
        if not stop.is_set():
            await _calls_settled(lambda: gateway.gateway.account(account.id), SETTLE_WAIT_S)
        rows = list(gateway.gateway.ledger.calls(account.id))
        (folder / "agent.log").write_text(result.stdout + result.stderr, encoding="utf-8")
        status, summary = _decide_end(watch, result, stop.is_set(), limits, rows)
        oversight_summary = None
        if oversight is not None:
            status, summary, oversight_summary = _overseen_end(
                oversight, watch, started, stop.is_set(), status, summary
            )
        diff = await asyncio.to_thread(
            _agent_caused, failures, "taking the diff", "", take_diff, run.workdir, folder / "baseline.git"
        )
        answer = read_untrusted_text(run.logdir / "answer.txt", MAX_ANSWER_BYTES)
        score = None
        if problem.score is not None and not stop.is_set():
            score = await asyncio.to_thread(
                _agent_caused, failures, "scoring", None, problem.score, sandbox, run.workdir, answer
            )
            if score is None:
                score = Score(0.0, f"the agent's output could not be scored: {failures[-1]}")
        for source, kept in ((run.workdir, "workdir"), (run.logdir, "logdir")):
            _agent_caused(failures, f"keeping its {kept}", None, copy_untrusted_tree, source, folder / kept)
        (folder / "live.json").unlink()
    return finish_attempt(
        folder,
        problem,
        agent,
        gateway,
        account,
        status,
        summary,
        score,
        diff,
        answer,
        failures,
        seconds,
        started_wall,
        rows,
        oversight_summary,
    )


def finish_attempt(
    folder: Path,
    problem: Problem,
    agent: AgentSetup,
    gateway: RunningGateway,
    account: AccountHandle,
    status: str,
    summary: str,
    score: Score | None,
    diff: str,
    answer: str | None,
    failures: list[str],
    seconds: float,
    started_wall: float,
    rows: list[sqlite3.Row],
    oversight_summary: OversightSummary | None = None,
) -> AttemptOutcome:
    """The attempt's outcome from what was found where it ran (here, or on a Ray worker): tampering and the
    harness's failures named, the trace summary and diff kept, cost and tokens from this gateway's ledger, and
    `outcome.json` written."""
    if score is not None and score.tampered is not None:
        status, summary = "tampered", "the scorer found evidence of tampering with its checks (see the score)"
    if failures:
        # What failed is named; the errors' own words go to harness.log, since a scorer's may quote what the
        # archive view must not show.
        summary = f"{summary} (the harness could not finish {', '.join(f.split(':', 1)[0] for f in failures)})"
        (folder / "harness.log").write_text("\n".join(failures) + "\n", encoding="utf-8")
    trace = summarize_attempt(problem.statement, read_events(folder / "logdir" / "events.jsonl"), status, summary)
    if oversight_summary is not None:
        trace = f"{trace}\n{oversight_summary.section()}"
    (folder / "diff.patch").write_text(diff, encoding="utf-8")
    state = gateway.gateway.account(account.id)
    declared = all(gateway.gateway.routes[alias].alias.provider == "scripted" for alias in agent.aliases)
    # A call still in flight after the wait is charged its reserved worst case, as the ledger would charge it.
    outcome = AttemptOutcome(
        status,
        summary,
        answer,
        score,
        nano_to_usd(state.spent_nano + state.reserved_nano),
        sum(r["input_tokens"] for r in rows),
        sum(r["output_tokens"] for r in rows),
        round(seconds, 2),
        round(queued_seconds(rows, started_wall, seconds), 2),
        charged_seconds(seconds, rows, started_wall, declared=declared),
        diff,
        trace,
        oversight_summary.line if oversight_summary is not None else "",
        oversight_summary is not None and oversight_summary.marked_for_review,
    )
    fields = {k: v for k, v in asdict(outcome).items() if k not in ("diff", "trace_summary")}
    (folder / "outcome.json").write_text(json.dumps(fields, indent=2), encoding="utf-8")
    return outcome


class AttemptRunner(Protocol):
    """What runs one attempt: `run_attempt` here, or the ray runner's `RayAttempts` on a cluster's node."""

    async def __call__(
        self,
        problem: Problem,
        agent: AgentSetup,
        limits: AttemptLimits,
        sandbox: Sandbox,
        gateway: RunningGateway,
        run_id: str,
        folder: Path,
        on_progress: Callable[[Progress], None],
        stop: asyncio.Event,
        *,
        parent_account: str | None = None,
        archive: Path | None = None,
        overseer: OverseerPlan | None = None,
    ) -> AttemptOutcome: ...


def _agent_caused(failures: list[str], what: str, fallback: T, step: Callable[..., T], *args: object) -> T:
    """Run a step the harness takes on the agent's output; a failure there is the agent's doing (a tree it left
    unreadable, a diff it broke), so it is recorded in `failures` and `fallback` stands in, never raised."""
    try:
        return step(*args)
    except Exception as error:
        failures.append(f"{what}: {type(error).__name__}: {' '.join(str(error).split())[:300]}")
        return fallback


def _overseen_end(
    oversight: AttemptOversight, watch: _Watch, started: float, stopped: bool, status: str, summary: str
) -> tuple[str, str, OversightSummary]:
    """The end as the overseer changed it: a run it cancelled before the agent reported an end of its own is
    `cancelled`, honoured when the agent then reported its end, else ended by the sandbox after the grace period.
    The user's stop and the harness's time-out stand."""
    cancel = oversight.cancel
    ended_first = cancel is not None and watch.end_seen_s is not None and watch.end_seen_s < cancel.at - started
    if cancel is None or stopped or status == "timeout" or ended_first:
        return status, summary, oversight.summary(honoured=None)
    honoured = watch.ended is not None and cancel.sub_agent is None
    why = f"cancelled by the overseer ({cancel.judgement.verdict.replace('_', ' ')})"
    if cancel.sub_agent is not None:
        why = f"its sub-agent {cancel.sub_agent} was {why}, did not stop within the grace period: the sandbox was ended"
    elif honoured:
        why += f"; the agent stopped: {watch.ended[1][:SUMMARY_CHARS]}" if watch.ended else ""
    else:
        why += "; the agent did not stop within the grace period, so the sandbox was ended"
    return "cancelled", why, oversight.summary(honoured=honoured)


#: Characters of the agent's own summary kept (the rest is the agent's to say in its files).
SUMMARY_CHARS = 2000


def _decide_end(
    watch: _Watch, result: SandboxResult, stopped: bool, limits: AttemptLimits, calls: list[sqlite3.Row]
) -> tuple[str, str]:
    """How the attempt ended, from the harness's own evidence: its clock (the time from the start to the end the
    harness saw: the agent's reported end, else its exit) against the time limit, the gateway's ledger for
    infrastructure failures, and the agent's report only where those agree with it."""
    if stopped:
        said = (
            watch.ended[1][:SUMMARY_CHARS] if watch.ended else f"stopped by the harness; the agent {result.describe()}"
        )
        return "cancelled", said
    if (
        watch.end_seen_s is not None
        and watch.end_seen_s > limits.time_limit_s
        or (watch.end_seen_s is None and watch.overdue)
    ):
        said = f"; the agent reported {watch.ended[0]}" if watch.ended else ""
        return "timeout", f"the time limit of {limits.time_limit_s:.0f} s ran out (the harness's clock){said}"
    if watch.ended is None:
        return _unreported_end(result)
    status, summary = watch.ended
    summary = summary[:SUMMARY_CHARS]
    if status not in AGENT_STATUSES:
        return "error", f"the agent reported an unknown status ({status[:40]!r}): {summary}"
    if status == "infra_error" and not upstream_failed(calls):
        return "error", f"the agent reported an infrastructure failure the gateway did not see: {summary}"
    return status, summary


#: Client errors the gateway passes through from upstream: the request's fault, not the infrastructure's.
_CLIENT_ERRORS = frozenset({400, 404, 413, 422})


def upstream_failed(calls: list[sqlite3.Row]) -> bool:
    """Whether the gateway's ledger shows the upstream failing the attempt at its end: its last call is one the
    gateway could not get answered (an upstream still failing after the retries, or refusing the gateway's
    credentials). A failure the model recovered from, with calls answered after it, is no evidence."""
    settled = [call for call in calls if call["status"] != "pending"]
    if not settled:
        return False
    last = max(settled, key=lambda call: (call["started_at"], call["id"]))
    return last["status"] == "error" and last["http_status"] not in _CLIENT_ERRORS


def queued_seconds(calls: list[sqlite3.Row], started_at: float, wall_s: float) -> float:
    """How long at least one call was waiting in the gateway (the union of the calls' queued intervals within
    the attempt's wall time): parallel waits count once."""
    end = started_at + wall_s
    spans = sorted(
        (max(started_at, call["started_at"]), min(end, call["started_at"] + call["queued_s"])) for call in calls
    )
    total, reached = 0.0, started_at
    for low, high in spans:
        low = max(low, reached)
        if high > low:
            total += high - low
            reached = high
    return total


def charged_seconds(wall_s: float, calls: list[sqlite3.Row], started_at: float, *, declared: bool) -> float:
    """The time an attempt is charged: its wall time less the time its calls queued in the gateway (waiting for
    a provider's limits is not the agent's doing). With `declared` (every model the attempt may call is the
    scripted double) it is the calls' declared latencies instead, so that scripted runs give the same times,
    utilities and policy choices on every machine and every rerun."""
    if declared:
        return round(sum(cast(float, call["upstream_s"]) for call in calls), 2)
    return round(max(0.0, wall_s - queued_seconds(calls, started_at, wall_s)), 2)


def _unreported_end(result: SandboxResult) -> tuple[str, str]:
    """Status and summary for an agent that ended without its `agent_end` event (a sandbox that cannot start
    raises `SandboxError` instead, which the caller treats as an infrastructure failure)."""
    if result.ending == "timeout":
        return "timeout", "the sandbox's wall time ran out before the agent reported an end"
    return "error", f"the agent {result.describe()} without reporting an end (see agent.log)"


@dataclass
class _Watch:
    """What following the events has learnt: the top agent, how it said it ended and when the harness saw that
    (seconds from the start, on the harness's clock), whether the time limit passed first, and the progress."""

    progress: Progress
    started: float
    top_agent: str | None = None
    ended: tuple[str, str] | None = None
    end_seen_s: float | None = None
    overdue: bool = False

    def absorb(self, reader: EventReader) -> None:
        for event in reader.new_events():
            if event.type == "agent_start" and event.parent_id is None and self.top_agent is None:
                self.top_agent = event.agent_id
            elif event.type == "llm_call":
                self.progress.step += 1
            elif event.type == "tool_call":
                self.progress.tool = str(event.data.get("tool", ""))
            elif event.type == "agent_end" and event.agent_id == self.top_agent and self.ended is None:
                self.ended = (str(event.data.get("status", "error")), str(event.data.get("summary", "")))
                self.end_seen_s = time.monotonic() - self.started


async def _follow(
    agent_run: asyncio.Future[SandboxResult],
    logdir: Path,
    account: Callable[[], Account],
    started: float,
    on_progress: Callable[[Progress], None],
    stop: asyncio.Event,
    limits: AttemptLimits,
    halt: threading.Event,
    overseer_cancelled: Callable[[], float | None],
) -> _Watch:
    """Follow the agent until its sandbox run ends: progress from its events and the ledger. On `stop` or when
    its time is up, a cancel through its inbox, then `halt` (the sandbox kills it) after the grace period; a
    cancel the overseer sent (`overseer_cancelled`: when, if it did) is enforced the same way. An agent that goes
    on after reporting its end is halted after the same grace, or at its time limit if sooner."""
    reader = EventReader(logdir / "events.jsonl")
    watch = _Watch(Progress(), started)
    cancel_sent_at: float | None = None
    while not agent_run.done():
        watch.absorb(reader)
        state = account()
        watch.progress.cost_usd, watch.progress.tokens = nano_to_usd(state.spent_nano), state.spent_tokens
        now = time.monotonic()
        watch.progress.elapsed_s = now - started
        on_progress(watch.progress)
        if watch.ended is None and now - started > limits.time_limit_s:
            watch.overdue = True
        if (stop.is_set() or watch.overdue) and cancel_sent_at is None:
            cancel_sent_at = now
            _send_cancel(logdir, watch.top_agent or "main")
        if cancel_sent_at is None and (cancelled_at := overseer_cancelled()) is not None:
            cancel_sent_at = cancelled_at  # the overseer posted its notice itself
        # An agent that goes on after its reported end is halted after the grace, and never past its limit.
        lingering = watch.end_seen_s is not None and (
            now - started - watch.end_seen_s > limits.cancel_grace_s or now - started > limits.time_limit_s
        )
        if lingering or cancel_sent_at is not None and now - cancel_sent_at > limits.cancel_grace_s:
            halt.set()
        await asyncio.wait({agent_run}, timeout=0.25)
    watch.absorb(reader)
    return watch


async def _calls_settled(account: Callable[[], Account], wait_s: float) -> None:
    """Wait (at most `wait_s`) until no call of the account is in flight. The gateway finishes and meters a
    call whose agent has gone, so waiting puts its cost and tokens in this attempt's outcome; and a local
    model is not still busy with it when the next attempt starts on the clock."""
    deadline = time.monotonic() + wait_s
    while account().reserved_tokens > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)


def _send_cancel(logdir: Path, agent_id: str) -> None:
    """Ask the agent to stop, through its inbox (the agent's folder: an inbox it replaced by a link gets
    nothing, and the sandbox kills the agent after the grace period). Numbered as the overseer's notices are
    (`post_notice`: after every notice there), so the two never take the same file."""
    post_notice(logdir, "cancel", agent_id, "stopped by the user")
