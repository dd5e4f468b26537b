"""The agent version a command runs: agent 0 by default, else a folder or an archive reference."""

from __future__ import annotations

import contextlib
import functools
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sica.archive import ArchiveError, resolve_reference
from sica.cli.state import UserError
from sica.config import Settings
from sica.loop.evaluation import best_in_run
from sica.runner.environments import seed_agent_dir

#: The `--agent` option's help, shared by the commands that run an agent.
AGENT_HELP = (
    "Agent version: a folder, agent-N or best (in the latest run under [loop] runs_dir), RUN:agent-N or "
    "RUN:best. [default: agent 0, the seed]"
)


@contextlib.contextmanager
def agent_folder(reference: str | None, settings: Settings) -> Iterator[Path]:
    """A folder with the version's code for the command's lifetime (an archived version is checked out into a
    temporary folder); a one-line error for a reference that names nothing or a folder that is no agent."""
    if reference is None:
        yield seed_agent_dir()
        return
    with tempfile.TemporaryDirectory(prefix="sica-agent-") as scratch:
        try:
            runs_dir = settings.loop.runs_dir.expanduser()
            best = functools.partial(best_in_run, configured_weights=settings.loop.utility)
            folder = resolve_reference(reference, runs_dir, Path(scratch), best).resolve()
        except ArchiveError as error:
            raise UserError(str(error)) from None
        if not (folder / "pyproject.toml").is_file():
            raise UserError(f"--agent {reference}: {folder} is not an agent version (it has no pyproject.toml)")
        yield folder
