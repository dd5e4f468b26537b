"""One overseer beside every attempt (`sica.overseer`), started and ended by the runner: it follows the attempt's
events and the ledger's calls of the attempt's account subtree, reviews them with the overseer's model on an
account of its own (a child of the attempt's, its budget a share of the attempt's), acts through the agent's
inbox, and records everything to `overseer.jsonl` in the attempt's folder, outside the sandbox. The attempt reads
back a run cancel (to enforce it after the grace period) and a summary for its outcome."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from sica.archive.run_db import OverseerEntry
from sica.config import ModelRoles, OverseerSettings
from sica.gateway import RunningGateway
from sica.gateway.gateway import AccountHandle
from sica.overseer import (
    AttemptFollower,
    LedgerView,
    Limits,
    Overseer,
    OverseerRecord,
    Reviewer,
    ReviewModel,
    ReviewOutcome,
    Window,
)
from sica.overseer.judgement import Judgement
from sica.overseer.record import read_record
from sica.overseer.window import cut

#: How long an ended attempt waits for a review in progress before cancelling it.
STOP_WAIT_S = 5.0
#: Judgements listed in the attempt's account (the latest).
JUDGEMENTS_SHOWN = 6


@dataclass(frozen=True)
class OverseerPlan:
    """The overseer every attempt of a run gets: `[overseer]` and the model that judges."""

    settings: OverseerSettings
    model: ReviewModel

    @classmethod
    def of(cls, settings: OverseerSettings, roles: ModelRoles) -> OverseerPlan | None:
        """The plan when `[overseer] enabled` and its role names a configured alias in `[roles]`; else None (no
        overseer: the attempt runs as it always did)."""
        alias = getattr(roles.roles, settings.model_role)
        if not settings.enabled or alias is None or alias not in roles.aliases:
            return None
        model = ReviewModel(alias, roles.aliases[alias].wire_format, settings.max_output_tokens)
        return cls(settings, model)

    def fingerprint(self) -> dict[str, object]:
        """What of the plan can change an attempt's result (it may cancel it): for the results' cache key."""
        return {"alias": self.model.alias, "settings": self.settings.model_dump(mode="json")}


def recorded_entries(folder: Path) -> list[OverseerEntry]:
    """The overseer's record of a finished attempt (its folder's `overseer.jsonl`), for a run's `run.sqlite`."""
    try:
        records = read_record(folder / "overseer.jsonl")
    except (OSError, ValueError):
        return []
    return [
        OverseerEntry(float(r.get("ts", 0)), str(r.get("type", "")), json.dumps(r.get("data", {})))
        for r in records
        if isinstance(r, dict)
    ]


def with_overseer(aliases: set[str], plan: OverseerPlan | None) -> set[str]:
    """The aliases a gateway (or an account) must serve for an agent's `aliases` and the plan's overseer."""
    return aliases | {plan.model.alias} if plan is not None else set(aliases)


@dataclass(frozen=True)
class RunCancel:
    """The overseer's cancel of the whole run: when (monotonic), at which step, why, and on what. `sub_agent`
    names the sub-agent whose cancel was not honoured within the grace period, which ends the whole sandbox."""

    at: float
    step: int
    judgement: Judgement
    doing: str
    sub_agent: str | None = None


@dataclass(frozen=True)
class OversightSummary:
    """What the overseer made of an attempt: one line for the outcome (`line`), a line per judgement, and whether
    a tampering judgement marks the result for review."""

    line: str
    judgements: list[str] = field(default_factory=list)
    marked_for_review: bool = False

    def section(self) -> str:
        """The overseer's part of the attempt's account (`trace_summary`), in Markdown."""
        listed = "".join(f"- {line}\n" for line in self.judgements[-JUDGEMENTS_SHOWN:])
        return f"## Overseer\n\n{self.line}\n" + (f"\nIts judgements:\n\n{listed}" if listed else "")


