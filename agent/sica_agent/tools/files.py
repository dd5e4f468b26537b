"""Reading and editing files: view, replace, insert, create, and undo of the last edit.

Every edit returns a unified diff of what it changed, so the model sees the result without viewing the file
again, and records the file's previous content in `context.edit_history` so that `undo` can restore it.
Files are read and written as bytes and decoded as UTF-8, so line endings and encoding stay as they were.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from sica_agent.tools.base import ToolContext, ToolError, ToolResult, ToolSpec
from sica_agent.tools.paths import display_path, files_named, resolve_path

MAX_VIEW_LINES = 300
"""Lines one view shows at most; the rest is a `start=` call away."""

MAX_VIEW_CHARS = 15_000
"""Characters one view shows at most, so a file of very long lines still fits the model's context."""

MAX_LINE_CHARS = 1_000
"""A longer line (minified code, data) is cut in view with a note of how much is missing."""

MAX_DIFF_LINES = 200
"""Lines of a diff shown after an edit; a longer diff is cut with a note."""

MAX_LINES_FOR_CLOSEST_MATCH = 5_000
"""Looking for the lines closest to a missing `old` text is skipped in larger files (it would be slow)."""

BINARY_SNIFF_BYTES = 8_192
"""A file with a NUL byte in its first this many bytes is treated as binary."""

LINE_END_CHARS = "\r\n"
"""Characters stripped from the end of a line before it is shown."""

_VIEW_LINE_NUMBER = re.compile(r"^\s*\d+\t")


def _file_parameters(
    others: dict[str, Any], *, path: str = "The file to edit, relative to the working directory.", required: bool = True
) -> dict[str, Any]:
    """The JSON schema of a tool on one file: `path` (described as given), then the tool's `others`, required
    too unless `required` is false; no other parameter is accepted."""
    return {
        "type": "object",
        "properties": {"path": {"type": "string", "description": path}, **others},
        "required": ["path", *others] if required else ["path"],
        "additionalProperties": False,
    }


class ViewTool:
    """Show a text file with line numbers, whole or a range of lines."""

    spec = ToolSpec(
        name="view",
        description="Show a text file with line numbers, whole or from line start to line end. "
        "Use it to read code before you change it.",
        parameters=_file_parameters(
            {
                "start": {"type": "integer", "description": "First line to show (1-based). Default: 1."},
                "end": {"type": "integer", "description": "Last line to show (inclusive). Default: the end."},
            },
            path="The file, relative to the working directory, e.g. README.md.",
            required=False,
        ),
    )

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        path = resolve_path(context, arguments["path"])
        name = display_path(context, path)
        lines = _split_lines(_read_text(context, path, strict=False))
        if not lines:
            return ToolResult(f"{name} is empty.")
        start = arguments.get("start", 1)
        end = min(arguments.get("end", len(lines)), len(lines))
        if not 1 <= start <= len(lines):
            raise ToolError(
                f"start={start} is not a line of '{name}': it has {len(lines)} lines, "
                f"so start must be between 1 and {len(lines)}"
            )
        if end < start:
            raise ToolError(f"end={end} is before start={start}; end must be at least start")
        shown: list[str] = []
        size = 0
        for number in range(start, end + 1):
            row = f"{number:6d}\t{_cut_line(lines[number - 1].rstrip(LINE_END_CHARS))}"
            if len(shown) == MAX_VIEW_LINES or (shown and size + len(row) > MAX_VIEW_CHARS):
                break
            shown.append(row)
            size += len(row) + 1
        last = start + len(shown) - 1
        header = f"{name}, lines {start}-{last} of {len(lines)}:"
        if last < end:
            shown.append(f"[{end - last} more lines not shown; to see them, call view with start={last + 1}]")
        return ToolResult("\n".join([header, *shown]))


class _TextEdit:
    """A tool that edits a text file in place: `edited` makes the file's new text from its text (strictly UTF-8)
    and the call's arguments; `run` writes it, recorded for undo, and answers with the diff."""

    spec: ToolSpec

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        path = resolve_path(context, arguments["path"])
        text = _read_text(context, path, strict=True)
        edited = self.edited(display_path(context, path), text, arguments)
        return ToolResult(_write_recorded(context, path, edited.encode()))

    def edited(self, name: str, text: str, arguments: dict[str, Any]) -> str:
        """The new text of the file shown as `name`, or a `ToolError` saying why the edit cannot be made."""
        raise NotImplementedError


