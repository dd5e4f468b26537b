"""Following an attempt: its `events.jsonl` as it grows and the gateway's ledger of its account subtree, into
the window. The events file is the agent's and read as data only (partial lines wait, huge lines and garbage are
skipped and counted, a log that shrinks or is replaced is noted as a tampering sign); the ledger is read-only."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sica.events import STATUSES, Event, EventReader
from sica.overseer.ledger_view import LedgerView, model_call
from sica.overseer.window import AgentNote, AgentView, ToolStep, Window, canonical_arguments, cut, digest
from sica.sandbox.untrusted import LeftOut, TreeLimits, walk_untrusted_tree

#: A tool's output digested, at most (the rest of a huge output does not make it new).
OUTPUT_DIGEST_CHARS = 64 << 10
#: The workdir fingerprint's walk: enough for a task's tree, never the whole of a tree an agent filled.
FINGERPRINT_LIMITS = TreeLimits(max_depth=40, max_entries=20_000, max_file_bytes=None, max_total_bytes=None)


def workdir_fingerprint(workdir: Path) -> str | None:
    """A digest of the workdir's names, sizes and modification times (never through a link); None when it cannot
    be walked."""
    summary = hashlib.sha256()
    try:
        for visit, entry in walk_untrusted_tree(
            workdir, FINGERPRINT_LIMITS, LeftOut(), skip_folders=frozenset({".git"})
        ):
            if visit in ("file", "link"):
                summary.update(f"{entry.relative}\0{entry.stat.st_size}\0{entry.stat.st_mtime_ns}\n".encode())
    except Exception:
        return None
    return summary.hexdigest()[:16]


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 40 else 0


class AttemptFollower:
    """Reads what is new of one attempt into `window` on each `poll`: the agent's events from `logdir`, and, with a
    ledger, the calls of `account_id`'s subtree (found from the events' run and problem when not given) except
    those of `exclude_accounts` (the overseer's own), and the subtree's spend. With `workdir`, each tool result
    carries the workdir's fingerprint when it was seen."""

    def __init__(
        self,
        window: Window,
        logdir: Path,
        *,
        ledger: LedgerView | None = None,
        account_id: str | None = None,
        exclude_accounts: frozenset[str] = frozenset(),
        workdir: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window = window
        self.events_path = logdir / "events.jsonl"
        self.ledger = ledger
        self.account_id = account_id
        self.exclude_accounts = exclude_accounts
        self.workdir = workdir
        self._clock = clock
        self._reader = EventReader(self.events_path)
        self._invalid_before = 0
        self._file: tuple[int, int] | None = None  # (inode, size) last seen
        self._calls_through = 0
        self._counted: set[int] = set()
        self._run_problem: tuple[str, str] | None = None
        #: When (wall time) the agent last wrote an event: its stamp, never later than when the follower read it
        #: (an agent cannot hide calls behind a stamp in the future).
        self._last_event_at = float("-inf")

    def poll(self) -> int:
        """Read what is new; returns how many events and calls it added to the window."""
        self.window.now = self._clock()
        self._check_log()
        added = self._absorb_events()
        if self.ledger is not None:
            added += self._absorb_calls(self.ledger)
        return added

    def _check_log(self) -> None:
        """A log that shrinks, is replaced or vanishes is noted (and read again from its start)."""
        try:
            info = os.lstat(self.events_path)
            now: tuple[int, int] | None = (info.st_ino, info.st_size)
        except OSError:
            now = None
        before, self._file = self._file, now
        if before is None:
            return
        if now is None:
            self.window.log_anomalies.append("events.jsonl was removed")
        elif now[0] != before[0]:
            self.window.log_anomalies.append("events.jsonl was replaced by another file")
        elif now[1] < before[1]:
            self.window.log_anomalies.append(f"events.jsonl shrank from {before[1]} to {now[1]} bytes")
        else:
            return
        self._invalid_before += self._reader.invalid_lines
        self._reader = EventReader(self.events_path)

    def _absorb_events(self) -> int:
        added = 0
        fingerprint: str | None = None
        fingerprinted = False
        for event in self._reader.new_events():
            added += 1
            self.window.events_seen += 1
            self.window.calls_since_event = 0
            self._last_event_at = max(self._last_event_at, min(event.ts, self.window.now))
            if self._run_problem is None:
                self._run_problem = (event.run, event.problem)
            if event.type == "tool_result" and not fingerprinted and self.workdir is not None:
                fingerprint, fingerprinted = workdir_fingerprint(self.workdir), True
            self._absorb(event, fingerprint)
        self.window.invalid_lines = self._invalid_before + self._reader.invalid_lines
        return added

    def _agent(self, event: Event) -> AgentView | None:
        agents = self.window.agents
        if event.agent_id not in agents:
            if len(agents) >= self.window.max_agents:
                return None
            agents[event.agent_id] = AgentView(
                cut(event.agent_id, 80), event.parent_id, cut(str(event.data.get("kind", "")), 40), self.window.now
            )
        return agents[event.agent_id]

    def _absorb(self, event: Event, fingerprint: str | None) -> None:
        agent = self._agent(event)
        data = event.data
        if agent is None:
            return
        if event.type == "agent_end":
            status = str(data.get("status", ""))
            agent.status = status if status in STATUSES else "error"
            agent.ended_at = self.window.now
        elif event.type == "llm_call":
            agent.model_calls += 1
            agent.calls_without_tool += 1
            agent.input_tokens += _number(data.get("input_tokens"))
            agent.output_tokens += _number(data.get("output_tokens"))
        elif event.type == "tool_call":
            agent.tool_calls += 1
            agent.calls_without_tool = 0
            self.window.steps.append(
                ToolStep(
                    agent.agent_id,
                    self.window.now,
                    cut(str(data.get("tool", "")), 80),
                    cut(canonical_arguments(data.get("arguments")), 2000),
                    str(data.get("call_id", ""))[:80],
                )
            )
        elif event.type == "tool_result":
            self._result(agent.agent_id, data, fingerprint)
        elif event.type in ("message", "error", "notification"):
            text = data.get("text") if event.type != "error" else f"{data.get('kind', '')}: {data.get('message', '')}"
            self.window.notes.append(AgentNote(agent.agent_id, self.window.now, event.type, cut(str(text))))

    def _result(self, agent_id: str, data: dict[str, Any], fingerprint: str | None) -> None:
        call_id = str(data.get("call_id", ""))[:80]
        step = next(
            (s for s in reversed(self.window.steps) if s.agent_id == agent_id and s.call_id == call_id and not s.done),
            None,
        )
        if step is None:
            return
        output = str(data.get("output", ""))[:OUTPUT_DIGEST_CHARS]
        step.ok = data.get("ok") is True
        step.output = cut(output)
        step.output_digest = digest(output)
        step.new_output = step.output_digest not in self.window.seen_outputs
        step.workdir = fingerprint
        if len(self.window.seen_outputs) < 100_000:
            self.window.seen_outputs.add(step.output_digest)

    def _absorb_calls(self, ledger: LedgerView) -> int:
        if self.account_id is None:
            named = self._run_problem and ledger.account_named(f"{self._run_problem[1]} {self._run_problem[0]}")
            self.account_id = named or ledger.only_top_account()
            if self.account_id is None:
                return 0
        added = 0
        watermark = None
        for row in ledger.calls_after(self.account_id, self._calls_through):
            call_id = int(row["id"])
            if row["status"] == "pending":
                watermark = call_id - 1 if watermark is None else watermark
                continue
            if call_id in self._counted:
                continue
            self._counted.add(call_id)
            if row["account_id"] in self.exclude_accounts:
                continue
            self.window.calls.append(model_call(row))
            # Read after the events, so a call counts as silent only if it began after the agent's last event.
            if float(row["started_at"]) > self._last_event_at:
                self.window.calls_since_event += 1
            added += 1
        newest = max(self._counted, default=self._calls_through)
        self._calls_through = max(self._calls_through, watermark if watermark is not None else newest)
        self._counted = {i for i in self._counted if i > self._calls_through}
        self.window.spent_usd = ledger.spent_usd(self.account_id)
        return added
