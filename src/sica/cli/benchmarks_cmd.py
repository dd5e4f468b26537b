"""`sica benchmarks`: list the built-in benchmarks and build one ahead of time."""

from __future__ import annotations

from typing import Annotated

import typer
import uv

from sica.benchmarks import BUILT_IN, BenchmarkContext, BenchmarkError, open_benchmark
from sica.cli.state import UserError, state
from sica.sandbox import SandboxError

benchmarks_app = typer.Typer(help="Benchmarks: problems with hidden, sandboxed scorers.", no_args_is_help=True)


@benchmarks_app.command("list")
def list_command(ctx: typer.Context) -> None:
    """The built-in benchmarks and what they are."""
    cli = state(ctx)
    width = max(map(len, BUILT_IN)) + 1
    for name, about in BUILT_IN.items():
        cli.out.print(f"{name:{width}} {about}", highlight=False, markup=False, soft_wrap=True)


@benchmarks_app.command("build")
def build_command(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="e.g. humaneval or taskdir:PATH")]
) -> None:
    """Build (download, generate, cache) a benchmark's problems now, and say how many there are."""
    cli = state(ctx)
    settings = cli.settings()
    with cli.err.status(f"building {name}…") as status:
        context = BenchmarkContext.from_settings(
            settings.benchmarks,
            settings.solve.envs_dir,
            uv.find_uv_bin(),
            on_progress=lambda message: status.update(f"{name}: {message}"),
        )
        try:
            problems = open_benchmark(name, context)
        except (BenchmarkError, SandboxError) as error:
            raise UserError(str(error)) from None
    cli.out.print(f"{name}: {len(problems)} problems ready", highlight=False)
