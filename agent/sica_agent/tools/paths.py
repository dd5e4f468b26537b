"""Where tools may read and write: only inside the working directory.

A path argument is relative to the working directory; an absolute one is accepted only when it lies inside it.
Paths that leave it, by `..` or through a symbolic link that points outside, are refused. Refusals name the
real working-directory path when the model probably meant one (small models invent prefixes such as `/repo/`),
and never show a placeholder, because small models copy placeholders literally.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from sica_agent.tools.base import ToolContext, ToolError

SKIPPED_DIRECTORIES = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".venv",
        "venv",
        "node_modules",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".eggs",
        ".idea",
        ".vscode",
        ".cache",
    }
)
"""Directories that hold tooling state rather than the project's code: tree, search and path suggestions skip
them (and `*.egg-info`), so listings stay short and on topic."""

MAX_ENTRIES_SCANNED = 20_000
"""How many directory entries a search for a file by name looks at before giving up (keeps it quick)."""


def is_skipped_directory(name: str) -> bool:
    """True for a directory name listed in SKIPPED_DIRECTORIES or ending in `.egg-info`."""
    return name in SKIPPED_DIRECTORIES or name.endswith(".egg-info")


def workdir_root(context: ToolContext) -> Path:
    """The working directory with symbolic links resolved: what every resolved path is compared with."""
    return context.workdir.resolve()


def resolve_path(context: ToolContext, path: str) -> Path:
    """The real location of a tool's `path` argument, refused with a ToolError unless it is inside the workdir.

    An empty path or `.` is the working directory itself. The result has symbolic links resolved, so a link
    inside the working directory that points outside it is refused, whether its target exists or not.
    """
    root = workdir_root(context)
    text = path.strip()
    given = Path(text or ".")
    if given.is_absolute():
        relative = _relative_to_workdir(Path(os.path.normpath(given)), context)
        if relative is None:
            raise ToolError(
                f"path '{text}' is outside the working directory {root}; "
                f"give a path relative to the working directory{_suggestion(root, given.parts[1:])}"
            )
    else:
        relative = Path(os.path.normpath(given))
        if relative.parts[:1] == ("..",):
            raise ToolError(
                f"path '{text}' leaves the working directory; paths are relative to the working "
                f"directory and must stay inside it{_suggestion(root, relative.parts)}"
            )
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root):
        raise ToolError(
            f"path '{text}' goes through a symbolic link that points outside the working directory; "
            "tools only read and write inside the working directory"
        )
    return resolved


def display_path(context: ToolContext, path: Path) -> str:
    """A resolved path as the model should write it: relative to the working directory, `.` for the root."""
    return path.relative_to(workdir_root(context)).as_posix() or "."


def files_named(context: ToolContext, name: str, limit: int = 5) -> list[str]:
    """Up to `limit` workdir-relative paths of files called `name`, to suggest when a path does not exist."""
    found = []
    root = workdir_root(context)
    for path in _walk_files(root):
        if path.name == name:
            found.append(path.relative_to(root).as_posix())
            if len(found) == limit:
                break
    return found


def _walk_files(root: Path) -> Iterator[Path]:
    """Files under `root`, skipping tooling directories and symbolic links, at most MAX_ENTRIES_SCANNED."""
    scanned = 0
    for directory, subdirectories, filenames in os.walk(root):
        subdirectories[:] = sorted(name for name in subdirectories if not is_skipped_directory(name))
        for filename in sorted(filenames):
            scanned += 1
            if scanned > MAX_ENTRIES_SCANNED:
                return
            yield Path(directory, filename)


def _relative_to_workdir(path: Path, context: ToolContext) -> Path | None:
    """`path` relative to the working directory as given or as resolved, or None when it is in neither."""
    for root in (Path(os.path.abspath(context.workdir)), workdir_root(context)):
        if path.is_relative_to(root):
            return path.relative_to(root)
    return None


def _suggestion(root: Path, parts: tuple[str, ...]) -> str:
    """`; did you mean 'src/app.py'?` when the end of a refused path names something in the working directory."""
    kept = [part for part in parts if part not in ("..", ".", "/")]
    for start in range(len(kept)):
        candidate = Path(*kept[start:])
        if (root / candidate).exists() and (root / candidate).resolve().is_relative_to(root):
            return f"; did you mean '{candidate.as_posix()}'?"
    return ""