class AttemptOversight:
    """The overseer of one running attempt, a task beside the attempt's follower (`async with`): opened on its own
    account under `account`, reading the live `logdir` and `workdir`, recording to `record_path`. `task` is the
    problem's statement, shown to the overseer's model; `task_paths` are more sandbox paths of the task (its
    read-only mounts: the task, an archive view) whose reads are no tampering sign. A sub-agent still running
    `grace_s` after the overseer cancelled it turns the cancel into one of the run, enforced at once: the sandbox
    is ended."""

    def __init__(
        self,
        plan: OverseerPlan,
        gateway: RunningGateway,
        account: AccountHandle,
        limits: Limits,
        logdir: Path,
        workdir: Path,
        record_path: Path,
        *,
        grace_s: float,
        task: str = "",
        task_paths: list[str] | None = None,
    ) -> None:
        settings = plan.settings.model_copy(update={"task_paths": [*plan.settings.task_paths, *(task_paths or [])]})
        self._settings = settings
        budget = None if limits.budget_usd is None else limits.budget_usd * settings.budget_share
        self.account = gateway.gateway.open_account(
            f"overseer {account.name}", parent=account.id, limit_usd=budget, aliases=frozenset({plan.model.alias})
        )
        self._gateway = gateway
        self._plan = plan
        self._ledger = LedgerView(gateway.gateway.ledger.path)
        window = Window(limits, max_steps=settings.window_steps, max_calls=settings.window_calls)
        self.follower = AttemptFollower(
            window,
            logdir,
            ledger=self._ledger,
            account_id=account.id,
            exclude_accounts=frozenset({self.account.id}),
            workdir=workdir,
        )
        self.record = OverseerRecord(record_path)
        self.cancel: RunCancel | None = None
        self._grace_s = grace_s
        self._task_statement = task
        #: Sub-agents the overseer cancelled: when (monotonic) and why.
        self.agent_cancels: dict[str, tuple[float, Judgement]] = {}
        self.failure: str | None = None
        self.ignored = 0
        self._overseer: Overseer | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client_stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> AttemptOversight:
        client = await self._client_stack.enter_async_context(self._gateway.client(self.account.token))
        self._overseer = Overseer(
            self._settings,
            self.follower,
            self.follower.events_path.parent,
            self.record,
            Reviewer(client, self._plan.model),
            on_review=self._reviewed,
            on_cancel=self._cancelled,
            task=self._task_statement,
        )
        self._task = asyncio.create_task(self._run(self._overseer))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        try:
            if self._task is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._task), STOP_WAIT_S)
                if not self._task.done():
                    self._task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._task
        finally:
            await self._client_stack.aclose()
            self.record.close()
            self._ledger.close()

    async def _run(self, overseer: Overseer) -> None:
        """Oversee until stopped; a failure of the overseer's own is recorded, never the attempt's."""
        try:
            await overseer.run(self._stop)
        except Exception as error:
            self.failure = f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"

    def _reviewed(self, outcome: ReviewOutcome) -> None:
        if outcome.judgement is None:
            self.ignored += 1

    def _cancelled(self, target: str, judgement: Judgement) -> None:
        if self.cancel is not None:
            return
        window = self.follower.window
        if judgement.cancel == "run" or target == window.top_agent:
            self.cancel = RunCancel(time.monotonic(), _step(window), judgement, _doing(window, judgement.agent))
        else:
            self.agent_cancels.setdefault(target, (time.monotonic(), judgement))

    def cancel_requested_at(self) -> float | None:
        """When (monotonic) the overseer cancelled the whole run, if it did: its own cancel of the run, or the
        cancel of a sub-agent that is still running after the grace period (then long enough ago that the
        sandbox is ended at once)."""
        if self.cancel is None:
            self._enforce_agent_cancels()
        return None if self.cancel is None else self.cancel.at

    def _enforce_agent_cancels(self) -> None:
        now = time.monotonic()
        window = self.follower.window
        for agent_id, (at, judgement) in list(self.agent_cancels.items()):
            if now - at > self._grace_s and _still_running(window, agent_id):
                doing = _doing(window, agent_id)
                self.cancel = RunCancel(at, _step(window), judgement, doing, sub_agent=agent_id)
                self.record.write("action", action="end_sandbox", agent=agent_id, reason="cancel not honoured")
                return

    def summary(self, *, honoured: bool | None) -> OversightSummary:
        """The overseer's summary once the attempt has ended; `honoured` says whether the agent ended itself
        after a run cancel (False: the sandbox was ended after the grace period)."""
        overseer = self._overseer
        judgements = overseer.judgements if overseer is not None else []
        listed = [_judgement_line(j) for j in judgements]
        tampering = any(j.verdict == "tampering" for j in judgements)
        if self.cancel is not None:
            cancel = self.cancel
            whom = f" {cancel.sub_agent}" if cancel.sub_agent else ""
            line = f"overseer: cancelled{whom} at step {cancel.step}, {_verdict(cancel.judgement.verdict)}"
            line += f" on {cancel.doing}" if cancel.doing else ""
            if honoured is False:
                line += "; not honoured within the grace period, the sandbox was ended"
        else:
            reviews = len(judgements) + self.ignored
            line = f"overseer: {reviews} review{'s' if reviews != 1 else ''}"
            line += f" ({self.ignored} ignored)" if self.ignored else ""
            line += f", {_verdict(judgements[-1].verdict)}" if judgements else ""
            if self.agent_cancels:
                line += f"; cancelled {', '.join(self.agent_cancels)}, which stopped"
        findings = overseer.findings if overseer is not None else []
        if findings:
            kinds = sorted({finding.kind for finding in findings})
            line += f"; findings: {', '.join(kinds)}"
        if overseer is not None and overseer.withheld:
            line += f"; {overseer.withheld} intervention{'s' if overseer.withheld != 1 else ''} withheld (no finding)"
        if self.failure is not None:
            line += f"; the overseer failed ({self.failure})"
        if tampering:
            line += "; marked for review: the overseer judged it tampering"
        return OversightSummary(line, listed, tampering)


