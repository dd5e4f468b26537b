"""What the gateway needs to know of the two wire formats: output caps, usage, and server-sent events.

Bodies (once `admission` has allowed them) pass through unchanged apart from the model name, the output cap and
(for OpenAI streams) the request for a final usage chunk: the gateway never translates between formats.
"""

from __future__ import annotations

import json
from typing import Any

from sica.config import Wire
from sica.gateway.usage import TokenUsage


def requested_max_tokens(wire: Wire, body: dict[str, Any]) -> int | None:
    """The output cap the client asked for, if any: the smaller of `max_tokens` and `max_completion_tokens` when
    it gives both (whichever the upstream reads, the cap sent is no larger than either)."""
    names = ("max_tokens", "max_completion_tokens") if wire == "openai" else ("max_tokens",)
    caps = [body[name] for name in names if isinstance(body.get(name), int) and not isinstance(body[name], bool)]
    return min(caps) if caps else None


def set_max_tokens(wire: Wire, body: dict[str, Any], max_tokens: int, *, provider: str) -> None:
    """Write the clamped output cap where this upstream reads it, and only there: OpenAI's own API reads
    `max_completion_tokens`, every other server `max_tokens`. A thinking budget is kept below the cap, which
    bounds thinking and answer together."""
    if wire == "openai" and provider == "openai":
        body.pop("max_tokens", None)
        body["max_completion_tokens"] = max_tokens
    else:
        body.pop("max_completion_tokens", None)
        body["max_tokens"] = max_tokens
    thinking = body.get("thinking")
    if wire == "anthropic" and isinstance(thinking, dict) and isinstance(thinking.get("budget_tokens"), int):
        body["thinking"] = dict(thinking, budget_tokens=min(thinking["budget_tokens"], max_tokens - 1))


def ask_for_stream_usage(wire: Wire, body: dict[str, Any]) -> None:
    """OpenAI-style streams report usage only when asked (Anthropic's always do)."""
    if wire == "openai":
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        body["stream_options"] = options


def usage_from_response(wire: Wire, payload: dict[str, Any]) -> TokenUsage | None:
    """Usage of a non-streamed response, or None when the upstream did not report it."""
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        return None
    return _anthropic_usage(usage) if wire == "anthropic" else _openai_usage(usage)


def _openai_usage(usage: dict[str, Any]) -> TokenUsage:
    details = usage.get("prompt_tokens_details") or {}
    return TokenUsage(
        input=int(usage.get("prompt_tokens") or 0),
        output=int(usage.get("completion_tokens") or 0),
        cache_read=int(details.get("cached_tokens") or 0),
    )


def _anthropic_usage(usage: dict[str, Any]) -> TokenUsage:
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    return TokenUsage(
        input=int(usage.get("input_tokens") or 0) + cache_read + cache_write,
        output=int(usage.get("output_tokens") or 0),
        cache_read=cache_read,
        cache_write=cache_write,
    )


class SseParser:
    """Splits a server-sent event stream, fed in arbitrary chunks, into the payloads of its `data:` lines."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        *events, self._buffer = self._buffer.replace(b"\r\n", b"\n").split(b"\n\n")
        return [line[5:].strip() for event in events for line in event.split(b"\n") if line.startswith(b"data:")]


class StreamMeter:
    """Reads a server-sent event stream as it passes and keeps the usage it reports.

    OpenAI-style streams carry usage in a last chunk before `data: [DONE]`; Anthropic streams carry input usage
    in `message_start` and the running output count in `message_delta`, and end with `message_stop`.
    """

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.usage: TokenUsage | None = None
        self.complete = False
        self._events = SseParser()
        self._anthropic: dict[str, Any] = {}

    def feed(self, chunk: bytes) -> None:
        for data in self._events.feed(chunk):
            self._on_data(data)

    def _on_data(self, data: bytes) -> None:
        if data == b"[DONE]":
            self.complete = True
            return
        try:
            payload = json.loads(data)
        except ValueError:
            return
        if not isinstance(payload, dict):
            return
        if self.wire == "openai":
            if isinstance(payload.get("usage"), dict):
                self.usage = _openai_usage(payload["usage"])
            return
        kind = payload.get("type")
        if kind == "message_start":
            self._anthropic.update((payload.get("message") or {}).get("usage") or {})
        elif kind == "message_delta":
            self._anthropic.update({k: v for k, v in (payload.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            self.complete = True
        if self._anthropic:
            self.usage = _anthropic_usage(self._anthropic)


def sse_error_event(wire: Wire, message: str) -> bytes:
    """An error told inside an already started stream (its HTTP status can no longer change)."""
    if wire == "anthropic":
        body = {"type": "error", "error": {"type": "upstream_unavailable", "message": message}}
        return b"event: error\ndata: " + json.dumps(body).encode() + b"\n\n"
    return b"data: " + json.dumps({"error": {"type": "upstream_unavailable", "message": message}}).encode() + b"\n\n"
