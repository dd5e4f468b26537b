"""The run folder and its archive: agent versions in `archive.git`, what the run knows of them in `run.sqlite`."""

from sica.archive.errors import ArchiveError
from sica.archive.refs import resolve_reference
from sica.archive.run import Run
from sica.archive.run_db import Evaluation

__all__ = ["ArchiveError", "Evaluation", "Run", "resolve_reference"]
