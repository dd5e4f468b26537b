"""The window: a typed, bounded record of what the overseer has seen of one attempt, which detectors and the
review read. Everything in it came from the agent (its events) or the gateway (its ledger) and is data only:
texts are cut, counts bounded, and nothing the agent wrote is interpreted beyond its shape."""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

#: Characters of a tool's arguments, a result or a model's text the window keeps.
TEXT_CHARS = 600


def cut(text: str, limit: int = TEXT_CHARS) -> str:
    """`text` on one line, at most `limit` characters (the middle dropped, since both ends tend to matter)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    half = (limit - 5) // 2
    return f"{flat[:half]} … {flat[-half:]}"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode(errors="replace")).hexdigest()[:16]


def canonical_arguments(arguments: Any) -> str:
    """A tool call's arguments as one canonical string, so the same call is recognised however it was written."""
    try:
        return json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(arguments)


@dataclass
class ToolStep:
    """One tool call of an agent and, once seen, its result. `workdir` is the harness's fingerprint of the
    workdir when the result was seen (None when unknown)."""

    agent_id: str
    ts: float
    tool: str
    arguments: str
    call_id: str
    ok: bool | None = None
    output: str = ""
    output_digest: str = ""
    #: Whether the result was one not seen before in the attempt.
    new_output: bool = False
    workdir: str | None = None

    @property
    def action(self) -> tuple[str, str]:
        return self.tool, self.arguments

    @property
    def done(self) -> bool:
        return self.ok is not None


@dataclass(frozen=True)
class ModelCall:
    """One call in the gateway's ledger of the attempt's accounts: how it ended, what it cost, and (when bodies are
    stored) the model's text and how many tool calls it made natively (None: unknown)."""

    id: int
    account_id: str
    started_at: float
    status: str
    http_status: int | None
    error_class: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    seconds: float
    text: str = ""
    tool_calls: int | None = None


@dataclass(frozen=True)
class AgentNote:
    """An agent's own message or error event, cut."""

    agent_id: str
    ts: float
    kind: str
    text: str


@dataclass
class AgentView:
    """An agent or sub-agent as its events describe it."""

    agent_id: str
    parent_id: str | None
    kind: str
    started_at: float
    status: str = "running"
    ended_at: float | None = None
    model_calls: int = 0
    tool_calls: int = 0
    #: Model calls since this agent's last tool call.
    calls_without_tool: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class Limits:
    """What the attempt may use: its time from `started_at` and its budget (None: unlimited)."""

    started_at: float
    time_limit_s: float | None = None
    budget_usd: float | None = None


@dataclass
class Window:
    """What the overseer has seen of one attempt, bounded: the latest `max_steps` tool steps, `max_calls` model calls
    and as many notes, every agent (at most `max_agents`), and running totals."""

    limits: Limits
    max_steps: int = 60
    max_calls: int = 120
    max_agents: int = 200
    steps: deque[ToolStep] = field(init=False)
    calls: deque[ModelCall] = field(init=False)
    notes: deque[AgentNote] = field(init=False)
    agents: dict[str, AgentView] = field(default_factory=dict)
    events_seen: int = 0
    invalid_lines: int = 0
    #: Model calls in the ledger since the agent last wrote an event (counts an agent that stopped writing).
    calls_since_event: int = 0
    spent_usd: float = 0.0
    #: Signs the agent's log was truncated, replaced or removed, as the follower saw them.
    log_anomalies: list[str] = field(default_factory=list)
    #: Digests of every tool result seen, so "nothing new" can be told from the window alone.
    seen_outputs: set[str] = field(default_factory=set)
    now: float = 0.0

    def __post_init__(self) -> None:
        self.steps = deque(maxlen=self.max_steps)
        self.calls = deque(maxlen=self.max_calls)
        self.notes = deque(maxlen=self.max_steps)
        self.now = self.limits.started_at

    def steps_of(self, agent_id: str) -> list[ToolStep]:
        return [step for step in self.steps if step.agent_id == agent_id]

    @property
    def elapsed_s(self) -> float:
        return max(0.0, self.now - self.limits.started_at)

    @property
    def top_agent(self) -> str | None:
        return next((a.agent_id for a in self.agents.values() if a.parent_id is None), None)
