"""`sica benchmarks`: list the built-in benchmarks and build one ahead of time."""

from __future__ import annotations

from typing import Annotated

import typer
import uv

from sica.benchmarks import BUILT_IN, BenchmarkContext, BenchmarkError, BugfixError, TaskFolderError, open_benchmark
from sica.benchmarks.environments import ProblemEnvironmentError
from sica.benchmarks.humaneval import DatasetError
from sica.benchmarks.sdists import SdistError
from sica.cli.state import UserError, state
from sica.sandbox import SandboxError

benchmarks_app = typer.Typer(help="Benchmarks: problems with hidden, sandboxed scorers.", no_args_is_help=True)


@benchmarks_app.command("list")
def list_command(ctx: typer.Context) -> None:
    """The built-in benchmarks and what they are."""
    cli = state(ctx)
    for name, about in BUILT_IN.items():
        cli.out.print(f"{name:14} {about}", highlight=False, soft_wrap=True)


@benchmarks_app.command("build")
def build_command(ctx: typer.Context, name: Annotated[str, typer.Argument(help="e.g. humaneval or taskdir:PATH")]
                  ) -> None:
    """Build (download, generate, cache) a benchmark's problems now, and say how many there are."""
    cli = state(ctx)
    settings = cli.settings()
    with cli.err.status(f"building {name}…") as status:
        context = BenchmarkContext(settings.benchmarks.cache_dir.expanduser(), settings.solve.envs_dir.expanduser(),
                                   uv.find_uv_bin(), on_progress=lambda message: status.update(f"{name}: {message}"))
        try:
            problems = open_benchmark(name, context)
        except (BenchmarkError, BugfixError, DatasetError, ProblemEnvironmentError, SandboxError, SdistError,
                TaskFolderError) as error:
            raise UserError(str(error)) from None
    cli.out.print(f"{name}: {len(problems)} problems ready", highlight=False)