class ReplaceTool(_TextEdit):
    """Replace one exact occurrence of a text in a file."""

    spec = ToolSpec(
        name="replace",
        description="Replace the text old with the text new in a file. old must match exactly one place in "
        "the file, character for character (copy it from view, without the line numbers).",
        parameters=_file_parameters(
            {
                "old": {"type": "string", "description": "The exact text to replace, including indentation."},
                "new": {"type": "string", "description": "The text to put in its place."},
            },
        ),
    )

    def edited(self, name: str, text: str, arguments: dict[str, Any]) -> str:
        old, new = _with_line_endings_of(text, arguments["old"], arguments["new"])
        if not old:
            raise ToolError("old is empty; to add lines use insert, to write a whole file use create")
        count = text.count(old)
        if count == 0:
            raise ToolError(_missing_match_message(name, text, old))
        if count > 1:
            lines = ", ".join(str(number) for number in _match_line_numbers(text, old))
            raise ToolError(
                f"old occurs {count} times in '{name}' (starting at lines {lines}); include more of the "
                "surrounding lines in old so that it matches exactly one place"
            )
        return text.replace(old, new)


class InsertTool(_TextEdit):
    """Insert lines into a file after a given line."""

    spec = ToolSpec(
        name="insert",
        description="Insert text into an existing file after line number line (0 inserts at the top). "
        "Use it to add new lines without changing the existing ones.",
        parameters=_file_parameters(
            {
                "line": {"type": "integer", "description": "Insert after this line; 0 means at the top."},
                "text": {"type": "string", "description": "The lines to insert."},
            },
        ),
    )

    def edited(self, name: str, text: str, arguments: dict[str, Any]) -> str:
        lines = _split_lines(text)
        after = arguments["line"]
        if not 0 <= after <= len(lines):
            raise ToolError(
                f"line={after} is not a line of '{name}': it has {len(lines)} lines, so line must be "
                f"between 0 (insert at the top) and {len(lines)} (insert at the end)"
            )
        newline = "\r\n" if "\r\n" in text else "\n"
        inserted = arguments["text"].replace("\r\n", "\n").replace("\n", newline)
        if not inserted.endswith(newline):
            inserted += newline
        if after == len(lines) and lines and not lines[-1].endswith("\n"):
            lines[-1] += newline
        lines.insert(after, inserted)
        return "".join(lines)


class CreateTool:
    """Create a file, or replace a file's whole content."""

    spec = ToolSpec(
        name="create",
        description="Create a file with the given content, or overwrite an existing file with it; missing "
        "folders are created. Use replace or insert for small changes to an existing file.",
        parameters=_file_parameters(
            {"content": {"type": "string", "description": "The complete content of the file."}},
            path="The file to write, relative to the working directory.",
        ),
    )

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        path = resolve_path(context, arguments["path"])
        name = display_path(context, path)
        if path.is_dir():
            raise ToolError(f"'{name}' is a directory; give the path of a file inside it")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ToolError(f"cannot create '{name}': a part of its folder path is an existing file") from None
        return ToolResult(_write_recorded(context, path, arguments["content"].encode()))


class UndoTool:
    """Restore a file to what it was before its last edit."""

    spec = ToolSpec(
        name="undo",
        description="Undo the last edit (replace, insert or create) of a file, restoring its previous content; "
        "a file that the edit created is deleted. Call it again to undo earlier edits.",
        parameters=_file_parameters({}, path="The edited file, relative to the working directory."),
    )

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        path = resolve_path(context, arguments["path"])
        name = display_path(context, path)
        history = context.edit_history.get(name)
        if not history:
            raise ToolError(f"nothing to undo for '{name}': it has no edit by replace, insert or create left to undo")
        previous = history.pop()
        current = path.read_bytes() if path.is_file() else None
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(previous)
        return ToolResult(_diff(name, current, previous) or f"{name} was restored; its content did not change.")


def _read_text(context: ToolContext, path: Path, strict: bool) -> str:
    """A file's text. Refuses directories, missing files (suggesting files of that name) and binary files;
    with `strict`, also text that is not valid UTF-8 (editing it would damage it)."""
    name = display_path(context, path)
    if path.is_dir():
        raise ToolError(f"'{name}' is a directory; use the tree tool to list it, then view a file in it")
    if not path.exists():
        matches = files_named(context, path.name)
        hint = f" Files with that name: {', '.join(matches)}" if matches else " Use tree or search to find files."
        raise ToolError(f"'{name}' does not exist.{hint}")
    data = path.read_bytes()
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        raise ToolError(f"'{name}' is a binary file; only text files can be viewed and edited")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if strict:
            raise ToolError(f"'{name}' is not UTF-8 text, so it cannot be edited safely with this tool") from None
        return data.decode("utf-8", errors="replace")


