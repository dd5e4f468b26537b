"""`sica chat`: one question to a model, through an in-process gateway, answer streamed to the terminal.

The quickest end-to-end check of a set-up: configuration, keys, the gateway's metering and (with no key) the
bundled local model, which the gateway starts and stops by itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Annotated, Any

import typer
import uvloop

from sica.cli.state import CliState, UserError, check_model, state
from sica.config import Settings, Wire
from sica.gateway import Listen, run_gateway
from sica.gateway.pricing import nano_to_usd
from sica.gateway.wire import SseParser


def chat(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument(help="What to ask.")],
    model: Annotated[str | None, typer.Option(help="Model alias. [default: the main role's alias]")] = None,
    max_tokens: Annotated[int, typer.Option(help="Output cap.", min=1)] = 512,
    budget_usd: Annotated[float | None, typer.Option(help="Hard cap in USD for this question.", min=0)] = None,
) -> None:
    """Ask a model one question through the gateway and stream the answer (the local model when no key is set)."""
    cli = state(ctx)
    settings = cli.settings()
    alias = model or settings.role_alias("main")
    check_model(settings, alias)
    uvloop.run(_chat(cli, settings.with_only({alias}), alias, prompt, max_tokens, budget_usd))


def _request(wire: Wire, alias: str, prompt: str, max_tokens: int) -> tuple[str, dict[str, Any]]:
    body = {"model": alias, "max_tokens": max_tokens, "stream": True, "messages": [{"role": "user", "content": prompt}]}
    return ("/v1/messages" if wire == "anthropic" else "/v1/chat/completions"), body


def _delta_text(wire: Wire, payload: dict[str, Any]) -> str:
    if wire == "anthropic":
        delta = payload.get("delta") or {}
        return delta.get("text", "") if payload.get("type") == "content_block_delta" else ""
    choices = payload.get("choices") or [{}]
    return (choices[0].get("delta") or {}).get("content") or ""


def _error_message(payload: dict[str, Any]) -> str | None:
    """The message of an error in either SDK shape (both keep it under "error")."""
    error = payload.get("error")
    return error.get("message", str(error)) if isinstance(error, dict) else None


async def _chat(
    cli: CliState, settings: Settings, alias: str, prompt: str, max_tokens: int, budget_usd: float | None
) -> None:
    wire = settings.models[alias].wire_format
    async with contextlib.AsyncExitStack() as stack:
        with cli.err.status(f"starting the gateway for '{alias}'…"):
            running = await stack.enter_async_context(
                run_gateway(settings, os.environ, settings.gateway.ledger_path.expanduser(), Listen(port=0))
            )
        account = running.gateway.open_account("chat", limit_usd=budget_usd)
        path, body = _request(wire, alias, prompt, max_tokens)
        started = time.monotonic()
        async with running.client(account.token) as http, http.stream("POST", path, json=body) as response:
            if response.status_code != 200:
                raise UserError(f"{alias}: {_error_message(json.loads(await response.aread()))}")
            parser = SseParser()
            async for chunk in response.aiter_bytes():
                for data in parser.feed(chunk):
                    if data == b"[DONE]":
                        continue
                    payload = json.loads(data)
                    if (message := _error_message(payload)) is not None:
                        raise UserError(f"{alias}: {message}")
                    cli.out.print(_delta_text(wire, payload), end="", highlight=False, markup=False)
        cli.out.print()
        (row,) = running.gateway.ledger.calls(account.id)
        cli.err.print(
            f"[dim]{alias}: {row['input_tokens']} tokens in, {row['output_tokens']} out, "
            f"${nano_to_usd(row['cost_nano']):.6f}, {time.monotonic() - started:.1f} s[/]"
        )
