"""Searching file contents with ripgrep (`rg`, from the `ripgrep` package installed beside the agent)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from sica_agent.tools.base import ToolContext, ToolError, ToolResult, ToolSpec
from sica_agent.tools.paths import SKIPPED_DIRECTORIES, display_path, resolve_path, workdir_root

MAX_MATCH_LINES = 100
"""Matching lines shown at most; the note after them says how many there were."""

MAX_LINE_COLUMNS = 300
"""Longer matching lines are shown as a preview of this many characters."""

SEARCH_TIMEOUT_S = 30
REGEX_CHARACTERS = frozenset(".^$*+?()[]{}|\\")


def find_ripgrep() -> str:
    """The `rg` executable: the one installed next to this Python (the agent's environment), else on PATH."""
    beside_python = Path(sys.executable).parent / "rg"
    if beside_python.is_file():
        return str(beside_python)
    on_path = shutil.which("rg")
    if on_path is None:
        raise ToolError(
            "the search tool is unavailable because ripgrep (rg) is not installed; "
            "use the run tool with grep -rn instead"
        )
    return on_path


class SearchTool:
    """Search the files of the working directory for a regular expression or a fixed text."""

    spec = ToolSpec(
        name="search",
        description="Search the contents of files for a pattern (a regular expression, or a plain text with "
        "fixed_strings) and show each matching line as file:line:text. Use it to find where a "
        "name is defined or used before you open a file.",
        parameters={
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "description": "What to look for, e.g. def parse_args"},
                "path": {
                    "type": "string",
                    "description": "A file or directory to search in, relative to the working directory. "
                    "Default: the whole working directory.",
                },
                "glob": {"type": "string", "description": "Only search files whose name matches, e.g. *.py"},
                "fixed_strings": {
                    "type": "boolean",
                    "description": "Treat pattern as plain text, not a regular expression.",
                    "default": False,
                },
                "case_insensitive": {
                    "type": "boolean",
                    "description": "Ignore upper and lower case.",
                    "default": False,
                },
            },
            "required": ["pattern"],
            "additionalProperties": False,
        },
    )

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        pattern = arguments["pattern"]
        if not pattern:
            raise ToolError("pattern is empty; give the text or regular expression to search for")
        target = resolve_path(context, arguments.get("path", ""))
        where = display_path(context, target)
        if not target.exists():
            raise ToolError(f"'{where}' does not exist; search a path you have seen in tree or view output")
        command = [
            find_ripgrep(),
            "--no-config",
            "--line-number",
            "--with-filename",
            "--no-heading",
            "--color=never",
            "--hidden",
            "--sort=path",
            f"--max-columns={MAX_LINE_COLUMNS}",
            "--max-columns-preview",
        ]
        # rg lets a later glob override an earlier one: the skipped directories come last so that a glob such
        # as *.py cannot bring back files inside them.
        if arguments.get("glob"):
            command.append(f"--glob={arguments['glob']}")
        command += [f"--glob=!{name}" for name in (*sorted(SKIPPED_DIRECTORIES), "*.egg-info")]
        if arguments.get("fixed_strings"):
            command.append("--fixed-strings")
        if arguments.get("case_insensitive"):
            command.append("--ignore-case")
        command += ["--regexp", pattern]
        if where != ".":
            command += ["--", where]
        try:
            found = subprocess.run(
                command,
                cwd=workdir_root(context),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=SEARCH_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise ToolError(
                f"the search took longer than {SEARCH_TIMEOUT_S} s; search a smaller path or give a glob"
            ) from None
        matches = found.stdout.decode("utf-8", errors="replace").splitlines()
        errors = found.stderr.decode("utf-8", errors="replace").strip()
        if found.returncode == 2 and not matches:
            raise ToolError("\n".join(filter(None, [f"search failed: {errors}", _literal_hint(arguments)])))
        if not matches:
            return ToolResult(
                " ".join(filter(None, [f"no matches for {pattern!r} in '{where}'.", _literal_hint(arguments)]))
            )
        return ToolResult(_cap(matches))


def _literal_hint(arguments: dict[str, Any]) -> str:
    """A hint to search literally, when the pattern has regex characters and was taken as a regex."""
    if arguments.get("fixed_strings") or not REGEX_CHARACTERS & set(arguments["pattern"]):
        return ""
    return "The pattern is a regular expression; to search for it as plain text, set fixed_strings to true."


def _cap(matches: list[str]) -> str:
    if len(matches) <= MAX_MATCH_LINES:
        return "\n".join(matches)
    note = (
        f"[{MAX_MATCH_LINES} of {len(matches)} matching lines shown; narrow the search with path, glob or a "
        "more specific pattern]"
    )
    return "\n".join([*matches[:MAX_MATCH_LINES], note])
