"""The overseer's loop: follow the attempt, run the detectors on what is new, review every `interval_s` (or
after `events_per_review` events, or at once when a detector finds something new), act on the judgement through
the inbox, and record every finding, judgement and action as a harness event. An agent told what it repeats and
still caught repeating itself `escalate_after_steps` steps later has its run cancelled without another review."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from sica.config import OverseerSettings
from sica.overseer.detectors import Finding, FindingKind, detect
from sica.overseer.follow import AttemptFollower
from sica.overseer.inbox import post_notice
from sica.overseer.judgement import Judgement, Reviewer, ReviewOutcome
from sica.overseer.record import OverseerRecord
from sica.overseer.rendering import render_window, total_steps
from sica.overseer.window import Window, cut

#: Findings that say the agent is stuck (its notice unheeded, they bring the cancel: `escalate_after_steps`).
STUCK_KINDS: frozenset[FindingKind] = frozenset(
    {
        "repeated_action_observation",
        "repeated_action_error",
        "alternation",
        "talking_without_acting",
        "no_progress",
        "silent",
        "context_window",
    }
)


class Overseer:
    """Oversees one attempt. Without a `reviewer` (no model for the overseer role) it runs the detectors and
    records their findings only. `on_review` sees every review's outcome (the CLI prints it), `on_cancel` every
    cancel posted (the agent it names, the judgement: the runner enforces it)."""

    def __init__(
        self,
        settings: OverseerSettings,
        follower: AttemptFollower,
        logdir: Path,
        record: OverseerRecord,
        reviewer: Reviewer | None = None,
        *,
        on_review: Callable[[ReviewOutcome], None] | None = None,
        on_finding: Callable[[Finding], None] | None = None,
        on_cancel: Callable[[str, Judgement], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        task: str = "",
    ) -> None:
        self.settings = settings
        self.follower = follower
        self.logdir = logdir
        self.record = record
        self.reviewer = reviewer
        self.on_review = on_review
        self.on_finding = on_finding
        self.on_cancel = on_cancel
        self.task = task
        #: What it did, one line an action, shown at the next reviews.
        self.actions: list[str] = []
        #: The attempt's tool steps when the overseer first sent a notice, and whether it then cancelled itself.
        self._noticed_at_step: int | None = None
        self._escalated = False
        self._clock = clock
        self.notes = ""
        self.findings: list[Finding] = []
        self.judgements: list[Judgement] = []
        #: Notices and cancels the model asked for that no finding supported (`interventions_need_findings`).
        self.withheld = 0
        self._seen_findings: set[str] = set()
        self._next_review = clock() + settings.interval_s
        self._events_at_review = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Oversee until `stop` is set or the top agent has ended."""
        while not stop.is_set():
            await self.step()
            top = self.follower.window.top_agent
            if top is not None and self.follower.window.agents[top].status != "running":
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.poll_s)

    async def step(self) -> ReviewOutcome | None:
        """Read what is new, detect, and review when one is due; the review's outcome, if there was one."""
        await asyncio.to_thread(self.follower.poll)
        window = self.follower.window
        current = detect(window, self.settings)
        fresh = [finding for finding in current if finding.line() not in self._seen_findings]
        for finding in fresh:
            self._seen_findings.add(finding.line())
            self.findings.append(finding)
            self.record.write("finding", kind=finding.kind, agent=finding.agent_id, evidence=finding.evidence)
            if self.on_finding is not None:
                self.on_finding(finding)
        if self._stuck_after_notice(current):
            self._escalate()
            return None
        due = (
            fresh
            or self._clock() >= self._next_review
            or window.events_seen - self._events_at_review >= self.settings.events_per_review
        )
        if self.reviewer is None or not due:
            return None
        return await self.review(current)

    async def review(self, findings: list[Finding]) -> ReviewOutcome:
        """Ask for a judgement now, record it and act on it."""
        assert self.reviewer is not None
        window = self.follower.window
        self._events_at_review = window.events_seen
        rendering = render_window(window, findings, self.notes, task=self.task, actions=self.actions)
        outcome = await self.reviewer.review(rendering)
        judgement = outcome.judgement
        if judgement is None:
            self.record.write("review_ignored", reason=outcome.reason, replies=outcome.replies)
            self._next_review = self._clock() + self.settings.interval_s
        else:
            self.judgements.append(judgement)
            self.notes = judgement.notes
            self.record.write("judgement", **judgement.model_dump())
            self._next_review = self._clock() + judgement.next_look_s
            self._act(judgement, findings)
        if self.on_review is not None:
            self.on_review(outcome)
        return outcome

    def _stuck_after_notice(self, current: list[Finding]) -> bool:
        """Whether the agent was told and is still caught repeating itself `escalate_after_steps` steps later."""
        after = self.settings.escalate_after_steps
        if not after or self._noticed_at_step is None or self._escalated:
            return False
        stuck = any(finding.kind in STUCK_KINDS for finding in current)
        return stuck and total_steps(self.follower.window) - self._noticed_at_step >= after

    def _escalate(self) -> None:
        """Cancel the run without asking the model again: it was told, and the detectors still see it stuck."""
        self._escalated = True
        window = self.follower.window
        top = window.top_agent or "main"
        steps = total_steps(window) - (self._noticed_at_step or 0)
        reason = f"still stuck {steps} steps after the overseer's notice"
        delivered = post_notice(self.logdir, "cancel", top, f"cancelled by the overseer: {reason}")
        self.record.write("action", action="cancel", scope="run", agent=top, delivered=delivered, reason=reason)
        self.actions.append(f"at step {total_steps(window)}: cancelled the run ({reason})")
        if self.on_cancel is not None:
            self.on_cancel(top, Judgement(verdict="looping", cancel="run", notes=reason))

    def _act(self, judgement: Judgement, findings: list[Finding]) -> None:
        window = self.follower.window
        top = window.top_agent or "main"
        named = judgement.agent if judgement.agent in window.agents else top
        supported = not self.settings.interventions_need_findings or _supports(judgement, findings)
        if judgement.notify and (supported or judgement.verdict != "looping"):
            delivered = post_notice(self.logdir, "notify", named, judgement.notify)
            self.record.write("action", action="notify", agent=named, text=judgement.notify, delivered=delivered)
            self.actions.append(f"at step {total_steps(window)}: told {named}: {cut(judgement.notify, 160)}")
            if self._noticed_at_step is None:
                self._noticed_at_step = total_steps(window)
        elif judgement.notify:
            self._withhold(window, "notify")
        if judgement.cancel != "none" and not supported:
            self._withhold(window, f"cancel {judgement.cancel}")
        elif judgement.cancel != "none":
            target = top if judgement.cancel == "run" else named
            text = f"cancelled by the overseer: {judgement.verdict}"
            delivered = post_notice(self.logdir, "cancel", target, text)
            self.record.write("action", action="cancel", scope=judgement.cancel, agent=target, delivered=delivered)
            if self.on_cancel is not None:
                self.on_cancel(target, judgement)

    def _withhold(self, window: Window, what: str) -> None:
        self.withheld += 1
        self.actions.append(f"at step {total_steps(window)}: {what} withheld (no detector finding supports it)")
        self.record.write("action", action="withheld", withheld=what, reason="no finding supports the verdict")


def _supports(judgement: Judgement, findings: list[Finding]) -> bool:
    """Whether a detector's finding supports the judgement's verdict: looping needs a stuck pattern, tampering a
    tampering sign, anything else some finding."""
    kinds = {finding.kind for finding in findings}
    if judgement.verdict == "looping":
        return bool(kinds & STUCK_KINDS)
    if judgement.verdict == "tampering":
        return "tampering" in kinds
    return bool(kinds)
