"""view, replace, insert, create and undo."""

from pathlib import Path

import pytest

from sica_agent.tools import ALL_TOOLS, run_tool
from sica_agent.tools.base import ToolContext
from sica_agent.tools.files import MAX_LINE_CHARS, MAX_VIEW_CHARS, MAX_VIEW_LINES

APP = "def f():\n    return 1\n\n\ndef g():\n    return 1\n"


@pytest.fixture
def context(tmp_path: Path) -> ToolContext:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(APP)
    return ToolContext(tmp_path)


def call(context: ToolContext, name: str, **arguments):
    return run_tool(ALL_TOOLS[name], arguments, context)


def read(context: ToolContext, path: str) -> str:
    return (context.workdir / path).read_text()


# view


def test_view_shows_the_whole_file_with_line_numbers(context):
    result = call(context, "view", path="src/app.py")
    assert result.ok
    assert result.output.splitlines()[0] == "src/app.py, lines 1-6 of 6:"
    assert "     2\t    return 1" in result.output


def test_view_shows_a_range_and_clamps_the_end(context):
    assert call(context, "view", path="src/app.py", start=5, end=6).output.splitlines()[1:] == [
        "     5\tdef g():", "     6\t    return 1"]
    assert "lines 5-6 of 6" in call(context, "view", path="src/app.py", start=5, end=99).output


def test_view_refuses_bad_ranges(context):
    result = call(context, "view", path="src/app.py", start=7)
    assert not result.ok and "between 1 and 6" in result.output
    result = call(context, "view", path="src/app.py", start=4, end=2)
    assert not result.ok and "end=2 is before start=4" in result.output


def test_view_truncates_long_files_and_says_how_to_see_the_rest(context):
    (context.workdir / "long.txt").write_text("".join(f"line {n}\n" for n in range(1, 1001)))
    output = call(context, "view", path="long.txt").output
    assert f"line {MAX_VIEW_LINES}" in output and f"line {MAX_VIEW_LINES + 1}\n" not in output
    assert output.endswith(f"call view with start={MAX_VIEW_LINES + 1}]")
    assert f"start={MAX_VIEW_LINES + 1}" in output and f"{1000 - MAX_VIEW_LINES} more lines" in output
    rest = call(context, "view", path="long.txt", start=MAX_VIEW_LINES + 1).output
    assert rest.splitlines()[1].endswith(f"line {MAX_VIEW_LINES + 1}")


def test_view_caps_characters_and_cuts_very_long_lines(context):
    (context.workdir / "wide.txt").write_text(("x" * 200 + "\n") * 200 + "y" * (MAX_LINE_CHARS + 50) + "\n")
    output = call(context, "view", path="wide.txt").output
    assert len(output) <= MAX_VIEW_CHARS + 200 and "more lines not shown" in output
    last = call(context, "view", path="wide.txt", start=201).output
    assert "[... 50 more characters on this line]" in last


def test_view_refuses_directories_binaries_and_missing_files(context):
    result = call(context, "view", path="src")
    assert not result.ok and "is a directory" in result.output and "tree" in result.output
    (context.workdir / "image.png").write_bytes(b"\x89PNG\0\0\x01")
    result = call(context, "view", path="image.png")
    assert not result.ok and "binary" in result.output
    result = call(context, "view", path="app.py")
    assert not result.ok and "does not exist" in result.output and "src/app.py" in result.output


def test_view_of_an_empty_file(context):
    (context.workdir / "empty.txt").write_text("")
    assert call(context, "view", path="empty.txt").output == "empty.txt is empty."


# replace


def test_replace_a_unique_match_returns_a_diff(context):
    result = call(context, "replace", path="src/app.py", old="def f():\n    return 1", new="def f():\n    return 2")
    assert result.ok
    assert "--- a/src/app.py\n+++ b/src/app.py" in result.output
    assert "-    return 1\n+    return 2" in result.output
    assert read(context, "src/app.py") == APP.replace("return 1", "return 2", 1)


def test_replace_missing_match_shows_the_closest_lines(context):
    result = call(context, "replace", path="src/app.py", old="  def  g():", new="x")
    assert not result.ok and "not found" in result.output
    assert "     5\tdef g():" in result.output
    assert read(context, "src/app.py") == APP


def test_replace_with_view_line_numbers_is_told_to_drop_them(context):
    result = call(context, "replace", path="src/app.py", old="     5\tdef g():", new="x")
    assert not result.ok and "line numbers" in result.output


