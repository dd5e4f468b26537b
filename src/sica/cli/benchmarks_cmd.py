"""`sica benchmarks`: list the built-in benchmarks and build one ahead of time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import uv

from sica.benchmarks import (BUILT_IN, BenchmarkContext, BenchmarkError, DatasetError, SwebenchError, TaskFolderError,
                             open_benchmark)
from sica.benchmarks.sdists import SdistError
from sica.cli.state import UserError, state

benchmarks_app = typer.Typer(help="Benchmarks: problems with hidden, sandboxed scorers.", no_args_is_help=True)


@benchmarks_app.command("list")
def list_command(ctx: typer.Context) -> None:
    """The built-in benchmarks and what they are."""
    cli = state(ctx)
    width = max(map(len, BUILT_IN)) + 1
    for name, about in BUILT_IN.items():
        cli.out.print(f"{name:{width}} {about}", highlight=False, markup=False, soft_wrap=True)


@benchmarks_app.command("build")
def build_command(ctx: typer.Context, name: Annotated[str, typer.Argument(help="e.g. humaneval or taskdir:PATH")]
                  ) -> None:
    """Build (download, generate, cache) a benchmark's problems now, and say how many there are."""
    cli = state(ctx)
    settings = cli.settings()
    benchmarks = settings.benchmarks
    with cli.err.status(f"building {name}…") as status:
        context = BenchmarkContext(
            benchmarks.cache_dir.expanduser(), settings.solve.envs_dir.expanduser(), uv.find_uv_bin(),
            on_progress=lambda message: status.update(f"{name}: {message}"), hf_endpoint=benchmarks.hf_endpoint,
            swebench_file=_expanded(benchmarks.swebench_file), swebench_repo_url=benchmarks.swebench_repo_url,
            swebench_score=benchmarks.swebench_score, swebench_python=_expanded(benchmarks.swebench_python),
            livecodebench_file=_expanded(benchmarks.livecodebench_file),
            livecodebench_release=benchmarks.livecodebench_release)
        try:
            problems = open_benchmark(name, context)
        except (BenchmarkError, DatasetError, SdistError, SwebenchError, TaskFolderError) as error:
            raise UserError(str(error)) from None
    cli.out.print(f"{name}: {len(problems)} problems ready", highlight=False)


def _expanded(path: Path | None) -> Path | None:
    return None if path is None else path.expanduser()
