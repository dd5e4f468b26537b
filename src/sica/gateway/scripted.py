"""The scripted upstream: the test double behind every agent test, answering through the real gateway path.

A script is JSONL, one response a line: `{"content": "…"}` and/or `{"tool_calls": [{"name", "arguments"}]}`,
optionally `"usage": {"input", "output", "cache_read", "cache_write"}` and `"latency_s"`; or a fault,
`{"error": {"status": 429, "retry_after": 1, "message": "…"}}`. Each account reads the script from its own
position, and every attempt (a retried one too) takes the next line. An account reads the script file as it is at
the account's first call, so a harness may write a new script for each attempt (the smoke check writes one with
a nonce of its own). Answers come in the wire format of the
alias, streamed as server-sent events when asked. The ledger records a line's declared latency as its upstream
time (not the measured one), so the times a scripted run charges are the same on every machine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sica.config import ConfigError, Wire
from sica.gateway.upstreams import UpstreamError, UpstreamReply, UpstreamRequest, error_for_status, parse_reply
from sica.gateway.wire import requested_max_tokens


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScriptedToolCall(_Strict):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ScriptedUsage(_Strict):
    input: int = Field(default=0, ge=0)
    output: int = Field(default=0, ge=0)
    cache_read: int = Field(default=0, ge=0)
    cache_write: int = Field(default=0, ge=0)


class ScriptedFault(_Strict):
    status: int = Field(ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0)
    message: str = "scripted fault"


class ScriptLine(_Strict):
    """One scripted response or fault."""

    content: str | None = None
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    usage: ScriptedUsage | None = None
    latency_s: float = Field(default=0.0, ge=0)
    error: ScriptedFault | None = None

    @model_validator(mode="after")
    def _something(self) -> ScriptLine:
        if self.error is None and self.content is None and not self.tool_calls:
            raise ValueError("a line needs content, tool_calls or error")
        return self


def load_script(path: Path) -> list[ScriptLine]:
    """Read and validate a script; a bad line is a one-line error naming the file and line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"scripted model: cannot read script {path} ({exc.strerror}); fix `script =`") from None
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            lines.append(ScriptLine.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{path}:{number}: {where + ': ' if where else ''}{first['msg']}") from None
    return lines


def _estimate_tokens(value: Any) -> int:
    return max(1, len(json.dumps(value, ensure_ascii=False).encode()) // 4)


class ScriptedUpstream:
    """Replays a script per account; see the module docstring for the line format. With `script` (the file
    `lines` were read from), each new account reads that file again at its first call."""

    def __init__(self, lines: list[ScriptLine], *, wire: Wire, model: str, script: Path | None = None) -> None:
        self._lines = lines
        self._script = script
        self._wire = wire
        self._model = model
        self._scripts: dict[str, list[ScriptLine]] = {}
        self._positions: dict[str, int] = {}
        self._ids = itertools.count(1)

    def _script_of(self, account_id: str) -> list[ScriptLine]:
        """The lines an account reads: the script as it was at the account's first call."""
        lines = self._scripts.get(account_id)
        if lines is None:
            try:
                lines = self._lines if self._script is None else load_script(self._script)
            except ConfigError as error:
                raise UpstreamError("script_unreadable", str(error), retryable=False, status=503) from None
            self._scripts[account_id] = lines
        return lines

    async def _next_line(self, request: UpstreamRequest) -> ScriptLine:
        lines = self._script_of(request.account_id)
        position = self._positions.get(request.account_id, 0)
        self._positions[request.account_id] = position + 1
        if position >= len(lines):
            raise UpstreamError(
                "script_exhausted",
                f"the script has {len(lines)} lines and this account has used them all",
                retryable=False,
                status=503,
            )
        line = lines[position]
        if line.latency_s:
            await asyncio.sleep(line.latency_s)
        if line.error is not None:
            body = json.dumps({"error": {"type": "scripted_fault", "message": line.error.message}}).encode()
            retry_after = None if line.error.retry_after is None else str(line.error.retry_after)
            raise error_for_status(line.error.status, body, retry_after)
        return line

    def _usage(self, line: ScriptLine, request: UpstreamRequest) -> ScriptedUsage:
        """The declared usage (else an estimate), with output capped at the request's cap as a real model's is."""
        said = [line.content or "", [c.model_dump() for c in line.tool_calls]]
        usage = line.usage or ScriptedUsage(
            input=_estimate_tokens(request.body.get("messages", [])), output=_estimate_tokens(said)
        )
        cap = requested_max_tokens(self._wire, request.body)
        return usage if cap is None or usage.output <= cap else usage.model_copy(update={"output": cap})

    async def complete(self, request: UpstreamRequest) -> UpstreamReply:
        line = await self._next_line(request)
        usage = self._usage(line, request)
        body = (
            self._anthropic_message(line, usage) if self._wire == "anthropic" else self._openai_completion(line, usage)
        )
        return dataclasses.replace(parse_reply(json.dumps(body).encode()), declared_latency_s=line.latency_s)

    async def open_stream(self, request: UpstreamRequest) -> _ScriptedStream:
        line = await self._next_line(request)
        usage = self._usage(line, request)
        events = self._anthropic_events(line, usage) if self._wire == "anthropic" else self._openai_chunks(line, usage)
        return _ScriptedStream(events, line.latency_s)

    async def aclose(self) -> None:
        """Nothing to release."""

    def _call_id(self, prefix: str) -> str:
        return f"{prefix}_scripted_{next(self._ids)}"

    def _openai_completion(self, line: ScriptLine, usage: ScriptedUsage) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": line.content}
        if line.tool_calls:
            message["tool_calls"] = [
                {
                    "id": self._call_id("call"),
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in line.tool_calls
            ]
        return {
            "id": self._call_id("chatcmpl"),
            "object": "chat.completion",
            "created": 0,
            "model": self._model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if line.tool_calls else "stop"}],
            "usage": _openai_usage(usage),
        }

    def _openai_chunks(self, line: ScriptLine, usage: ScriptedUsage) -> list[dict[str, Any] | str]:
        head = {"id": self._call_id("chatcmpl"), "object": "chat.completion.chunk", "created": 0, "model": self._model}
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if line.content:
            deltas += [{"content": piece} for piece in _pieces(line.content)]
        for index, call in enumerate(line.tool_calls):
            deltas.append(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": self._call_id("call"),
                            "type": "function",
                            "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                        }
                    ]
                }
            )
        chunks: list[dict[str, Any] | str] = [
            head | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas
        ]
        finish = "tool_calls" if line.tool_calls else "stop"
        chunks.append(head | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        chunks.append(head | {"choices": [], "usage": _openai_usage(usage)})
        chunks.append("[DONE]")
        return chunks

    def _anthropic_content(self, line: ScriptLine) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": line.content}] if line.content else []
        blocks += [
            {"type": "tool_use", "id": self._call_id("toolu"), "name": call.name, "input": call.arguments}
            for call in line.tool_calls
        ]
        return blocks

    def _anthropic_message(self, line: ScriptLine, usage: ScriptedUsage) -> dict[str, Any]:
        return {
            "id": self._call_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": self._anthropic_content(line),
            "stop_reason": "tool_use" if line.tool_calls else "end_turn",
            "stop_sequence": None,
            "usage": _anthropic_usage(usage),
        }

    def _anthropic_events(self, line: ScriptLine, usage: ScriptedUsage) -> list[dict[str, Any] | str]:
        start_usage = _anthropic_usage(usage) | {"output_tokens": 1}
        events: list[dict[str, Any] | str] = [
            {
                "type": "message_start",
                "message": {
                    "id": self._call_id("msg"),
                    "type": "message",
                    "role": "assistant",
                    "model": self._model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            }
        ]
        for index, block in enumerate(self._anthropic_content(line)):
            if block["type"] == "text":
                events.append(
                    {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
                )
                events += [
                    {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}
                    for piece in _pieces(block["text"])
                ]
            else:
                events.append({"type": "content_block_start", "index": index, "content_block": block | {"input": {}}})
                events.append(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])},
                    }
                )
            events.append({"type": "content_block_stop", "index": index})
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use" if line.tool_calls else "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": usage.output},
            }
        )
        events.append({"type": "message_stop"})
        return events


def _pieces(text: str, size: int = 16) -> Iterable[str]:
    return (text[i : i + size] for i in range(0, len(text), size))


def _openai_usage(usage: ScriptedUsage) -> dict[str, Any]:
    prompt = usage.input + usage.cache_read + usage.cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output,
        "total_tokens": prompt + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read},
    }


def _anthropic_usage(usage: ScriptedUsage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input,
        "output_tokens": usage.output,
        "cache_read_input_tokens": usage.cache_read,
        "cache_creation_input_tokens": usage.cache_write,
    }


class _ScriptedStream:
    def __init__(self, events: list[dict[str, Any] | str], declared_latency_s: float) -> None:
        self._events = events
        self.declared_latency_s = declared_latency_s

    async def chunks(self) -> AsyncIterator[bytes]:
        for event in self._events:
            if isinstance(event, str):
                yield f"data: {event}\n\n".encode()
            elif "type" in event and "object" not in event:
                yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
            else:
                yield f"data: {json.dumps(event)}\n\n".encode()
            await asyncio.sleep(0)

    async def aclose(self) -> None:
        """Nothing to release."""
