"""The gateway: authenticates a call, routes it by alias, reserves its worst case, sends it upstream with
retries, meters it into the ledger and answers in the client's own wire format.

One module, over 400 lines, because `Gateway` is one pipeline: its steps share the call's state (`_Call`: the
account, the route, the reservation, the clock) and every path out of it, an error, a retry given up, a stream the
client abandoned, must settle the reservation and the ledger row it opened. What stands alone is already its own
module (admission, accounts, ledger, pricing, retry, routing, wire, errors); what is left here is the order of the
steps and their settling, which reads best in one place."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.responses import Response, StreamingResponse

from sica.config import Settings, Wire
from sica.gateway import wire as wires
from sica.gateway.accounts import Account, AccountTree, BudgetExceeded, Reservation, new_token, token_digest
from sica.gateway.admission import check_request, shown, upstream_headers
from sica.gateway.errors import GatewayError, bad_request, not_allowed, too_large, unauthorized, upstream_unavailable
from sica.gateway.ledger import CallOutcome, Ledger
from sica.gateway.pricing import WorstCaseInput, nano_to_usd, usd_to_nano
from sica.gateway.retry import CallClock, Retrier
from sica.gateway.routing import Redactor, Route
from sica.gateway.upstreams import UpstreamError, UpstreamRequest, UpstreamStream
from sica.gateway.usage import TokenUsage

T = TypeVar("T")
#: Input tokens a provider adds to a request with tools (Anthropic's tool-use system prompt is ~350 tokens,
#: OpenAI's function preamble less), which the request's bytes do not bound.
TOOL_PROMPT_TOKENS = 1000
#: The largest output cap a request may ask for: beyond any model's, and within the ledger's 64-bit integers.
MAX_OUTPUT_CAP = 1 << 31


@dataclass(frozen=True)
class AccountHandle:
    """What the harness gets when it opens an account: the id (for children and reports) and the token."""

    id: str
    name: str
    token: str


@dataclass
class _Call:
    """One call in flight: its route, account, reservation, ledger row and clock."""

    route: Route
    account: Account
    reservation: Reservation
    request: UpstreamRequest
    ledger_id: int
    input_estimate: int
    clock: CallClock
    settled: bool = False


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The account token, sent as `Authorization: Bearer …` (OpenAI SDK) or `x-api-key` (Anthropic SDK)."""
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return headers.get("x-api-key")


