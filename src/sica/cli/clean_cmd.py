"""`sica clean`: remove cached environments no run refers to and the scratch folders killed processes left."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from sica.cli.state import UserError, state
from sica.runner.cleanup import apply, plan_cleanup
from sica.runner.environments import AgentVersionError


def clean(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be removed, and the space.")] = False,
    min_age: Annotated[float, typer.Option(min=0, help="Keep whatever was used in the last this many minutes.")] = 60.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also list what is kept, and why.")] = False,
) -> None:
    """Remove agent and problem environments that neither agent 0, nor a version of a run under [loop] runs_dir,
    nor a built-in benchmark uses, and the sica-* temporary folders of sica processes that are gone; print each
    removed folder and the space freed. Eval results and solves are kept. Whatever a running sica process may
    use is kept."""
    cli = state(ctx)
    settings = cli.settings()
    try:
        plan = plan_cleanup(settings, time.time(), tmpdir=Path(tempfile.gettempdir()), min_age_s=min_age * 60)
    except (AgentVersionError, OSError) as error:
        raise UserError(f"cannot plan the cleanup: {error}") from None
    if verbose:
        for kept in plan.kept:
            cli.out.print(
                f"kept          {escape(str(kept.path))}  ({kept.kind}: {escape(kept.reason)})",
                highlight=False,
                soft_wrap=True,
            )
    freed, count = 0, 0
    if dry_run:
        for removal in plan.removals:
            cli.out.print(
                f"would remove  {escape(str(removal.path))}  {_size(removal.size)}  ({removal.kind}: "
                f"{escape(removal.reason)})",
                highlight=False,
                soft_wrap=True,
            )
        freed, count = plan.size, len(plan.removals)
    else:
        for removal, failure in apply(plan):
            if failure is None:
                freed, count = freed + removal.size, count + 1
                cli.out.print(
                    f"removed       {escape(str(removal.path))}  {_size(removal.size)}  ({removal.kind}: "
                    f"{escape(removal.reason)})",
                    highlight=False,
                    soft_wrap=True,
                )
            else:
                cli.err.print(
                    f"[yellow]not removed[/] {escape(str(removal.path))}: {escape(failure)}",
                    highlight=False,
                    soft_wrap=True,
                )
    cli.out.print(
        f"{'would free' if dry_run else 'freed'} {_size(freed)} in {count} folder{'' if count == 1 else 's'}",
        highlight=False,
    )
    if plan.live.since is not None:
        pids = ", ".join(map(str, plan.live.pids)) or "unknown"
        cli.err.print(f"sica processes are running (pid {pids}): what they may use was kept", highlight=False)
    if plan.refusal:
        raise UserError(plan.refusal)


def _size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"
