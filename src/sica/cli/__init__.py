"""The `sica` command line: the app and its global options; each command lives in its own module."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from sica.cli import (
    benchmarks_cmd,
    chat_cmd,
    clean_cmd,
    doctor_cmd,
    eval_cmd,
    gateway_cmd,
    improve_cmd,
    models_cmd,
    overseer_cmd,
    report_cmd,
    sandbox_cmd,
    solve_cmd,
    view_cmd,
)
from sica.cli.state import CliState, UserError
from sica.config import ConfigError
from sica.local_model import LocalModelServerError, WeightsError
from sica.runner.liveness import hold_harness_lock

app = typer.Typer(
    name="sica",
    help="A self-improving coding agent, its LLM gateway and its local model.",
    rich_markup_mode=None,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("chat")(chat_cmd.chat)
app.command("gateway")(gateway_cmd.gateway)
app.command("solve")(solve_cmd.solve)
app.command("eval")(eval_cmd.evaluate)
app.command("improve")(improve_cmd.improve_command)
app.command("report")(report_cmd.report)
app.command("overseer")(overseer_cmd.overseer)
app.command("view")(view_cmd.view)
app.add_typer(models_cmd.models_app, name="models")
app.add_typer(sandbox_cmd.sandbox_app, name="sandbox")
app.add_typer(benchmarks_cmd.benchmarks_app, name="benchmarks")
app.command("doctor")(doctor_cmd.doctor)
app.command("clean")(clean_cmd.clean)


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", dir_okay=False, help="Config file (default: ./sica.toml, then ~/.config/sica/sica.toml)."
        ),
    ] = None,
) -> None:
    ctx.obj = CliState(config, Console(), Console(stderr=True))
    if ctx.invoked_subcommand != "clean":  # so `sica clean` leaves alone what this process may use
        lock = hold_harness_lock(Path(tempfile.gettempdir()))
        if lock is not None:
            ctx.call_on_close(lambda: os.close(lock))


def main() -> None:
    """Entry point: typer reports usage errors; expected failures become one-line messages and exit codes."""
    err = Console(stderr=True)
    try:
        app()
    except ConfigError as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (UserError, LocalModelServerError, WeightsError) as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(1)
