"""The run's budgets in money and time (`[loop] budget_usd`, `time_budget_s`), its clock, and the halt of running
work: a meta step or evaluation cut short by a budget or by the user is cancelled, never recorded as the agent's
failure. The money is the run's account's (in the ledger); the time is the run's state's `elapsed_s`, to which each
piece of work (agent 0's evaluation, an iteration) adds its own, so a resumed run carries both on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sica.config import LoopSettings
from sica.gateway.pricing import nano_to_usd
from sica.loop.accounts import RunAccounts
from sica.loop.run_state import RunState


@dataclass
class RunBudget:
    """What the run may still spend, and the event that halts the work under way."""

    loop: LoopSettings
    state: RunState
    accounts: RunAccounts
    stop: asyncio.Event
    on_line: Callable[[str], None]
    halt: asyncio.Event = field(default_factory=asyncio.Event)
    #: When the work under way (agent 0's evaluation, an iteration) started, for the time budget; None between.
    work_started: float | None = None

    async def watch(self) -> None:
        """Halt running work when the user stops the run, when the run's account refuses a call or when the run's
        time is up."""
        time_budget = self.loop.time_budget_s
        while not self.halt.is_set():
            started = self.work_started
            if started is not None and time_budget is not None and self.elapsed_s(started) >= time_budget:
                self.halt.set()
            if self.stop.is_set() or self.accounts.run.refused:
                self.halt.set()
            await asyncio.sleep(0.1)

    def elapsed_s(self, work_started: float) -> float:
        """The run's wall time: what its state holds, and the work under way since `work_started`."""
        return self.state.elapsed_s + time.monotonic() - work_started

    def start_work(self) -> None:
        self.work_started = time.monotonic()

    def end_work(self) -> None:
        """Add the work's time to the run's wall time, kept in its state so that a resumed run carries it on."""
        assert self.work_started is not None
        self.state.elapsed_s = self.elapsed_s(self.work_started)
        self.work_started = None

    def halted(self) -> bool:
        """Whether running work was halted. A refused call's limit is remembered, so a resume with that limit
        stops at once and one with a higher limit carries on (the run's time is in its state already). A refusal
        halts the work even when it ended before the watcher saw the refusal."""
        if self.accounts.run.refused:
            self.halt.set()
        if not self.halt.is_set():
            return False
        if self.accounts.run.refused:
            self.state.budget_ran_out_at = self.loop.budget_usd
        return True

    def spent(self) -> bool:
        """Whether the run's budget in money or time is used up; says so."""
        spent, elapsed = self.accounts.spent_usd(self.accounts.run_id), self.state.elapsed_s
        budget, time_budget = self.loop.budget_usd, self.loop.time_budget_s
        ran_out = budget is not None and self.state.budget_ran_out_at == budget
        if budget is not None and (spent >= budget or ran_out):
            self.on_line(
                f"the run's budget is spent: ${spent:.4f} of ${budget:.4f} (it cannot pay for another call); stopping"
            )
            return True
        if time_budget is not None and elapsed >= time_budget:
            self.on_line(f"the run's time is up: {elapsed:.0f} s of {time_budget:.0f} s; stopping")
            return True
        return False

    def meta_cap_usd(self) -> float | None:
        """A meta step's cap: its own (`[loop] meta_budget_usd`), and never more than what is left of the run's
        budget (which the gateway enforces anyway; the agent is told the tighter figure)."""
        caps = [self.loop.meta_budget_usd]
        left = self.accounts.run.left_nano()
        if left is not None:
            caps.append(max(0.0, nano_to_usd(left)))
        known = [cap for cap in caps if cap is not None]
        return min(known) if known else None
