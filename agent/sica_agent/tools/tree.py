"""Listing a directory as an indented tree, so the model learns which files really exist."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sica_agent.tools.base import ToolContext, ToolError, ToolResult, ToolSpec
from sica_agent.tools.paths import display_path, is_skipped_directory, resolve_path

DEFAULT_DEPTH = 3
MAX_DEPTH = 10

MAX_TREE_LINES = 300
"""Lines of one tree at most; the note after them says how to see the rest."""

MAX_ENTRIES_PER_DIRECTORY = 60
"""Entries listed per directory; the rest are counted in one line."""

MAX_FILES_COUNTED = 1_000
"""Counting the files of a directory deeper than the depth stops here (`1000+ files`)."""

INDENT = "  "


class TreeTool:
    """Show the files and folders under a directory."""

    spec = ToolSpec(
        name="tree",
        description="Show the files and folders under a directory as an indented tree, to a given depth. "
        "Use it first to learn which files exist, instead of guessing paths.",
        parameters={
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "The directory, relative to the working directory. Default: the working directory.",
                },
                "depth": {"type": "integer", "description": "How many levels to show.", "default": DEFAULT_DEPTH},
            },
            "required": [],
            "additionalProperties": False,
        },
    )

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        directory = resolve_path(context, arguments.get("path", ""))
        name = display_path(context, directory)
        depth = arguments.get("depth", DEFAULT_DEPTH)
        if not 1 <= depth <= MAX_DEPTH:
            raise ToolError(f"depth={depth} is out of range; it must be between 1 and {MAX_DEPTH}")
        if not directory.exists():
            raise ToolError(f"'{name}' does not exist; call tree without a path to see the working directory")
        if not directory.is_dir():
            raise ToolError(f"'{name}' is a file, not a directory; use view to read it")
        lines = [f"{name}/"]
        complete = _list(directory, depth, 1, lines)
        if len(lines) == 1:
            lines.append(f"{INDENT}(empty)")
        if not complete:
            lines.append(_cut_note(directory, name))
        return ToolResult("\n".join(lines))


def _list(directory: Path, depth: int, level: int, lines: list[str]) -> bool:
    """Append the entries of `directory` at `level` of indentation; False when MAX_TREE_LINES was reached."""
    entries = _entries(directory)
    for index, entry in enumerate(entries):
        if len(lines) >= MAX_TREE_LINES:
            return False
        prefix = INDENT * level
        if index == MAX_ENTRIES_PER_DIRECTORY:
            lines.append(f"{prefix}[... {len(entries) - index} more entries]")
            return True
        if entry.is_symlink():
            lines.append(f"{prefix}{entry.name} -> {os.readlink(entry)}")
        elif not entry.is_dir():
            lines.append(f"{prefix}{entry.name}")
        elif level < depth:
            lines.append(f"{prefix}{entry.name}/")
            if not _list(Path(entry.path), depth, level + 1, lines):
                return False
        else:
            lines.append(f"{prefix}{entry.name}/ ({_count_files(Path(entry.path))})")
    return True


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    """The entries of a directory, folders first, then by name; tooling directories left out."""
    with os.scandir(directory) as scan:
        entries = [
            entry for entry in scan if not (entry.is_dir(follow_symlinks=False) and is_skipped_directory(entry.name))
        ]
    return sorted(entries, key=lambda entry: (not entry.is_dir(follow_symlinks=False), entry.name.lower()))


def _count_files(directory: Path) -> str:
    """`12 files`, `1 file`, `empty` or `1000+ files`, counting below `directory` without tooling dirs."""
    count = 0
    for _, subdirectories, filenames in os.walk(directory):
        subdirectories[:] = [name for name in subdirectories if not is_skipped_directory(name)]
        count += len(filenames)
        if count >= MAX_FILES_COUNTED:
            return f"{MAX_FILES_COUNTED}+ files"
    if count == 0:
        return "empty"
    return "1 file" if count == 1 else f"{count} files"


def _cut_note(directory: Path, name: str) -> str:
    """How to see what the line cap left out, naming a real subdirectory when there is one."""
    subdirectories = [entry.name for entry in _entries(directory) if entry.is_dir(follow_symlinks=False)]
    if subdirectories:
        example = subdirectories[0] if name == "." else f"{name}/{subdirectories[0]}"
        return (
            f"[tree cut at {MAX_TREE_LINES} lines; call tree on a subdirectory, such as path='{example}', "
            "or with a smaller depth]"
        )
    return f"[tree cut at {MAX_TREE_LINES} lines; call tree with a smaller depth]"