def _split_lines(text: str) -> list[str]:
    """The lines of `text` with their endings; only `\\n` ends a line, as for grep, editors and `wc -l`."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def _cut_line(line: str) -> str:
    if len(line) <= MAX_LINE_CHARS:
        return line
    return f"{line[:MAX_LINE_CHARS]}[... {len(line) - MAX_LINE_CHARS} more characters on this line]"


def _with_line_endings_of(text: str, old: str, new: str) -> tuple[str, str]:
    """`old` and `new` with `\\r\\n` line endings when the file uses them and `old` only matches that way
    (view shows lines without their endings, so the model writes `\\n`)."""
    if "\r\n" in text and "\r\n" not in old and old not in text:
        return old.replace("\n", "\r\n"), new.replace("\r\n", "\n").replace("\n", "\r\n")
    return old, new


def _match_line_numbers(text: str, old: str) -> list[int]:
    """The distinct line numbers where occurrences of `old` in `text` start (counted as `str.count` does)."""
    numbers: list[int] = []
    index = text.find(old)
    while index != -1:
        number = text.count("\n", 0, index) + 1
        if number not in numbers:
            numbers.append(number)
        index = text.find(old, index + len(old))
    return numbers


def _missing_match_message(name: str, text: str, old: str) -> str:
    """Why `old` was not found, with the file's closest lines to the first line of `old` when cheap."""
    message = [
        f"old was not found in '{name}'. It must match the file exactly, including indentation, spaces and blank lines."
    ]
    old_lines = [line for line in old.split("\n") if line.strip()]
    if old_lines and all(_VIEW_LINE_NUMBER.match(line) for line in old_lines):
        message.append("Do not include the line numbers that view shows: copy only the text after them.")
    closest = _closest_lines(_split_lines(text), old_lines[0].strip() if old_lines else "")
    if closest:
        message.append("The closest lines in the file are:")
        message += [f"{number:6d}\t{line}" for number, line in closest]
    message.append(f"View {name} to copy the exact text.")
    return "\n".join(message)


def _closest_lines(lines: list[str], wanted: str, limit: int = 3, cutoff: float = 0.6) -> list[tuple[int, str]]:
    """Up to `limit` (line number, line) pairs most similar to `wanted`, ignoring surrounding whitespace."""
    if not wanted or len(lines) > MAX_LINES_FOR_CLOSEST_MATCH:
        return []
    matcher = difflib.SequenceMatcher(b=wanted)
    scored = []
    for index, line in enumerate(lines):
        matcher.set_seq1(line.strip())
        if matcher.real_quick_ratio() >= cutoff and matcher.quick_ratio() >= cutoff and matcher.ratio() >= cutoff:
            scored.append((-matcher.ratio(), index))
    return [(index + 1, _cut_line(lines[index].rstrip(LINE_END_CHARS))) for _, index in sorted(scored)[:limit]]


def _write_recorded(context: ToolContext, path: Path, content: bytes) -> str:
    """Write `content` to `path`, push the previous content on the file's edit history, return the diff."""
    name = display_path(context, path)
    previous = path.read_bytes() if path.exists() else None
    if previous == content:
        return f"{name} already has this content; nothing changed."
    path.write_bytes(content)
    context.edit_history.setdefault(name, []).append(previous)
    if previous is None:
        return _diff(name, previous, content) or f"created {name} (empty)."
    return _diff(name, previous, content) or f"{name}: only line endings changed."


def _diff(name: str, before: bytes | None, after: bytes | None) -> str:
    """A unified diff from `before` to `after` (None: the file does not exist), cut at MAX_DIFF_LINES."""

    def lines_of(content: bytes | None) -> list[str]:
        return [] if content is None else content.decode("utf-8", errors="replace").splitlines()

    diff = list(
        difflib.unified_diff(
            lines_of(before),
            lines_of(after),
            "/dev/null" if before is None else f"a/{name}",
            "/dev/null" if after is None else f"b/{name}",
            lineterm="",
        )
    )
    if len(diff) > MAX_DIFF_LINES:
        diff = diff[:MAX_DIFF_LINES] + [f"[diff cut: {len(diff) - MAX_DIFF_LINES} more lines]"]
    return "\n".join(diff)
