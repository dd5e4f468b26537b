"""The last check of a new version: a smoke problem, through the run's gateway, answered by a built-in scripted
alias at no cost. It proves what import and the version's own tests cannot: that the version starts under the
harness as the agent contract says, reaches its model through the gateway, and reports how it ended. It asks
nothing of the version's tools (the script only talks), so any status the agent reports itself will do, except
an error."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

from sica.benchmarks.base import Problem
from sica.config import ModelAlias, Settings
from sica.gateway import RunningGateway
from sica.runner.attempt import AttemptLimits, run_attempt
from sica.runner.setup import prepared_agent
from sica.sandbox import Sandbox

SMOKE_ALIAS = "sica-smoke"
#: Replies with no tool call: an agent keeps asking until it gives up or answers; more than any should need.
SMOKE_REPLIES = 12
SMOKE_TIME_LIMIT_S = 60.0
#: The smoke account's cap: its alias is free, so any spend at all is a version reaching for what it was not given.
SMOKE_BUDGET_USD = 0.01
FAILED_STATUSES = frozenset({"error", "infra_error", "cancelled"})


def with_smoke_alias(settings: Settings, script: Path) -> Settings:
    """`settings` with the smoke alias, its script written to `script`."""
    line = json.dumps({"content": "Smoke check: there is nothing to do here."})
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text((line + "\n") * SMOKE_REPLIES, encoding="utf-8")
    alias = ModelAlias(provider="scripted", model="scripted", script=script, price="free")
    return settings.model_copy(update={"models": {**settings.models, SMOKE_ALIAS: alias}})


async def smoke_check(
    settings: Settings,
    code: Path,
    sandbox: Sandbox,
    gateway: RunningGateway,
    run_id: str,
    folder: Path,
    stop: asyncio.Event,
    *,
    parent_account: str | None = None,
) -> str | None:
    """Run the version at `code` on the smoke problem (its trace kept in `folder`); None when it passed, else why
    not. `settings` must have the smoke alias, and `gateway` serve it. The version is untrusted: its account is a
    child of `parent_account` (the run's), may call the smoke alias only, and is capped at SMOKE_BUDGET_USD."""
    problem = Problem("smoke", "smoke", "Smoke check: say that you are done.", lambda dest: None, None)
    limits = dataclasses.replace(
        AttemptLimits.for_eval(settings.solve, settings.eval),
        time_limit_s=SMOKE_TIME_LIMIT_S,
        budget_usd=SMOKE_BUDGET_USD,
    )
    async with prepared_agent(settings.model_roles, settings.solve.envs_dir, code, SMOKE_ALIAS) as agent:
        outcome = await run_attempt(
            problem,
            agent,
            limits,
            sandbox,
            gateway,
            run_id,
            folder,
            lambda _: None,
            stop,
            parent_account=parent_account,
        )
    if outcome.status in FAILED_STATUSES or outcome.input_tokens == 0:
        return f"it fails a smoke problem ({outcome.status}: {outcome.summary[:300]})"
    return None
