"""`sica eval`: run an agent version on a benchmark mix and report score, cost and time."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
from typing import Annotated

import typer
import uvloop
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sica.benchmarks import BenchmarkError
from sica.cli.agent_ref import AGENT_HELP, agent_folder
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
from sica.runner.environments import AgentVersionError
from sica.runner.evaluate import HOLDOUT, SELECTION, EvalConfig, EvalProgress, EvalReport, EvalRequest, run_eval
from sica.runner.ray_api import RayUnavailable
from sica.runner.results import TAMPERED, ProblemResult
from sica.runner.setup import serve_gateway
from sica.runner.stats import mean_interval
from sica.sandbox import SandboxError


def evaluate(
    ctx: typer.Context,
    benchmark: Annotated[
        list[str],
        typer.Option(
            "--benchmark", "-b", help="A benchmark to select on, e.g. humaneval:20 or taskdir:PATH (repeat for a mix)."
        ),
    ],
    holdout: Annotated[
        list[str] | None,
        typer.Option(
            help="A held-out benchmark, reported apart (repeatable); "
            "problems come after the selected ones of the same "
            "benchmark."
        ),
    ] = None,
    agent: Annotated[str | None, typer.Option(help=AGENT_HELP)] = None,
    model: Annotated[
        str | None, typer.Option(help="Model alias for every role. [default: the configured roles]")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Problems at a time. [default: [eval] workers, else the local model's slots, else 4]"),
    ] = None,
    sandbox: Annotated[str, typer.Option(help="Sandbox backend: bwrap, podman, docker, or none (unsafe).")] = "bwrap",
    runner: Annotated[str | None, typer.Option(help=RUNNER_HELP)] = None,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help=RAY_ADDRESS_HELP)] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Run every problem again, even with a stored result.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print one row per problem.")] = False,
) -> None:
    """Run every problem of the mix in its own sandbox with its own budget; print score (mean ± 95% CI), cost,
    time and tokens per benchmark. Results are stored and reused; Ctrl-C stops, and the same command finishes
    the rest."""
    cli = state(ctx)
    check_sandbox(sandbox)
    settings = with_runner(cli.settings(), runner, ray_address)
    check_model(settings, model)
    with agent_folder(agent, settings) as agent_dir:
        request = EvalRequest(agent_dir, benchmark, holdout or [], model, workers, sandbox, fresh)
        try:
            report = uvloop.run(_run(cli, settings, request))
        except (AgentVersionError, BenchmarkError, RayUnavailable, SandboxError, OSError) as error:
            raise UserError(str(error)) from None
    _print_report(cli, report, verbose)
    if report.interrupted:
        cli.err.print(
            f"[yellow]interrupted[/]: {len(report.results)} problems have results (kept); run the same "
            "command again to finish the rest"
        )
        raise typer.Exit(130)


async def _run(cli: CliState, settings: Settings, request: EvalRequest) -> EvalReport:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=cli.err, transient=True) as bar:
        task = bar.add_task("eval", total=None, status="")

        def show(p: EvalProgress) -> None:
            if p.phase:
                bar.update(task, description=p.phase[-60:], status="")
                return
            scored = p.done - p.infra
            mean = f"{p.score_sum / scored:.2f}" if scored else "–"
            infra = f" · {p.infra} infra failures" if p.infra else ""
            infra += f" · {p.tampered} tampered" if p.tampered else ""
            bar.update(
                task,
                description="stopping" if stop.is_set() else "eval",
                total=p.total,
                completed=p.done,
                status=f"{p.running} running · score {mean} · ${p.cost_usd:.4f} · {p.cached} reused{infra}",
            )

        start_gateway = functools.partial(serve_gateway, settings, os.environ)
        return await run_eval(EvalConfig.of(settings), request, show, stop, gateway=start_gateway)


def _print_report(cli: CliState, report: EvalReport, verbose: bool) -> None:
    table = Table(title=f"eval {report.eval_id} ({report.workers} workers)", title_justify="left")
    for column in (
        "part",
        "benchmark",
        "problems",
        "score (95% CI)",
        "solved",
        "infra",
        "tampered",
        "cost $",
        "time s",
        "tokens in/out",
    ):
        table.add_column(column, justify="left" if column in ("part", "benchmark") else "right")
    for part in (SELECTION, HOLDOUT):
        groups: dict[str, list[ProblemResult]] = {}
        for result in report.results:
            if result.part == part:
                groups.setdefault(result.benchmark, []).append(result)
        for name, results in groups.items():
            scored = [r for r in results if not r.infra]
            interval = mean_interval([r.score for r in scored])
            table.add_row(
                part,
                name,
                str(len(results)),
                str(interval) if scored else "–",
                str(sum(r.score == 1.0 for r in scored)),
                str(len(results) - len(scored)),
                str(sum(r.status == TAMPERED for r in results)),
                f"{sum(r.cost_usd for r in results):.4f}",
                f"{sum(r.seconds for r in scored) / len(scored):.1f}" if scored else "–",
                f"{sum(r.input_tokens for r in results)}/{sum(r.output_tokens for r in results)}",
            )
    cli.out.print(table)
    if verbose:
        rows = Table(show_lines=False)
        for column in ("problem", "status", "score", "cost $", "time s", "tokens", "reused"):
            rows.add_column(column, no_wrap=True)
        rows.add_column("details", overflow="fold", ratio=1)
        for r in report.results:
            shown = r.problem_id if len(r.problem_id) <= 40 else "…" + r.problem_id[-39:]
            rows.add_row(
                shown,
                r.status,
                f"{r.score:g}",
                f"{r.cost_usd:.4f}",
                f"{r.seconds:.1f}",
                f"{r.input_tokens}/{r.output_tokens}",
                "yes" if r.cached else "",
                r.details[:160],
            )
        cli.out.print(rows)
    cli.err.print(f"results: {report.folder / 'results.jsonl'}", highlight=False)