def test_replace_non_unique_match_says_how_many_and_where(context):
    result = call(context, "replace", path="src/app.py", old="return 1", new="return 2")
    assert not result.ok
    assert "2 times" in result.output and "lines 2, 6" in result.output
    assert read(context, "src/app.py") == APP


def test_replace_refuses_an_empty_old(context):
    result = call(context, "replace", path="src/app.py", old="", new="x")
    assert not result.ok and "insert" in result.output


def test_replace_keeps_crlf_line_endings(context):
    (context.workdir / "dos.txt").write_bytes(b"a\r\nb\r\nc\r\n")
    assert call(context, "replace", path="dos.txt", old="a\nb", new="A\nB").ok
    assert (context.workdir / "dos.txt").read_bytes() == b"A\r\nB\r\nc\r\n"


def test_replace_refuses_text_that_is_not_utf8(context):
    (context.workdir / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    result = call(context, "replace", path="latin1.txt", old="caf", new="bar")
    assert not result.ok and "not UTF-8" in result.output
    assert call(context, "view", path="latin1.txt").ok


# insert


def test_insert_at_the_top_in_the_middle_and_at_the_end(context):
    assert call(context, "insert", path="src/app.py", line=0, text="import os").ok
    assert call(context, "insert", path="src/app.py", line=3, text="# middle\n").ok
    assert call(context, "insert", path="src/app.py", line=8, text="g()").ok
    assert read(context, "src/app.py").splitlines() == [
        "import os", "def f():", "    return 1", "# middle", "", "", "def g():", "    return 1", "g()"]


def test_insert_after_a_last_line_without_newline(context):
    (context.workdir / "n.txt").write_text("a")
    result = call(context, "insert", path="n.txt", line=1, text="b")
    assert result.ok and "+b" in result.output
    assert read(context, "n.txt") == "a\nb\n"


def test_insert_refuses_a_line_out_of_range_and_missing_files(context):
    result = call(context, "insert", path="src/app.py", line=7, text="x")
    assert not result.ok and "between 0" in result.output and "and 6" in result.output
    result = call(context, "insert", path="new.py", line=0, text="x")
    assert not result.ok and "does not exist" in result.output


# create


def test_create_makes_parent_folders_and_returns_a_diff(context):
    result = call(context, "create", path="pkg/sub/mod.py", content="x = 1\n")
    assert result.ok and "--- /dev/null\n+++ b/pkg/sub/mod.py" in result.output and "+x = 1" in result.output
    assert read(context, "pkg/sub/mod.py") == "x = 1\n"


def test_create_overwrites_and_shows_what_changed(context):
    result = call(context, "create", path="src/app.py", content="new\n")
    assert result.ok and "-def f():" in result.output and "+new" in result.output


def test_create_with_the_same_content_changes_nothing(context):
    result = call(context, "create", path="src/app.py", content=APP)
    assert result.ok and "nothing changed" in result.output
    assert context.edit_history == {}


def test_create_refuses_directories_and_paths_through_files(context):
    result = call(context, "create", path="src", content="x")
    assert not result.ok and "is a directory" in result.output
    result = call(context, "create", path="src/app.py/inner.py", content="x")
    assert not result.ok and "existing file" in result.output


# undo


def test_undo_of_a_create_deletes_the_file(context):
    call(context, "create", path="pkg/new.py", content="x = 1\n")
    result = call(context, "undo", path="pkg/new.py")
    assert result.ok and "+++ /dev/null" in result.output
    assert not (context.workdir / "pkg" / "new.py").exists()


def test_undo_restores_edits_one_at_a_time(context):
    call(context, "replace", path="src/app.py", old="def f", new="def first")
    call(context, "insert", path="./src/app.py", line=0, text="import os")
    assert call(context, "undo", path="src/app.py").ok
    assert read(context, "src/app.py") == APP.replace("def f", "def first")
    assert call(context, "undo", path=str(context.workdir / "src" / "app.py")).ok
    assert read(context, "src/app.py") == APP


def test_undo_with_nothing_to_undo_is_refused(context):
    result = call(context, "undo", path="src/app.py")
    assert not result.ok and "nothing to undo" in result.output
    call(context, "create", path="src/app.py", content="other\n")
    assert call(context, "undo", path="src/app.py").ok
    assert not call(context, "undo", path="src/app.py").ok
