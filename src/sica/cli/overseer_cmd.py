"""`sica overseer`: the overseer run alone beside any running agent (a `sica solve` in another terminal, say),
printing its findings and judgements. It follows the attempt's events and, with a ledger, its calls; its model is
reached through a gateway of its own on the same ledger (gateways may share one), on an account under the
attempt's when that account allows the overseer's alias."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Annotated

import typer
import uvloop

from sica.cli.state import CliState, UserError, state
from sica.config import Settings
from sica.gateway import Listen, run_gateway
from sica.overseer import (
    AttemptFollower,
    LedgerView,
    Limits,
    Overseer,
    OverseerRecord,
    Reviewer,
    ReviewModel,
    ReviewOutcome,
    Window,
)


def overseer(
    ctx: typer.Context,
    logdir: Annotated[
        Path,
        typer.Option(help="The agent's logdir (holding events.jsonl), or an attempt's folder (holding live.json)."),
    ],
    ledger: Annotated[
        Path | None, typer.Option(help="The gateway's ledger [default: ledger.sqlite in the attempt's folder].")
    ] = None,
    account: Annotated[
        str | None, typer.Option(help="The attempt's account id [default: found from its events, or the only one].")
    ] = None,
    record: Annotated[
        Path | None, typer.Option(help="Where to record findings and judgements [default: beside the logdir].")
    ] = None,
    review: Annotated[bool, typer.Option(help="Review with the overseer's model (else detectors only).")] = True,
) -> None:
    """Oversee a running agent: detectors on its events and calls, reviews by the overseer's model, notices
    through its inbox."""
    cli = state(ctx)
    settings = cli.settings()
    folder, agent_logdir, workdir = _attempt_folders(logdir)
    if ledger is None and (folder / "ledger.sqlite").is_file():
        ledger = folder / "ledger.sqlite"
    if ledger is not None and not ledger.is_file():
        raise UserError(f"no ledger at {ledger}: pass the gateway's --ledger, or leave it out")
    uvloop.run(
        _oversee(cli, settings, agent_logdir, workdir, ledger, account, record or folder / "overseer.jsonl", review)
    )


def _attempt_folders(given: Path) -> tuple[Path, Path, Path | None]:
    """The attempt's folder (outside the agent's reach), its live logdir and workdir (None when unknown)."""
    live = given / "live.json"
    if live.is_file():
        try:
            where = json.loads(live.read_text())
            return given, Path(where["logdir"]), Path(where["workdir"])
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"{live} cannot be read: is the attempt still running?") from None
    if not given.is_dir():
        raise UserError(f"{given} is not a folder: pass an agent's logdir or an attempt's folder")
    workdir = given.parent / "workdir"
    return given.parent, given, workdir if workdir.is_dir() else None


async def _oversee(
    cli: CliState,
    settings: Settings,
    logdir: Path,
    workdir: Path | None,
    ledger_path: Path | None,
    account: str | None,
    record_path: Path,
    review: bool,
) -> None:
    view = LedgerView(ledger_path) if ledger_path is not None else None
    window = Window(
        Limits(started_at=time.time(), time_limit_s=settings.solve.time_limit_s),
        max_steps=settings.overseer.window_steps,
        max_calls=settings.overseer.window_calls,
    )
    follower = AttemptFollower(window, logdir, ledger=view, account_id=account, workdir=workdir)
    await asyncio.to_thread(follower.poll)
    if view is not None and follower.account_id is not None:
        budget = view.limit_usd(follower.account_id)
        window.limits = Limits(window.limits.started_at, window.limits.time_limit_s, budget)
    record = OverseerRecord(record_path)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    cli.err.print(f"overseeing {logdir} (recording to {record_path}); Ctrl-C to stop", markup=False, highlight=False)
    try:
        async with contextlib.AsyncExitStack() as stack:
            reviewer = None
            if review and settings.overseer.enabled:
                reviewer = await _reviewer(stack, settings, ledger_path, follower)
            oversight = Overseer(
                settings.overseer,
                follower,
                logdir,
                record,
                reviewer,
                on_review=lambda outcome: cli.out.print(_shown_review(outcome), markup=False, highlight=False),
                on_finding=lambda finding: cli.out.print(f"finding  {finding.line()}", markup=False, highlight=False),
            )
            await oversight.run(stop)
    finally:
        record.close()
        if view is not None:
            view.close()


async def _reviewer(
    stack: contextlib.AsyncExitStack, settings: Settings, ledger_path: Path | None, follower: AttemptFollower
) -> Reviewer:
    """A gateway of the overseer's own for its model, and the reviewer on an account of its own."""
    alias = settings.role_alias(settings.overseer.model_role)
    own_ledger = ledger_path or settings.gateway.ledger_path.expanduser()
    running = await stack.enter_async_context(
        run_gateway(settings.with_only({alias}), os.environ, own_ledger, Listen(), own_ledger.parent)
    )
    parent = follower.account_id if follower.account_id in running.gateway.accounts else None
    budget = follower.window.limits.budget_usd or settings.solve.budget_usd
    limit = None if budget is None else budget * settings.overseer.budget_share
    try:
        handle = running.gateway.open_account("overseer", parent=parent, limit_usd=limit, aliases=frozenset({alias}))
    except ValueError:  # the attempt's account does not allow the overseer's alias
        handle = running.gateway.open_account("overseer", limit_usd=limit, aliases=frozenset({alias}))
    follower.exclude_accounts = follower.exclude_accounts | {handle.id}
    client = await stack.enter_async_context(running.client(handle.token))
    model = settings.models[alias]
    return Reviewer(client, ReviewModel(alias, model.wire_format, settings.overseer.max_output_tokens))


def _shown_review(outcome: ReviewOutcome) -> str:
    judgement = outcome.judgement
    if judgement is None:
        return f"review   ignored: {outcome.reason}"
    parts = [f"review   {judgement.verdict}", f"agent={judgement.agent or '-'}", f"cancel={judgement.cancel}"]
    if judgement.notify:
        parts.append(f"notify={judgement.notify!r}")
    return " ".join(parts) + f" (next look in {judgement.next_look_s:.0f} s)"