class Gateway:
    """Routes, accounts and ledger of one gateway. Serve it with `sica.gateway.server`."""

    def __init__(
        self,
        settings: Settings,
        routes: dict[str, Route],
        ledger: Ledger,
        redact: Redactor,
        retrier: Retrier | None = None,
    ) -> None:
        self.settings = settings
        self.routes = routes
        self.ledger = ledger
        self.accounts = AccountTree()
        self._redact = redact
        self._retrier = retrier or Retrier(settings.gateway.retry)
        self._streams: set[asyncio.Task[None]] = set()
        self.interrupted_on_start = ledger.settle_interrupted()
        ledger.load_into(self.accounts)

    # Accounts ---------------------------------------------------------------------------------------------

    def open_account(
        self,
        name: str,
        *,
        parent: str | None = None,
        limit_usd: float | None = None,
        limit_tokens: int | None = None,
        token: str | None = None,
        aliases: frozenset[str] | None = None,
    ) -> AccountHandle:
        """Open a budget account under `parent`, allowed to call `aliases` (None: its parent's; for a top
        account, every alias served). A child may use at most its parent's aliases. Given a token already known,
        reopen that account instead, with the new limits and aliases and its spend carried over."""
        token = token or new_token()
        digest = token_digest(token)
        limit_nano = None if limit_usd is None else usd_to_nano(limit_usd)
        if aliases is not None:
            self._check_aliases(name, parent, aliases)
        existing = self.accounts.by_token(token)
        if existing is not None:
            existing.limit_nano, existing.limit_tokens, existing.aliases = limit_nano, limit_tokens, aliases
            self.ledger.update_account(existing, digest)
            return AccountHandle(existing.id, existing.name, token)
        account = Account(uuid.uuid4().hex, name, parent, limit_nano, limit_tokens, aliases=aliases)
        self.accounts.add(account, digest)
        self.ledger.add_account(account, digest)
        return AccountHandle(account.id, name, token)

    def _check_aliases(self, name: str, parent: str | None, aliases: frozenset[str]) -> None:
        if unknown := aliases - set(self.routes):
            raise ValueError(
                f"account '{name}': this gateway serves no alias {', '.join(sorted(unknown))} (it "
                f"serves {', '.join(self.routes)})"
            )
        if parent is not None and (wider := aliases - self.allowed_aliases(parent)):
            raise ValueError(
                f"account '{name}' may use at most its parent's aliases "
                f"({', '.join(sorted(self.allowed_aliases(parent)))}), not {', '.join(sorted(wider))}"
            )

    def allowed_aliases(self, account_id: str) -> frozenset[str]:
        """The aliases an account may call: the served ones that it and all its ancestors allow."""
        return self.accounts.allowed_aliases(account_id, frozenset(self.routes))

    def set_limit(self, account_id: str, limit_usd: float | None) -> Account:
        """Change the money limit of a stored account (a resumed run's, say); its spend stays as it is."""
        account = self.accounts.get(account_id)
        account.limit_nano = None if limit_usd is None else usd_to_nano(limit_usd)
        self.ledger.set_limits(account)
        return account

    def account(self, account_id: str) -> Account:
        """The live state of an account: limits, spend and reservations (nano-USD and tokens)."""
        return self.accounts.get(account_id)

    # Requests ---------------------------------------------------------------------------------------------

    def authenticate(self, headers: Mapping[str, str]) -> Account:
        token = bearer_token(headers)
        account = self.accounts.by_token(token) if token else None
        if account is None:
            raise unauthorized(
                "missing or unknown account token: send the token the harness gave you as "
                "'Authorization: Bearer TOKEN' or 'x-api-key: TOKEN'"
            )
        return account

    async def handle(self, wire: Wire, body_chunks: AsyncIterator[bytes], headers: Mapping[str, str]) -> Response:
        """Serve one chat call (`/v1/chat/completions` or `/v1/messages`): its body is read from `body_chunks`
        only once the caller is known, and never beyond `[gateway] max_request_bytes`."""
        try:
            account = self.authenticate(headers)
            raw = await self._read_body(body_chunks, headers)
            body = _parse_body(raw)
            route = self._route(wire, body, account)
            call = self._begin(route, account, body, raw, headers)
        except GatewayError as error:
            return error.response(wire)
        try:
            return await (self._stream(call) if body.get("stream") is True else self._complete(call))
        except GatewayError as error:
            return error.response(wire)
        except BaseException as error:
            # Cancelled (shutdown) or a bug: the call may have cost upstream, so it is charged its worst case.
            if not call.settled:
                status = "cancelled" if isinstance(error, asyncio.CancelledError) else "internal_error"
                self._finish(call, status, None, http_status=None, error_class=type(error).__name__)
            raise

    async def _read_body(self, body_chunks: AsyncIterator[bytes], headers: Mapping[str, str]) -> bytes:
        """The body, refused (413) as soon as its declared length or the bytes read so far pass the cap: no more
        than the cap is ever held."""
        cap = self.settings.gateway.max_request_bytes
        refusal = too_large(
            f"the request body is larger than the gateway's limit of {cap} bytes "
            "([gateway] max_request_bytes): send a shorter context"
        )
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise refusal
        chunks: list[bytes] = []
        size = 0
        async for chunk in body_chunks:
            size += len(chunk)
            if size > cap:
                raise refusal
            chunks.append(chunk)
        return b"".join(chunks)

    def _route(self, wire: Wire, body: dict[str, Any], account: Account) -> Route:
        """The route of the body's alias, if the account may call it (403 naming the allowed ones, if not)."""
        alias = body.get("model")
        allowed = self.allowed_aliases(account.id)
        if not isinstance(alias, str) or alias not in allowed:
            listed = ", ".join(name for name in self.routes if name in allowed) or "none"
            if (isinstance(alias, str) and alias in self.routes) or allowed != set(self.routes):
                raise not_allowed(
                    f"model {shown(alias)} is not allowed for this account: use one of its aliases ({listed})"
                )
            raise bad_request(f"unknown model {shown(alias)}: use one of the configured aliases ({listed})")
        route = self.routes[alias]
        if route.alias.wire_format != wire:
            endpoint = "/v1/messages" if route.alias.wire_format == "anthropic" else "/v1/chat/completions"
            raise bad_request(f"alias '{route.name}' speaks the {route.alias.wire_format} API: send it to {endpoint}")
        return route

    def _begin(
        self, route: Route, account: Account, body: dict[str, Any], raw: bytes, headers: Mapping[str, str]
    ) -> _Call:
        wire = route.alias.wire_format
        shape = check_request(wire, body, route.name, route.alias)
        passed_headers = upstream_headers(wire, headers, route.name, route.alias)
        requested = wires.requested_max_tokens(wire, body)
        if requested is not None and not 1 <= requested <= MAX_OUTPUT_CAP:
            raise bad_request(f"max_tokens must be a positive integer up to {MAX_OUTPUT_CAP}, not {shown(requested)}")
        requested = requested or route.alias.max_output_tokens
        # Every token of text is at least one byte, so the request's size bounds its input tokens from above; a
        # tool-use prompt, pictures, documents and provider-side tools add tokens its bytes do not bound, up to
        # the model's context window.
        input_estimate = (
            len(raw)
            + (TOOL_PROMPT_TOKENS if shape.tools else 0)
            + (route.alias.context_window if shape.unbounded_input else 0)
        )
        try:
            reservation = self.accounts.reserve(
                account.id,
                WorstCaseInput(route.pricer),
                input_estimate,
                requested,
                self.settings.gateway.min_output_tokens,
            )
        except BudgetExceeded as exceeded:
            binding = exceeded.account
            raise GatewayError(
                402,
                "budget_exceeded",
                str(exceeded),
                account=binding.name,
                spent_usd=nano_to_usd(binding.spent_nano),
                limit_usd=None if binding.limit_nano is None else nano_to_usd(binding.limit_nano),
                spent_tokens=binding.spent_tokens,
                limit_tokens=binding.limit_tokens,
            ) from None
        upstream_body = dict(body, model=route.alias.model)
        wires.set_max_tokens(wire, upstream_body, reservation.max_output, provider=route.alias.provider)
        stream = body.get("stream") is True
        if stream:
            wires.ask_for_stream_usage(wire, upstream_body)
        stored = raw.decode(errors="replace") if self.settings.gateway.store_bodies else None
        try:
            ledger_id = self.ledger.begin_call(
                account.id,
                route.name,
                route.alias.provider,
                route.alias.model,
                stream,
                reservation.cost_nano,
                reservation.tokens,
                stored,
            )
        except BaseException:
            self.accounts.settle(reservation, 0, 0)  # never sent: a reservation left behind would block the chain
            raise
        return _Call(
            route,
            account,
            reservation,
            UpstreamRequest(account.id, upstream_body, passed_headers),
            ledger_id,
            input_estimate,
            CallClock(),
        )

    async def _admit(self, call: _Call, stack: contextlib.AsyncExitStack) -> None:
        """Wait for the upstream's limits and hold its slot until `stack` closes. Queue time is the part of the
        wait that other accounts' use of the limits caused; what the account's own calls caused is its own time."""
        arrived = time.monotonic()
        admission = await stack.enter_async_context(call.route.limiter.admit(call.reservation.tokens, call.account.id))
        call.clock.waited_s += time.monotonic() - arrived
        call.clock.queued_s += admission.for_others_s

    async def _attempt(self, call: _Call, send: Callable[[UpstreamRequest], Awaitable[T]]) -> T:
        async with contextlib.AsyncExitStack() as stack:
            await self._admit(call, stack)
            started = time.monotonic()
            try:
                return await send(call.request)
            finally:
                call.clock.upstream_s += time.monotonic() - started

    async def _complete(self, call: _Call) -> Response:
        try:
            reply = await self._retrier.run(lambda: self._attempt(call, call.route.upstream.complete), call.clock)
        except UpstreamError as error:
            return self._failed(call, error)
        if reply.declared_latency_s is not None:
            call.clock.upstream_s = reply.declared_latency_s
        usage = wires.usage_from_response(call.route.alias.wire_format, reply.payload)
        self._finish(
            call,
            "ok" if usage else "ok_unmetered",
            usage,
            http_status=200,
            response_body=reply.raw.decode(errors="replace"),
        )
        return Response(reply.raw, media_type="application/json")

    async def _stream(self, call: _Call) -> Response:
        stack = contextlib.AsyncExitStack()

        async def open_attempt() -> UpstreamStream:
            await self._admit(call, stack)
            try:
                return await call.route.upstream.open_stream(call.request)
            except BaseException:
                await stack.aclose()
                raise

        opened_at = time.monotonic()
        try:
            upstream = await self._retrier.run(open_attempt, call.clock)
        except UpstreamError as error:
            call.clock.upstream_s += time.monotonic() - opened_at - call.clock.waited_s
            return self._failed(call, error)
        stack.push_async_callback(upstream.aclose)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        pump = asyncio.create_task(self._pump(call, upstream, stack, queue, opened_at))
        self._streams.add(pump)
        pump.add_done_callback(self._streams.discard)

        async def relay() -> AsyncIterator[bytes]:
            while (chunk := await queue.get()) is not None:
                yield chunk

        return StreamingResponse(relay(), media_type="text/event-stream")

    async def _pump(
        self,
        call: _Call,
        upstream: UpstreamStream,
        stack: contextlib.AsyncExitStack,
        queue: asyncio.Queue[bytes | None],
        opened_at: float,
    ) -> None:
        """Read the upstream stream to its end, whether or not the client is still listening, and meter it.

        The newest chunk is held back until the next arrives, and the last one until the call is settled: a
        client that has read the whole stream finds its call in the ledger.
        """
        wire = call.route.alias.wire_format
        meter = wires.StreamMeter(wire)
        seen: list[bytes] = []
        last = b""
        status, error_class = "ok", None
        try:
            async for chunk in upstream.chunks():
                meter.feed(chunk)
                seen.append(chunk)
                if last:
                    queue.put_nowait(last)
                last = chunk
            if not meter.complete:
                status, error_class = "truncated", "stream_incomplete"
                last += wires.sse_error_event(wire, "the upstream stream ended early")
        except UpstreamError as error:
            status, error_class = "truncated", error.error_class
            last += wires.sse_error_event(wire, self._redact(error.message))
        except asyncio.CancelledError:
            status, error_class = "truncated", "gateway_shutdown"
            raise
        finally:
            try:
                await stack.aclose()
                declared = upstream.declared_latency_s
                if declared is None:
                    declared = time.monotonic() - opened_at - call.clock.waited_s
                call.clock.upstream_s = declared
                usage = meter.usage if status == "ok" else None
                self._finish(
                    call,
                    status if usage or status != "ok" else "ok_unmetered",
                    usage,
                    http_status=200,
                    error_class=error_class,
                    response_body=self._redact(b"".join(seen).decode(errors="replace")),
                )
            except BaseException:  # a bug: the client still gets an end, never a stream left open
                last = wires.sse_error_event(wire, "the gateway failed while settling the call")
                raise
            finally:
                if last:
                    queue.put_nowait(last)
                queue.put_nowait(None)

    def _failed(self, call: _Call, error: UpstreamError) -> Response:
        """Settle a call no attempt of which succeeded, and tell the client in its own error shape."""
        name = call.route.name
        self._finish(
            call,
            "error",
            TokenUsage(),
            http_status=error.status,
            error_class=error.error_class,
            response_body=self._redact(error.body.decode(errors="replace")) if error.body else None,
        )
        if error.status in (401, 403):
            raise upstream_unavailable(
                f"alias '{name}': the upstream rejected the gateway's credentials (HTTP "
                f"{error.status}); check the alias's API key"
            )
        if error.retryable or error.status is None or error.status >= 500:
            raise upstream_unavailable(
                f"alias '{name}': {self._redact(error.message)} (after "
                f"{call.clock.attempts} attempt{'s' if call.clock.attempts > 1 else ''})"
            )
        return Response(
            self._redact.bytes(error.body or b"{}"), status_code=error.status, media_type="application/json"
        )

    def _finish(
        self,
        call: _Call,
        status: str,
        usage: TokenUsage | None,
        *,
        http_status: int | None,
        error_class: str | None = None,
        response_body: str | None = None,
    ) -> None:
        """Settle the reservation and the ledger row. A call whose usage is unknown costs its worst case."""
        if usage is None:
            cost, tokens = call.reservation.cost_nano, call.reservation.tokens
            usage = TokenUsage(input=call.input_estimate, output=call.reservation.max_output)
        else:
            cost, tokens = call.route.pricer.cost(usage), usage.total
        if status == "error":
            cost, tokens = 0, 0
        call.settled = True
        self.accounts.settle(call.reservation, cost, tokens)
        if not self.settings.gateway.store_bodies:
            response_body = None
        self.ledger.end_call(
            call.ledger_id,
            CallOutcome(
                status,
                usage,
                cost,
                http_status,
                error_class,
                call.clock.attempts,
                call.clock.queued_s,
                call.clock.upstream_s,
                response_body,
            ),
        )

    # Listing and shutdown ---------------------------------------------------------------------------------

    def list_models(self, account: Account, anthropic_shape: bool) -> dict[str, Any]:
        """The aliases the account may call, in the shape of the asking SDK's model list."""
        allowed = self.allowed_aliases(account.id)
        names = [name for name in self.routes if name in allowed]
        if anthropic_shape:
            data = [
                {"type": "model", "id": name, "display_name": name, "created_at": "1970-01-01T00:00:00Z"}
                for name in names
            ]
            return {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        return {
            "object": "list",
            "data": [{"id": name, "object": "model", "created": 0, "owned_by": "sica"} for name in names],
        }

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Let streams whose clients left finish metering; cancel (and settle) what is still running after."""
        if not self._streams:
            return
        _, pending = await asyncio.wait(set(self._streams), timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise bad_request("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body
