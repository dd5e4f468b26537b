"""`sica improve`: run (or resume) the self-improvement loop over a run folder."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Annotated

import typer
import uvloop
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from sica.archive import ArchiveError
from sica.archive.refs import find_run
from sica.benchmarks import BenchmarkError
from sica.cli.state import (
    RAY_ADDRESS_HELP,
    RUNNER_HELP,
    CliState,
    UserError,
    check_model,
    check_sandbox,
    state,
    with_runner,
)
from sica.config import Settings
from sica.loop.improve import ImproveRequest, improve
from sica.loop.iteration import IterationSummary
from sica.loop.policies import POLICIES, SelectionError
from sica.loop.run_numbers import SWITCH_FLAG, NumbersMismatch
from sica.runner.environments import AgentVersionError
from sica.runner.ray_api import RayUnavailable
from sica.sandbox import SandboxError


def improve_command(
    ctx: typer.Context,
    benchmark: Annotated[
        list[str] | None,
        typer.Option(
            "--benchmark",
            "-b",
            help="A benchmark to select on, e.g. humaneval:20 (repeat for a mix); not with --resume.",
        ),
    ] = None,
    holdout: Annotated[
        list[str] | None,
        typer.Option(
            help="A held-out benchmark, never shown to the meta agent nor used for selection; reported apart."
        ),
    ] = None,
    iterations: Annotated[int, typer.Option(min=0, help="Iterations in all (a resumed run counts those done).")] = 3,
    model: Annotated[
        str | None, typer.Option(help="Model alias of the agents evaluated. [default: the configured roles]")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--run", help="The new run's folder name under [loop] runs_dir. [default: the date and time]"),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(help="Carry on a run (its name under [loop] runs_dir, or its folder) where it stopped."),
    ] = None,
    sandbox: Annotated[str, typer.Option(help="Sandbox backend: bwrap, podman, docker, or none (unsafe).")] = "bwrap",
    runner: Annotated[str | None, typer.Option(help=RUNNER_HELP)] = None,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help=RAY_ADDRESS_HELP)] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help="Selection policy: sica, dgm, hgm or greedy; with --resume, another than the run's needs "
            "--switch-config. [default: [loop] policy; on resume, the run's]"
        ),
    ] = None,
    switch_config: Annotated[
        bool,
        typer.Option(
            "--switch-config",
            help="With --resume: adopt this configuration's utility, policy and stages where they differ from the "
            "run's (recorded in the run, shown by its report); without it such a resume is refused.",
        ),
    ] = False,
) -> None:
    """Improve the agent: each iteration a meta agent edits a version chosen by the policy, the result is
    validated, archived and evaluated; one line per iteration. Ctrl-C stops; --resume carries on."""
    cli = state(ctx)
    settings = with_runner(cli.settings(), runner, ray_address)
    check_sandbox(sandbox)
    for alias in (model, settings.loop.meta_model):
        check_model(settings, alias)
    runs_dir = settings.loop.runs_dir.expanduser()
    if resume is not None:
        if benchmark or holdout:
            raise UserError("--resume carries on with the run's own benchmarks: leave out --benchmark and --holdout")
        try:
            folder = find_run(resume, runs_dir)
        except ArchiveError as error:
            raise UserError(str(error)) from None
    else:
        if switch_config:
            raise UserError(
                f"{SWITCH_FLAG} changes a resumed run's numbers: give it with --resume RUN, or leave it out"
            )
        if not benchmark:
            raise UserError("give the benchmarks to improve on, e.g. --benchmark humaneval:20")
        folder = runs_dir / (name or time.strftime("%Y%m%d-%H%M%S"))
        if folder.exists():
            raise UserError(f"{folder} exists already: pick another --run name, or --resume it")
    if policy is not None and policy not in POLICIES:
        raise UserError(f"unknown policy '{policy}': use one of {', '.join(POLICIES)}")
    request = ImproveRequest(
        folder, benchmark or [], holdout or [], iterations, model, sandbox, resume is not None, policy, switch_config
    )
    try:
        summaries = uvloop.run(_run(cli, settings, request))
    except (
        AgentVersionError,
        ArchiveError,
        BenchmarkError,
        NumbersMismatch,
        RayUnavailable,
        SandboxError,
        SelectionError,
        OSError,
    ) as error:
        raise UserError(str(error)) from None
    cli.err.print(f"run {request.run_folder}: {len(summaries)} iterations this time", highlight=False)


async def _run(cli: CliState, settings: Settings, request: ImproveRequest) -> list[IterationSummary]:
    """The loop with a live status line (on stderr, gone when done) under the lines that stay."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=cli.err, transient=True) as status:
        task = status.add_task("starting", total=None)
        # On a terminal the lines go through the live display's console, so that the two do not overwrite each other.
        out = status.console if cli.out.is_terminal and cli.err.is_terminal else cli.out

        def show(text: str) -> None:
            status.update(task, description=text[:150])

        def say(line: str) -> None:
            out.print(line, highlight=False, soft_wrap=True)

        return await improve(settings, os.environ, request, say, stop, on_status=show)
