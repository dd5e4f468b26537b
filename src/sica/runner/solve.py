"""`sica solve`: run an agent version on a user's repository or a task folder, follow it, and keep its diff.

One attempt (see `sica.runner.attempt`) through a gateway of its own; the run's folder under `[solve]
solves_dir` keeps what the attempt keeps plus `ledger.sqlite`, the gateway's trusted account of every model call.
The agent's copy of a user's repository never holds sica's configuration or env files (`PRIVATE_FILES`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import uv

from sica.benchmarks.base import BenchmarkContext, Problem
from sica.benchmarks.environments import check_environment
from sica.benchmarks.taskdir import task_problem
from sica.config import Settings
from sica.runner.attempt import AttemptLimits, Progress, run_attempt
from sica.runner.oversight import OverseerPlan, with_overseer
from sica.runner.setup import prepared_agent, serve_gateway
from sica.sandbox import open_sandbox
from sica.sandbox.base import SandboxError
from sica.sandbox.mounts import check_reachable
from sica.sandbox.untrusted import LeftOut, shown_path
from sica.workspace.trees import copy_tree


@dataclass(frozen=True)
class SolveRequest:
    """What to solve, where, and with which agent and model."""

    statement: str
    repo: Path | None
    task_dir: Path | None
    agent_dir: Path
    model: str | None
    sandbox: str = "bwrap"


@dataclass(frozen=True)
class SolveOutcome:
    """How a run ended: status and summary (the agent's own), cost and tokens (the gateway's), the diff, and the
    overseer's line (empty: none watched)."""

    id: str
    folder: str
    status: str
    summary: str
    answer: str | None
    cost_usd: float
    input_tokens: int
    output_tokens: int
    seconds: float
    diff: str
    check: str | None
    #: One line each, for the user: what the agent's copy of the repository left out.
    notices: tuple[str, ...] = ()
    overseer: str = ""


#: Never copied into the agent's copy of a user's repository, at any depth: sica's configuration and env files,
#: which may hold keys inline.
PRIVATE_FILES = re.compile(r"sica\.toml|\.env(\..*)?")
PRIVATE_REASON = "sica's configuration and environment files (they may hold keys)"


def private_file(name: str) -> str | None:
    """Why an entry of a user's repository stays out of the agent's copy, if it does (see `PRIVATE_FILES`)."""
    return PRIVATE_REASON if PRIVATE_FILES.fullmatch(name) else None


def repository_problem(repo: Path, statement: str, left_out: list[str] | None = None) -> Problem:
    """A user's repository as a problem with nothing to check; its `.venv`, when the sandbox user can reach it,
    is the problem's environment. The copy leaves out the private files (`PRIVATE_FILES`), whose paths are
    added to `left_out`."""
    venv = repo / ".venv"
    try:
        check_reachable(venv)
        tools = venv / "bin" if (venv / "bin").is_dir() else None
    except SandboxError:
        tools = None

    def lay_out(dest: Path) -> None:
        notes = LeftOut()
        copy_tree(repo, dest, leave_out=private_file, notes=notes)
        if left_out is not None:
            left_out.extend(notes.by_reason.get(PRIVATE_REASON, []))

    return Problem("solve", "repository", statement, lay_out, None, tools)


def left_out_notice(paths: list[str]) -> str:
    """One line telling the user which of the repository's files the agent's copy left out, and why."""
    shown = ", ".join(shown_path(path) for path in sorted(paths))
    return f"left out of the agent's copy: {shown} ({PRIVATE_REASON})"


async def run_solve(
    settings: Settings,
    environ: Mapping[str, str],
    request: SolveRequest,
    on_progress: Callable[[Progress], None],
    stop: asyncio.Event,
) -> SolveOutcome:
    """Run the agent to its end (or until `stop` is set: then it is cancelled, with a grace period)."""
    sandbox = open_sandbox(request.sandbox, allow_unsafe=request.sandbox == "none")
    solve_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
    folder = settings.solve.solves_dir.expanduser() / solve_id
    folder.mkdir(parents=True)
    private: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        agent = await stack.enter_async_context(
            prepared_agent(settings.model_roles, settings.solve.envs_dir, request.agent_dir, request.model)
        )
        if request.task_dir is not None:
            context = BenchmarkContext.from_settings(settings.benchmarks, settings.solve.envs_dir, uv.find_uv_bin())
            tools = await asyncio.to_thread(check_environment, context)
            problem = task_problem(request.task_dir, "taskdir", tools=tools)
        else:
            assert request.repo is not None
            problem = repository_problem(request.repo, request.statement, private)
        overseer = OverseerPlan.of(settings.overseer, settings.model_roles)
        gateway = await stack.enter_async_context(
            serve_gateway(settings, environ, with_overseer(agent.aliases, overseer), folder / "ledger.sqlite", folder)
        )
        outcome = await run_attempt(
            problem,
            agent,
            AttemptLimits.for_solve(settings.solve),
            sandbox,
            gateway,
            solve_id,
            folder,
            on_progress,
            stop,
            overseer=overseer,
        )
    check = None
    if outcome.score is not None:
        check = f"{'solved' if outcome.score.value == 1 else 'not solved'} (score {outcome.score.value:g})"
    return SolveOutcome(
        solve_id,
        str(folder),
        outcome.status,
        outcome.summary,
        outcome.answer,
        outcome.cost_usd,
        outcome.input_tokens,
        outcome.output_tokens,
        outcome.seconds,
        outcome.diff,
        check,
        (left_out_notice(private),) if private else (),
        outcome.overseer,
    )
