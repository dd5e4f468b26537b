"""`sica sandbox run`: any command in the sandbox the way agent runs are sandboxed, for checking a set-up."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from sica.cli.state import UserError, state
from sica.sandbox import BACKENDS, Limits, SandboxError, SandboxSpec, open_sandbox

sandbox_app = typer.Typer(help="Sandboxes: run commands the way agents are run.", no_args_is_help=True)


@sandbox_app.command("run", context_settings={"allow_interspersed_args": False})
def run_command(
    ctx: typer.Context,
    command: Annotated[list[str], typer.Argument(help="The command and its arguments (after --).")],
    backend: Annotated[str, typer.Option(help=f"One of {', '.join(BACKENDS)}.")] = "bwrap",
    workdir: Annotated[
        Path | None,
        typer.Option(help="Mounted read-write at /work. [default: a fresh empty folder]", file_okay=False, exists=True),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Wall-time limit in seconds.", min=0.1)] = 60.0,
    memory: Annotated[int, typer.Option(help="Memory limit in MB.", min=16)] = 2048,
    unsafe: Annotated[bool, typer.Option("--unsafe", help="Allow --backend none (no confinement).")] = False,
) -> None:
    """Run COMMAND in the sandbox, print its output, and exit with its status (or say how it was stopped)."""
    cli = state(ctx)
    try:
        sandbox = open_sandbox(backend, allow_unsafe=unsafe)
        with tempfile.TemporaryDirectory(prefix="sica-sandbox-") as scratch:
            folder = workdir.resolve() if workdir else Path(scratch)
            if workdir is None:
                folder.chmod(0o755)
            result = sandbox.run(
                SandboxSpec(command=tuple(command), workdir=folder, limits=Limits(wall_s=timeout, memory_mb=memory))
            )
    except SandboxError as error:
        raise UserError(str(error)) from None
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.ending != "exit":
        cli.err.print(f"[bold yellow]{result.describe()}[/] after {result.seconds:.1f} s")
    raise typer.Exit(
        result.exit_code if result.ending == "exit" and result.exit_code is not None else 128 + (result.signal or 9)
    )
