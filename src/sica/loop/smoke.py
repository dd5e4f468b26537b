"""The last check of a new version: a smoke problem, through the run's gateway, answered by the built-in scripted
alias `sica-smoke` at no cost. It proves what import and the version's own tests cannot: that the version starts
under the harness as the agent contract says, reaches its model through the gateway, does what the model asks
and reports how it ended.

Each check writes the smoke model's script afresh (`smoke_script`): its first reply calls the tool `run` with a
command that writes a nonce drawn for this check into `smoke-check.txt`, its second calls `complete`. The check
passes only on the harness's own evidence: the attempt ended `done` (the agent's own status, as the harness
decides it), the gateway's ledger shows both replies given (so the agent went back to the model after the tool),
and the working tree the harness kept holds the file with the nonce. Anything else is invalid, with what lacked.

Why these two tools: the agent contract names them (docs/architecture.md), and no other. A meta agent may rename
or rewrite any tool, but a scripted model cannot see what a version offers, so it must name something; the least
brittle choice is what a coding agent is least likely to lose. `run` is agent 0's shell, through which any other
action can go (and it exercises the sandbox more than a file write would); `complete` is agent 0's end, since to
agent 0 a reply without a tool call is malformed, not an end. A version without them fails, with a reason that
names the tool.

Why a version cannot pass without acting: the nonce is drawn as the check starts, only the model's first reply
carries it (the statement does not), the script lies in the run's `logs/`, outside every sandbox, and is emptied
after the check, and the harness's reasons never quote it (they reach later meta agents through the archive
view; a finished check's nonce is worth nothing anyway). A version that does what the reply says by other means
than a tool (it runs the command itself) still acts, which is what is checked."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
from pathlib import Path
from typing import Any

from sica.benchmarks.base import Problem
from sica.config import ModelAlias, Settings
from sica.gateway import RunningGateway
from sica.loop.validation import one_line
from sica.runner.attempt import AttemptLimits, AttemptOutcome, run_attempt
from sica.runner.setup import prepared_agent
from sica.sandbox import Sandbox
from sica.sandbox.untrusted import read_untrusted_text

SMOKE_ALIAS = "sica-smoke"
#: The file the smoke model's command writes in the working tree: the harness's evidence that the tool ran.
SMOKE_FILE = "smoke-check.txt"
SMOKE_STATEMENT = (
    "Smoke check of a new agent version: do what the model asks. It asks for one command and then says that the "
    "task is complete."
)
SMOKE_TIME_LIMIT_S = 60.0
#: The smoke account's cap: its alias is free, so any spend at all is a version reaching for what it was not given.
SMOKE_BUDGET_USD = 0.01
#: What each reply declares it used: one output token a reply, so the ledger's output tokens for the attempt
#: (its outcome's) count the replies the model gave.
REPLY_USAGE = {"input": 1, "output": 1}


def smoke_script(nonce: str) -> list[dict[str, Any]]:
    """The smoke model's replies for one check: a command that writes `nonce` into SMOKE_FILE, then the end."""
    command = f"echo {nonce} > {SMOKE_FILE}"
    return [
        {"tool_calls": [{"name": "run", "arguments": {"command": command}}], "usage": REPLY_USAGE},
        {"tool_calls": [{"name": "complete", "arguments": {"summary": "ran the command"}}], "usage": REPLY_USAGE},
    ]


def with_smoke_alias(settings: Settings, script: Path) -> Settings:
    """`settings` with the smoke alias, its script at `script`: empty until a check writes its own."""
    _write_script(script, [])
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
    not. `settings` must have the smoke alias, and `gateway` serve it; checks of one run go one at a time (each
    writes the alias's script). The version is untrusted: its account is a child of `parent_account` (the run's),
    may call the smoke alias only, and is capped at SMOKE_BUDGET_USD."""
    script = settings.models[SMOKE_ALIAS].script
    assert script is not None, "with_smoke_alias gives the smoke alias its script"
    nonce = secrets.token_hex(16)
    replies = smoke_script(nonce)
    problem = Problem("smoke", "smoke", SMOKE_STATEMENT, lambda dest: None, None)
    limits = dataclasses.replace(
        AttemptLimits.for_eval(settings.solve, settings.eval),
        time_limit_s=SMOKE_TIME_LIMIT_S,
        budget_usd=SMOKE_BUDGET_USD,
    )
    _write_script(script, replies)
    try:
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
    finally:
        _write_script(script, [])
    missing = _missing(outcome, len(replies), folder / "workdir" / SMOKE_FILE, nonce)
    return f"it fails a smoke problem: {'; '.join(missing)}" if missing else None


def _missing(outcome: AttemptOutcome, replies: int, evidence: Path, nonce: str) -> list[str]:
    """What the harness's evidence lacks: the status done, every reply given, the file the command writes."""
    missing = []
    if outcome.status != "done":
        missing.append(f"it ended {outcome.status}, not done ({one_line(outcome.summary, 200)})")
    given = outcome.output_tokens  # one a reply (REPLY_USAGE)
    if given == 0:
        missing.append("it never called the smoke model")
    elif given < replies:
        missing.append(f"it took {given} of the smoke model's {replies} replies: it did not go back to the model")
    written = read_untrusted_text(evidence, 1024)
    if written is None:
        missing.append(f"the model's call of `run` (a tool of the agent contract) left no {SMOKE_FILE} in the tree")
    elif written.strip() != nonce:
        missing.append(f"{SMOKE_FILE} does not hold what the model's call of `run` writes")
    return missing


def _write_script(path: Path, replies: list[dict[str, Any]]) -> None:
    """Write the smoke model's script at once (aside, then renamed): an account reads it at its first call."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text("".join(json.dumps(reply) + "\n" for reply in replies), encoding="utf-8")
    os.replace(partial, path)
