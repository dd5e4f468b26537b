"""`sica solve`: point an agent at a repository (or a task folder) and get a diff."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
import uvloop
from rich.live import Live
from rich.syntax import Syntax

from sica.benchmarks import BenchmarkError
from sica.cli.agent_ref import AGENT_HELP, agent_folder
from sica.cli.state import CliState, UserError, check_model, check_sandbox, state
from sica.config import Settings
from sica.runner.attempt import Progress
from sica.runner.environments import AgentVersionError
from sica.runner.solve import SolveOutcome, SolveRequest, run_solve
from sica.sandbox import SandboxError
from sica.workspace.diffs import DiffError, apply_diff


def solve(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help='What to do, e.g. "fix the failing test".')] = None,
    repo: Annotated[
        Path, typer.Option(help="Repository to work on (copied; yours is untouched unless --apply).", file_okay=False)
    ] = Path("."),
    task_dir: Annotated[
        Path | None,
        typer.Option(
            help="A task folder (task.md, build.sh, check.sh) instead of TEXT and --repo.", file_okay=False, exists=True
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model alias for every role. [default: the configured roles]")
    ] = None,
    agent: Annotated[str | None, typer.Option(help=AGENT_HELP)] = None,
    sandbox: Annotated[
        str,
        typer.Option(
            help="Sandbox backend: bwrap, or none (unsafe: the agent runs unconfined, with your user's rights)."
        ),
    ] = "bwrap",
    apply: Annotated[
        bool,
        typer.Option(
            "--apply", help="Apply the diff to --repo (refused if it has uncommitted changes to the same files)."
        ),
    ] = False,
) -> None:
    """Run the agent on a repository or a task folder, show its progress, and print its diff, cost and status."""
    cli = state(ctx)
    check_sandbox(sandbox)
    if sandbox == "none":
        cli.err.print("[bold yellow]warning:[/] --sandbox none: the agent runs without a sandbox")
    if (text is None) == (task_dir is None):
        raise UserError("give either TEXT (with --repo) or --task-dir, not both or neither")
    if task_dir is not None:
        if not (task_dir / "task.md").is_file() or not (task_dir / "build.sh").is_file():
            raise UserError(f"{task_dir} is not a task folder: it needs task.md and build.sh (and check.sh)")
        statement = (task_dir / "task.md").read_text(encoding="utf-8")
    else:
        statement = text or ""
    settings = cli.settings()
    check_model(settings, model)
    with agent_folder(agent, settings) as agent_dir:
        request = SolveRequest(
            statement,
            None if task_dir else repo.resolve(),
            task_dir.resolve() if task_dir else None,
            agent_dir,
            model,
            sandbox,
        )
        try:
            outcome = uvloop.run(_run(cli, settings, request))
        except (AgentVersionError, BenchmarkError, DiffError, SandboxError) as error:
            raise UserError(str(error)) from None
    _report(cli, outcome)
    if apply and request.repo is not None and outcome.diff:
        try:
            apply_diff(request.repo, outcome.diff)
        except DiffError as error:
            raise UserError(str(error)) from None
        cli.err.print(f"applied the diff to {request.repo}")
    if outcome.status != "done":
        raise typer.Exit(3)


async def _run(cli: CliState, settings: Settings, request: SolveRequest) -> SolveOutcome:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    with Live(console=cli.err, refresh_per_second=4, transient=True) as live:

        def show(progress: Progress) -> None:
            live.update(
                f"[bold]{'stopping' if stop.is_set() else 'working'}[/] step {progress.step} · "
                f"{progress.tool or 'thinking'} · {progress.tokens} tok · "
                f"${progress.cost_usd:.4f} · {progress.elapsed_s:.0f} s"
            )

        return await run_solve(settings, os.environ, request, show, stop)


def _report(cli: CliState, outcome: SolveOutcome) -> None:
    for notice in outcome.notices:
        cli.err.print(notice, markup=False, highlight=False)
    if outcome.diff:
        cli.out.print(Syntax(outcome.diff, "diff", theme="ansi_dark", word_wrap=True))
    else:
        cli.out.print("(no changes)")
    if outcome.answer is not None:
        cli.out.print(f"answer: {outcome.answer}", highlight=False)
    colour = "green" if outcome.status == "done" else "yellow"
    cli.err.print(f"[bold {colour}]{outcome.status}[/]: {outcome.summary}", highlight=False)
    if outcome.overseer:
        cli.err.print(outcome.overseer, markup=False, highlight=False)
    if outcome.check is not None:
        cli.err.print(f"check.sh: {outcome.check}")
    cli.err.print(
        f"{outcome.input_tokens} tokens in, {outcome.output_tokens} out, ${outcome.cost_usd:.4f}, "
        f"{outcome.seconds:.0f} s; kept in {outcome.folder}",
        highlight=False,
    )
