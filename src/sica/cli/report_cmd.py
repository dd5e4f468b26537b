"""`sica report`: write a run's report (Markdown, HTML, plots) into its folder or another."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sica.archive import ArchiveError, Run
from sica.archive.refs import find_run
from sica.cli.state import UserError, state
from sica.report import gather_report, write_report


def report(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="The run: its name under [loop] runs_dir, or its folder.")],
    out: Annotated[
        Path | None, typer.Option(file_okay=False, help="Folder to write into. [default: the run's folder]")
    ] = None,
) -> None:
    """Write report.md and report.html (a table per version: parent, change, scores with 95% CI, held-out scores,
    utility, cost, time, validity, evaluation stage; the run's totals; the meta steps), progress.png and
    lineage.png. The run is only read, so this works while `sica improve` is running it."""
    cli = state(ctx)
    settings = cli.settings()
    try:
        folder = find_run(run, settings.loop.runs_dir.expanduser())
        with Run.open(folder, read_only=True) as opened:
            gathered = gather_report(opened, settings.loop.utility)
    except ArchiveError as error:
        raise UserError(str(error)) from None
    dest = out or folder
    try:
        paths = write_report(gathered, dest)
    except OSError as error:
        raise UserError(
            f"cannot write the report into {dest} ({error.strerror or error}): give a writable folder with --out DIR"
        ) from None
    for path in paths:
        cli.out.print(str(path), highlight=False, soft_wrap=True)
