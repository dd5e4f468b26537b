"""Record and replay: a JSONL cassette of exchanges keyed by a hash of the normalized request.

For reproducible demos of real-API runs. Recording passes calls through and appends each successful exchange;
replaying answers from the cassette alone and fails clearly on a request it has not seen. The output cap and
stream options are left out of the key, since the gateway sets them from the budget left.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from sica.config import ConfigError
from sica.gateway.upstreams import Upstream, UpstreamError, UpstreamReply, UpstreamRequest, parse_reply

_UNKEYED = frozenset({"max_tokens", "max_completion_tokens", "stream_options"})


def request_key(alias: str, body: dict[str, Any]) -> str:
    normalized = {k: v for k, v in body.items() if k not in _UNKEYED}
    text = json.dumps({"alias": alias, "body": normalized}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class _ReplayedStream:
    declared_latency_s = None

    def __init__(self, chunks: list[str]) -> None:
        self._chunks = chunks

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk.encode()

    async def aclose(self) -> None:
        """Nothing to release."""


class _RecordingStream:
    def __init__(self, inner: Any, on_end: Any) -> None:
        self._inner = inner
        self._on_end = on_end
        self._seen: list[str] = []
        self.declared_latency_s: float | None = inner.declared_latency_s

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner.chunks():
            self._seen.append(chunk.decode(errors="replace"))
            yield chunk
        self._on_end(self._seen)

    async def aclose(self) -> None:
        await self._inner.aclose()


class CassetteUpstream:
    """Wraps an upstream to record its exchanges, or replaces it by a recording."""

    def __init__(self, inner: Upstream, path: Path, mode: Literal["record", "replay"], *, alias: str) -> None:
        self._inner = inner
        self._path = path
        self._mode = mode
        self._alias = alias
        self._recorded: dict[str, dict[str, Any]] = {}
        if mode == "replay":
            self._recorded = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            lines = self._path.read_text().splitlines()
        except OSError as exc:
            raise ConfigError(
                f"cassette {self._path} cannot be read ({exc.strerror}); record one first with "
                '[gateway.cassette] mode = "record"'
            ) from None
        recorded = {}
        for number, line in enumerate(lines, start=1):
            try:
                entry = json.loads(line)
                recorded[entry["key"]] = entry
            except (ValueError, KeyError, TypeError):
                raise ConfigError(f"{self._path}:{number}: not a cassette entry; re-record the cassette") from None
        return recorded

    def _append(self, key: str, request: UpstreamRequest, **answer: Any) -> None:
        entry = {"key": key, "alias": self._alias, "request": request.body, **answer}
        with self._path.open("a") as cassette:
            cassette.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def _replayed(self, request: UpstreamRequest, field: str) -> Any:
        entry = self._recorded.get(request_key(self._alias, request.body))
        if entry is None or field not in entry:
            raise UpstreamError(
                "cassette_miss",
                f"cassette {self._path.name} has no recorded "
                f"{'stream' if field == 'chunks' else 'response'} for this request (alias "
                f"'{self._alias}'); record it again with mode = \"record\"",
                retryable=False,
            )
        return entry[field]

    async def complete(self, request: UpstreamRequest) -> UpstreamReply:
        if self._mode == "replay":
            return parse_reply(self._replayed(request, "response").encode())
        reply = await self._inner.complete(request)
        self._append(request_key(self._alias, request.body), request, response=reply.raw.decode())
        return reply

    async def open_stream(self, request: UpstreamRequest) -> Any:
        if self._mode == "replay":
            return _ReplayedStream(self._replayed(request, "chunks"))
        key = request_key(self._alias, request.body)
        inner = await self._inner.open_stream(request)
        return _RecordingStream(inner, lambda chunks: self._append(key, request, chunks=chunks))

    async def aclose(self) -> None:
        await self._inner.aclose()
