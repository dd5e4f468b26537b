"""The event schema (version 1) of `events.jsonl`, which agents write and the harness reads.

One JSON object a line: `v` (1), `ts` (seconds since the epoch), `run`, `problem`, `agent_id`, `parent_id` (the
calling agent, null for the top one), `type` and `data`. The harness owns this schema: agents may be rewritten by
the loop, so readers validate every line and skip (and count) what does not fit instead of failing. Events are
the agent's own account and may lie; cost and tokens that matter come from the gateway's ledger.

Types and the `data` the seed agent writes:

| type | data |
|---|---|
| agent_start | kind, task, model |
| agent_end | status (done, cancelled, budget_exceeded, infra_error, format_error, timeout, error), summary, answer?, steps |
| llm_call | model, input_tokens, output_tokens, cache_read_tokens, seconds, stop_reason |
| tool_call | tool, arguments, call_id |
| tool_result | tool, call_id, ok, final, output, seconds |
| message | text |
| notification | text |
| error | kind, message, … |
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from sica.sandbox.untrusted import read_untrusted

SCHEMA_VERSION = 1
_CHUNK_BYTES = 16 << 20
EventType = Literal["agent_start", "agent_end", "llm_call", "tool_call", "tool_result", "message", "notification",
                    "error"]
AgentStatus = Literal["done", "cancelled", "budget_exceeded", "infra_error", "format_error", "timeout", "error"]
STATUSES: tuple[str, ...] = AgentStatus.__args__  # type: ignore[attr-defined]


class Event(BaseModel):
    """One line of events.jsonl."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]
    ts: float
    run: str
    problem: str
    agent_id: str
    parent_id: str | None
    type: EventType
    data: dict[str, Any]


class EventReader:
    """Follows an events file as it grows, yielding valid events and counting invalid lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.invalid_lines = 0
        self._offset = 0

    def new_events(self) -> Iterator[Event]:
        """Events appended since the last call (a trailing partial line waits for the next call). The file is
        the agent's: it is read only if it is a regular file, never through a link."""
        chunk = read_untrusted(self.path, _CHUNK_BYTES, self._offset)
        if not chunk:
            return
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.splitlines():
            if not line.strip():
                continue
            try:
                yield Event.model_validate_json(line)
            except ValidationError:
                self.invalid_lines += 1


def read_events(path: Path) -> list[Event]:
    """Every valid event of a finished run."""
    return list(EventReader(path).new_events())
