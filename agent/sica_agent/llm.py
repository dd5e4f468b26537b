"""Calls to models, only through the harness's gateway (HTTP, over its unix socket when it has one).

The gateway holds the provider keys, budgets and retries; the agent sends its budget token. A 402 from the
gateway means the budget is spent (`BudgetExceeded`), a 503 that the provider is unreachable after retries
(`UpstreamUnavailable`), and a call still unanswered when the agent's time is up is `OutOfTime`: each ends the
agent cleanly with its own status.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from sica_agent.settings import ModelRole


class ModelCallError(Exception):
    """A call the gateway refused or failed; `status` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BudgetExceeded(ModelCallError):
    """HTTP 402: the budget account cannot pay for another call."""


class UpstreamUnavailable(ModelCallError):
    """HTTP 503: the model's provider could not be reached, even after the gateway's retries."""


class OutOfTime(ModelCallError):
    """The agent's time ran out while it waited for the model (the call's timeout was the time left)."""


@dataclass(frozen=True)
class ModelReply:
    """One answer: its text, the assistant message to append to the history (wire format) and its usage."""

    text: str
    message: dict[str, Any]
    native_calls: list[dict[str, Any]]
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    stop_reason: str | None


def gateway_client(gateway: str, token: str, timeout_s: float) -> httpx.Client:
    """An HTTP client for the gateway: `unix:/path/to.sock` or `http://host:port`."""
    headers = {"authorization": f"Bearer {token}", "x-api-key": token, "anthropic-version": "2023-06-01"}
    # Plain HTTP (a unix socket or http://) never uses TLS: skip loading the certificate store (~90 ms at start).
    if gateway.startswith("unix:"):
        return httpx.Client(
            transport=httpx.HTTPTransport(uds=gateway[5:], verify=False),
            base_url="http://gateway",
            headers=headers,
            timeout=timeout_s,
        )
    plain = gateway.startswith("http://")
    return httpx.Client(base_url=gateway.rstrip("/"), headers=headers, timeout=timeout_s, verify=not plain)


class ModelClient:
    """Sends a conversation to a model role and returns its reply."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def chat(
        self,
        role: ModelRole,
        system: str,
        messages: list[dict[str, Any]],
        *,
        max_tokens: int,
        temperature: float,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | None = None,
        time_left_s: float | None = None,
    ) -> ModelReply:
        """One call; `time_left_s` bounds the wait (then `OutOfTime`), else the client's own timeout does."""
        request = ModelRequest(system, messages, max_tokens, temperature, tools, response_format)
        wire = _ANTHROPIC if role.wire == "anthropic" else _OPENAI
        return wire.reply(self._post(wire.path, wire.body(role.alias, request), time_left_s))

    def _post(self, path: str, body: dict[str, Any], time_left_s: float | None) -> dict[str, Any]:
        own_limit = self._http.timeout.read
        out_of_time = time_left_s is not None and (own_limit is None or time_left_s < own_limit)
        try:
            if out_of_time:
                response = self._http.post(path, json=body, timeout=max(time_left_s or 0.0, 0.1))
            else:
                response = self._http.post(path, json=body)
        except httpx.TimeoutException:
            if out_of_time:
                raise OutOfTime(504, f"the agent's time ran out waiting for the model ({time_left_s:.0f} s)") from None
            raise UpstreamUnavailable(503, "the gateway did not answer in time") from None
        except httpx.HTTPError as error:
            raise UpstreamUnavailable(503, f"the gateway is unreachable ({type(error).__name__})") from None
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code == 200 and isinstance(payload, dict):
            return payload
        reported = payload.get("error") if isinstance(payload, dict) else None
        message = reported.get("message", str(reported)) if isinstance(reported, dict) else response.text[:500]
        if response.status_code == 402:
            raise BudgetExceeded(402, message)
        if response.status_code == 503:
            raise UpstreamUnavailable(503, message)
        raise ModelCallError(response.status_code, message)


@dataclass(frozen=True)
class ModelRequest:
    """What one call asks of the model, in either wire format (`response_format` is OpenAI's only)."""

    system: str
    messages: list[dict[str, Any]]
    max_tokens: int
    temperature: float
    tools: list[dict[str, Any]] | None
    response_format: dict[str, Any] | None


@dataclass(frozen=True)
class _WireFormat:
    """One API format: the gateway path a call is posted to, the body a request becomes (for a model alias) and
    the reply read from the response's JSON."""

    path: str
    body: Callable[[str, ModelRequest], dict[str, Any]]
    reply: Callable[[dict[str, Any]], ModelReply]


def _openai_body(alias: str, request: ModelRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": alias,
        "messages": [{"role": "system", "content": request.system}, *request.messages],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }
    if request.tools:
        body["tools"] = request.tools
    if request.response_format:
        body["response_format"] = request.response_format
    return body


def _openai_reply(payload: dict[str, Any]) -> ModelReply:
    choice = (payload.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    calls = message.get("tool_calls") or []
    kept: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if calls:
        kept["tool_calls"] = calls
    usage = payload.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    return ModelReply(
        message.get("content") or "",
        kept,
        calls,
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
        int(details.get("cached_tokens") or 0),
        choice.get("finish_reason"),
    )


def _anthropic_body(alias: str, request: ModelRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": alias,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "system": [{"type": "text", "text": request.system, "cache_control": {"type": "ephemeral"}}],
        "messages": _with_cache_breakpoint(request.messages),
    }
    if request.tools:
        body["tools"] = request.tools
    return body


def _anthropic_reply(payload: dict[str, Any]) -> ModelReply:
    content = payload.get("content") or []
    text = "".join(block.get("text", "") for block in content if block.get("type") == "text")
    calls = [block for block in content if block.get("type") == "tool_use"]
    usage = payload.get("usage") or {}
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + cache_read + int(usage.get("cache_creation_input_tokens") or 0)
    return ModelReply(
        text,
        {"role": "assistant", "content": content},
        calls,
        prompt,
        int(usage.get("output_tokens") or 0),
        cache_read,
        payload.get("stop_reason"),
    )


_OPENAI = _WireFormat("/v1/chat/completions", _openai_body, _openai_reply)
_ANTHROPIC = _WireFormat("/v1/messages", _anthropic_body, _anthropic_reply)


def _with_cache_breakpoint(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark the end of the history as a prompt-cache breakpoint (on a copy: the history stays unmarked)."""
    if not messages:
        return messages
    last = copy.deepcopy(messages[-1])
    content = last["content"]
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if content:
        content[-1] = {**content[-1], "cache_control": {"type": "ephemeral"}}
    last["content"] = content
    return [*messages[:-1], last]
