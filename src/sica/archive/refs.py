"""Agent references, as given on the command line: a folder, `agent-N` or `best` (in the latest run under the
runs folder), `RUN:agent-N` or `RUN:best` (RUN a run's name under the runs folder, or a run folder's path).

`best` is the run's best version as the caller's `best` picks it (the loop's definition, which the archive does
not know: `sica.loop.comparison`). The words win over folders: to name a folder called `best` or `agent-3`, write
`./best`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sica.archive.errors import ArchiveError
from sica.archive.run import DATABASE, Run

#: Picks a run's best version.
BestVersion = Callable[[Run], int]
_VERSION = re.compile(r"agent-(\d+)|best")
_FORMS = "a folder, agent-N, best, RUN:agent-N or RUN:best"


@dataclass(frozen=True)
class Reference:
    """A parsed reference: a folder (`path`), or a version (`number`, None for best) in a run (`run`, None for
    the latest)."""

    path: Path | None = None
    run: str | None = None
    number: int | None = None


def parse_reference(reference: str) -> Reference:
    """What a reference names, without looking at any run; a one-line error for one that names nothing."""
    run, colon, word = reference.rpartition(":")
    if match := _VERSION.fullmatch(word):
        if colon and not run:
            raise ArchiveError(f"{reference!r}: no run before the colon; write {_FORMS}")
        number = int(match.group(1)) if match.group(1) is not None else None
        return Reference(run=run or None, number=number)
    if Path(reference).is_dir():
        return Reference(path=Path(reference))
    raise ArchiveError(f"unknown agent reference {reference!r} (no such folder either): write {_FORMS}")


def latest_run(runs_dir: Path) -> Path:
    """The run under `runs_dir` created last (runs that cannot be opened are passed over)."""
    runs: list[tuple[float, Path]] = []
    for folder in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
        if not (folder / DATABASE).is_file():
            continue
        try:
            with Run.open(folder, read_only=True) as run:
                runs.append((float(run.db.get_state("created_at", 0.0)), folder))
        except ArchiveError:
            continue
    if not runs:
        raise ArchiveError(f"no runs under {runs_dir}: start one with `sica improve`, or name RUN:agent-N")
    return max(runs)[1]


def find_run(name: str, runs_dir: Path) -> Path:
    """A run by its folder's path, else by its name under `runs_dir`."""
    for folder in (Path(name), runs_dir / name):
        if (folder / DATABASE).is_file():
            return folder
    raise ArchiveError(
        f"no run {name!r} (neither a run folder nor a run under {runs_dir}): list them with `ls {runs_dir}`"
    )


def resolve_reference(reference: str, runs_dir: Path, scratch: Path, best: BestVersion) -> Path:
    """A folder holding the referenced agent's code: the folder itself, or the version checked out into
    `scratch` (a previous checkout of the same version there is replaced)."""
    parsed = parse_reference(reference)
    if parsed.path is not None:
        return parsed.path
    folder = find_run(parsed.run, runs_dir) if parsed.run else latest_run(runs_dir)
    with Run.open(folder, read_only=True) as run:
        number = parsed.number if parsed.number is not None else best(run)
        run.version(number)
        dest = scratch / f"{folder.name}-agent-{number}"
        if dest.exists():
            shutil.rmtree(dest)
        return run.checkout(number, dest)
