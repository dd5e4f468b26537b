"""`sica gateway`: the gateway as a product of its own, for any tool that speaks the OpenAI or Anthropic API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
import uvloop
from rich.table import Table

from sica.cli.state import CliState, UserError, state
from sica.config import Settings
from sica.gateway import Listen, run_gateway
from sica.gateway.ledger import Ledger
from sica.gateway.pricing import nano_to_usd


def gateway(
    ctx: typer.Context,
    port: Annotated[
        int | None, typer.Option(help="TCP port on the host (0 = any free port). [default: 8765]", min=0, max=65535)
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on. [default: 127.0.0.1]")] = None,
    budget_usd: Annotated[
        float | None, typer.Option(help="Hard cap in USD for the account (default: none).", min=0)
    ] = None,
    budget_tokens: Annotated[int | None, typer.Option(help="Hard cap in tokens, input plus output.", min=1)] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="Bearer token to accept; reusing one reopens its account, with its spend. Default: a new random token."
        ),
    ] = None,
    ledger_path: Annotated[
        Path | None, typer.Option(help="SQLite ledger. [default: ~/.local/share/sica/gateway.sqlite]")
    ] = None,
    ledger: Annotated[bool, typer.Option("--ledger", help="Print spend per account and model, and exit.")] = False,
) -> None:
    """Run the LLM gateway standalone: one budget account, metering, retries and a hard cap."""
    cli = state(ctx)
    settings = cli.settings()
    path = (ledger_path or settings.gateway.ledger_path).expanduser()
    if ledger:
        _print_ledger(cli, path)
        return
    listen = Listen(host=host or settings.gateway.host, port=settings.gateway.port if port is None else port)
    uvloop.run(_serve(cli, settings, path, listen, budget_usd, budget_tokens, token))
    cli.err.print("gateway stopped")


async def _serve(
    cli: CliState,
    settings: Settings,
    ledger_path: Path,
    listen: Listen,
    budget_usd: float | None,
    budget_tokens: int | None,
    token: str | None,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        try:
            running = await stack.enter_async_context(run_gateway(settings, os.environ, ledger_path, listen))
        except OSError as error:
            raise UserError(
                f"cannot listen on {listen.host}:{listen.port} ({error.strerror}): pass --port N, or "
                "--port 0 for any free port"
            ) from None
        account = running.gateway.open_account(
            "standalone", limit_usd=budget_usd, limit_tokens=budget_tokens, token=token
        )
        spent = running.gateway.account(account.id).spent_nano
        cap = "none" if budget_usd is None else f"${budget_usd:.2f}"
        cli.out.print(
            f"[bold]sica gateway[/] listening on {running.base_url}\n"
            f"  OpenAI base URL     {running.base_url}/v1\n"
            f"  Anthropic base URL  {running.base_url}\n"
            f"  token               {account.token}\n"
            f"  budget              {cap} (spent so far ${nano_to_usd(spent):.6f})\n"
            f"  models              {', '.join(running.gateway.routes)}\n"
            f"  ledger              {ledger_path}\n"
            "Press Ctrl-C to stop.",
            highlight=False,
        )
        # Its own handlers, not KeyboardInterrupt: a process started in the background by a shell inherits SIGINT
        # ignored, and a service manager stops with SIGTERM.
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            cli.err.print(
                f"spent ${nano_to_usd(running.gateway.account(account.id).spent_nano):.6f} on this account in all"
            )


def _print_ledger(cli: CliState, path: Path) -> None:
    if not path.is_file():
        raise UserError(f"no ledger at {path}: run `sica gateway` first, or pass --ledger-path")
    ledger = Ledger(path)
    try:
        rows = ledger.spend_by_account_and_alias()
    finally:
        ledger.close()
    table = Table(title=f"Spend in {path}")
    for column in ("account", "alias", "model"):
        table.add_column(column)
    for column in ("calls", "failed", "input tok", "output tok", "cost USD"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row.account,
            row.alias,
            row.model,
            str(row.calls),
            str(row.errors),
            str(row.input_tokens),
            str(row.output_tokens),
            f"{nano_to_usd(row.cost_nano):.6f}",
        )
    if not rows:
        cli.out.print("the ledger has no calls yet")
        return
    cli.out.print(table)