def _verdict(verdict: str) -> str:
    return verdict.replace("_", " ")


def _step(window: Window) -> int:
    """The attempt's step as far as the overseer saw it: its model calls (the ledger's when the agent wrote none)."""
    return max(sum(agent.model_calls for agent in window.agents.values()), len(window.calls))


def _still_running(window: Window, agent_id: str) -> bool:
    """Whether the agent or any agent it started is running, as the agent's events say (an agent that lies about
    its sub-agent's end is still seen making calls in the ledger, and the overseer can cancel the run)."""
    agents = list(window.agents.values())
    family = {agent_id}
    grown = True
    while grown:
        more = {a.agent_id for a in agents if a.parent_id in family} - family
        family |= more
        grown = bool(more)
    return any(a.agent_id in family and a.status == "running" for a in agents)


def _doing(window: Window, agent: str | None) -> str:
    """What the judged agent (else any) was doing last: its latest tool call, its arguments' values."""
    steps = [step for step in window.steps if agent is None or step.agent_id == agent] or list(window.steps)
    if not steps:
        return ""
    step = steps[-1]
    try:
        arguments = json.loads(step.arguments)
    except ValueError:
        arguments = step.arguments
    shown = " ".join(str(value) for value in arguments.values()) if isinstance(arguments, dict) else str(arguments)
    return cut(f"{step.tool} {shown}".strip(), 100)


def _judgement_line(judgement: Judgement) -> str:
    parts = [_verdict(judgement.verdict), f"[{judgement.agent or 'top agent'}]"]
    if judgement.cancel != "none":
        parts.append(f"cancel {judgement.cancel}")
    if judgement.notify:
        parts.append(f"told: {cut(judgement.notify, 200)}")
    return " ".join(parts)
