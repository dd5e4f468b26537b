"""The event schema (version 1) of `events.jsonl`, which agents write and the harness reads.

One JSON object a line: `v` (1), `ts` (seconds since the epoch), `run`, `problem`, `agent_id`, `parent_id` (the
calling agent, null for the top one), `type` and `data`. The harness owns this schema: agents may be rewritten by
the loop, so readers validate every line and skip (and count) what does not fit instead of failing. Events are
the agent's own account and may lie; cost and tokens that matter come from the gateway's ledger.

Types and the `data` the seed agent writes:

| type | data |
|---|---|
| agent_start | kind, task, model |
| agent_end | status (done/cancelled/budget_exceeded/infra_error/format_error/timeout/error), summary, answer?, steps |
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
_CHUNKS_A_CALL = 4
EventType = Literal[
    "agent_start", "agent_end", "llm_call", "tool_call", "tool_result", "message", "notification", "error"
]
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
    """Follows an events file as it grows, yielding valid events and counting invalid lines. A line longer than
    the chunk the reader takes at once is passed over (and counted invalid) as it goes by, never waited on whole:
    an agent writing one endless line cannot hide the lines after it."""

    def __init__(self, path: Path, chunk_bytes: int = _CHUNK_BYTES) -> None:
        self.path = path
        self.invalid_lines = 0
        self._offset = 0
        self._chunk_bytes = chunk_bytes
        #: Inside a line longer than a chunk: the bytes up to its end are passed over.
        self._skipping = False

    def new_events(self, max_chunks: int | None = _CHUNKS_A_CALL) -> Iterator[Event]:
        """Events appended since the last call, reading at most `max_chunks` chunks (None: to the end), so that a
        follower's call stays short however fast the agent writes; a trailing partial line waits for the next
        call, unless it is longer than a chunk. The file is the agent's: it is read only if it is a regular
        file, never through a link."""
        chunks = 0
        while (max_chunks is None or chunks < max_chunks) and (
            chunk := read_untrusted(self.path, self._chunk_bytes, self._offset)
        ):
            chunks += 1
            if self._skipping:
                end = chunk.find(b"\n")
                self._offset += len(chunk) if end < 0 else end + 1
                if end >= 0:
                    self._skipping = False
                    self.invalid_lines += 1
                continue
            complete = chunk[: chunk.rfind(b"\n") + 1]
            if not complete:
                if len(chunk) < self._chunk_bytes:
                    return  # a partial line, still being written
                self._offset += len(chunk)
                self._skipping = True
                continue
            self._offset += len(complete)
            yield from self._parse(complete)
            if len(chunk) < self._chunk_bytes:
                return

    def _parse(self, complete: bytes) -> Iterator[Event]:
        for line in complete.splitlines():
            if not line.strip():
                continue
            try:
                yield Event.model_validate_json(line)
            except ValidationError:
                self.invalid_lines += 1


def read_events(path: Path) -> list[Event]:
    """The valid events of a finished run, in its first `_CHUNKS_A_CALL` chunks (64 MB: what a summary of it
    may hold in memory)."""
    return list(EventReader(path).new_events())
