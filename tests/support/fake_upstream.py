"""A fault-injecting fake provider: a real HTTP server on loopback speaking both wire formats.

Tests queue behaviours (`ok`, `status`, `hang`, `malformed`, `truncated`, `echo_auth`, `slow_stream`); each
request takes the next one (`ok` once the queue is empty) and is recorded with its headers and body.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse


@dataclass
class Behaviour:
    kind: str
    status: int = 200
    retry_after: str | None = None
    seconds: float = 0.0
    input_tokens: int = 11
    output_tokens: int = 7


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class FakeUpstream:
    """Handle on a running fake provider."""

    base_url: str
    plan: deque[Behaviour] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    latency_s: float = 0.0

    def then(self, kind: str, **options: Any) -> FakeUpstream:
        self.plan.append(Behaviour(kind, **options))
        return self


def _openai_body(b: Behaviour) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "fake answer"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": b.input_tokens, "completion_tokens": b.output_tokens,
                      "total_tokens": b.input_tokens + b.output_tokens, "prompt_tokens_details": {"cached_tokens": 0}}}


def _anthropic_body(b: Behaviour) -> dict[str, Any]:
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": "fake",
            "content": [{"type": "text", "text": "fake answer"}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": b.input_tokens, "output_tokens": b.output_tokens,
                      "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}


def _openai_chunks(b: Behaviour, complete: bool) -> list[bytes]:
    head = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake"}
    chunks = [head | {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
              for word in ("fake ", "streamed ", "answer")]
    if complete:
        chunks.append(head | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        chunks.append(head | {"choices": [], "usage": _openai_body(b)["usage"]})
    out = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks]
    return out + ([b"data: [DONE]\n\n"] if complete else [])


def _anthropic_chunks(b: Behaviour, complete: bool) -> list[bytes]:
    usage = _anthropic_body(b)["usage"] | {"output_tokens": 1}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant",
                                              "model": "fake", "content": [], "stop_reason": None,
                                              "stop_sequence": None, "usage": usage}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]
    events += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}}
               for word in ("fake ", "streamed ", "answer")]
    if complete:
        events += [{"type": "content_block_stop", "index": 0},
                   {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": b.output_tokens}},
                   {"type": "message_stop"}]
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


def _app(fake: FakeUpstream) -> FastAPI:
    app = FastAPI()

    async def answer(request: Request, wire: str) -> Response:
        body = await request.json()
        fake.received.append(Received(request.url.path, dict(request.headers), body, time.monotonic()))
        b = fake.plan.popleft() if fake.plan else Behaviour("ok")
        if fake.latency_s:
            await asyncio.sleep(fake.latency_s)
        if b.kind == "status":
            headers = {"retry-after": b.retry_after} if b.retry_after is not None else None
            return JSONResponse({"error": {"type": "fake_error", "message": f"fake {b.status}"}}, b.status,
                                headers=headers)
        if b.kind == "hang":
            await asyncio.sleep(b.seconds or 3600)
        if b.kind == "malformed":
            return Response(b'{"choices": [ this is not json', media_type="application/json")
        if b.kind == "echo_auth":
            seen = request.headers.get("authorization") or request.headers.get("x-api-key")
            return JSONResponse({"error": {"type": "invalid_request_error", "message": f"bad request; key {seen}"}},
                                400)
        if body.get("stream"):
            chunks = (_anthropic_chunks if wire == "anthropic" else _openai_chunks)(b, b.kind != "truncated")

            async def send() -> AsyncIterator[bytes]:
                for chunk in chunks:
                    yield chunk
                    await asyncio.sleep(b.seconds if b.kind == "slow_stream" else 0)

            return StreamingResponse(send(), media_type="text/event-stream")
        return JSONResponse(_anthropic_body(b) if wire == "anthropic" else _openai_body(b))

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await answer(request, "openai")

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        return await answer(request, "anthropic")

    return app


@contextmanager
def run_fake_upstream() -> Iterator[FakeUpstream]:
    """Serve a fake provider on 127.0.0.1 (a free port) until the block ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    fake = FakeUpstream(base_url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(_app(fake), log_level="warning", access_log=False, lifespan="off",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
