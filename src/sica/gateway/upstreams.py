"""Upstreams: where an alias's calls go. One protocol; HTTP providers here, the scripted double in `scripted`."""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import yarl

from sica.config import Wire

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
#: Client headers passed on to Anthropic (API version and opt-in betas); everything else is dropped.
PASSTHROUGH_HEADERS = ("anthropic-version", "anthropic-beta")


class UpstreamError(Exception):
    """An attempt that failed. `retryable` ones are tried again; others go back to the client."""

    def __init__(
        self,
        error_class: str,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        body: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.body = body


@dataclass
class UpstreamRequest:
    """One call as sent upstream: the body (model name and output cap already rewritten) and its account."""

    account_id: str
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UpstreamReply:
    """A successful, non-streamed answer: the raw bytes (passed to the client as they are) and their JSON.
    `declared_latency_s` is set by a test double that declares how long it took: the gateway then records that
    instead of the measured time, so that scripted runs are reproducible."""

    raw: bytes
    payload: dict[str, Any]
    declared_latency_s: float | None = None


class UpstreamStream(Protocol):
    """An opened stream whose status was OK; its chunks are raw server-sent-event bytes. `declared_latency_s`
    as in `UpstreamReply` (read-only: a stream may declare it as a plain attribute)."""

    @property
    def declared_latency_s(self) -> float | None: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    """What the gateway calls. Implementations raise `UpstreamError` for every failed attempt."""

    async def complete(self, request: UpstreamRequest) -> UpstreamReply: ...

    async def open_stream(self, request: UpstreamRequest) -> UpstreamStream: ...

    async def aclose(self) -> None: ...


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def error_for_status(status: int, body: bytes, retry_after: str | None) -> UpstreamError:
    retryable = status in RETRYABLE_STATUSES
    return UpstreamError(
        f"http_{status}",
        f"upstream answered HTTP {status}",
        retryable=retryable,
        status=status,
        retry_after=parse_retry_after(retry_after),
        body=body,
    )


def parse_reply(raw: bytes) -> UpstreamReply:
    """A 200 body must be a JSON object; anything else is a malformed answer, worth another attempt."""
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise UpstreamError(
            "malformed_response", "upstream answered HTTP 200 with a body that is not a JSON object", retryable=True
        )
    return UpstreamReply(raw, payload)


@contextlib.contextmanager
def _transport_errors() -> Iterator[None]:
    """Connection failures and time-outs are retryable attempts, named by their class only (no URLs, no keys)."""
    try:
        yield
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise UpstreamError("timeout", f"upstream timed out ({type(exc).__name__})", retryable=True) from None
    except aiohttp.ClientError as exc:
        raise UpstreamError(
            "connection_error", f"upstream unreachable ({type(exc).__name__})", retryable=True
        ) from None


class _HttpStream:
    declared_latency_s = None

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamError(
                type(exc).__name__, f"stream broke off: {type(exc).__name__}", retryable=False
            ) from None

    async def aclose(self) -> None:
        self._response.release()


class HttpUpstream:
    """A provider over HTTP: Anthropic's Messages API or an OpenAI-compatible chat completions API.

    The client is aiohttp: on this project's 2-core target, httpx's connection pool cost ~2.5 ms of CPU per
    request at 16 concurrent calls (a scan of every pooled connection per request), capping the gateway below
    300 requests/s; aiohttp's connector does not (see bench/gateway_overhead.py).
    """

    def __init__(
        self,
        *,
        wire: Wire,
        base_url: str,
        api_key: str | None,
        session: aiohttp.ClientSession,
        timeout: aiohttp.ClientTimeout,
    ) -> None:
        base = base_url.rstrip("/")
        self.url = yarl.URL(f"{base}/v1/messages" if wire == "anthropic" else f"{base}/chat/completions")
        self.wire = wire
        self._session = session
        self._timeout = timeout
        self._auth: dict[str, str] = {}
        if api_key and wire == "anthropic":
            self._auth = {"x-api-key": api_key}
        elif api_key:
            self._auth = {"authorization": f"Bearer {api_key}"}

    def _headers(self, request: UpstreamRequest) -> dict[str, str]:
        headers = {name: value for name, value in request.headers.items() if name in PASSTHROUGH_HEADERS}
        if self.wire == "anthropic":
            headers.setdefault("anthropic-version", "2023-06-01")
        return headers | self._auth | {"content-type": "application/json"}

    async def _post(self, request: UpstreamRequest) -> aiohttp.ClientResponse:
        with _transport_errors():
            response = await self._session.post(
                self.url, data=json.dumps(request.body).encode(), headers=self._headers(request), timeout=self._timeout
            )
        if response.status != 200:
            with _transport_errors():
                body = await response.read()
            response.release()
            raise error_for_status(response.status, body, response.headers.get("retry-after"))
        return response

    async def complete(self, request: UpstreamRequest) -> UpstreamReply:
        response = await self._post(request)
        try:
            with _transport_errors():
                raw = await response.read()
        finally:
            response.release()
        return parse_reply(raw)

    async def open_stream(self, request: UpstreamRequest) -> UpstreamStream:
        return _HttpStream(await self._post(request))

    async def aclose(self) -> None:
        """The shared session is closed by its owner."""
