"""search: ripgrep over the working directory, relative paths, globs, literal and case-blind search, caps."""

import sys
from pathlib import Path

import pytest

from sica_agent.tools import ALL_TOOLS, run_tool
from sica_agent.tools.base import ToolContext, ToolError
from sica_agent.tools.search import MAX_MATCH_LINES, find_ripgrep


@pytest.fixture
def context(tmp_path: Path) -> ToolContext:
    workdir = tmp_path / "work"
    files = {
        "src/app.py": "def parse_args(argv):\n    return argv[1:]\n",
        "src/util.py": "from app import parse_args\nPARSE = 1\n",
        "README.md": "Call parse_args(argv) first.\n",
        ".github/ci.yml": "run: parse_args\n",
        ".venv/lib/site.py": "parse_args = None\n",
        "node_modules/x/index.js": "parse_args\n",
    }
    for name, text in files.items():
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_text(text)
    return ToolContext(workdir)


def call(context: ToolContext, name: str, **arguments):
    return run_tool(ALL_TOOLS[name], arguments, context)


def test_matches_are_file_line_text_relative_to_the_workdir(context):
    result = call(context, "search", pattern="parse_args")
    assert result.ok
    assert result.output.splitlines() == [
        ".github/ci.yml:1:run: parse_args",
        "README.md:1:Call parse_args(argv) first.",
        "src/app.py:1:def parse_args(argv):",
        "src/util.py:1:from app import parse_args",
    ]


def test_path_and_glob_narrow_the_search(context):
    assert call(context, "search", pattern="parse_args", path="src").output.splitlines() == [
        "src/app.py:1:def parse_args(argv):", "src/util.py:1:from app import parse_args"]
    assert call(context, "search", pattern="parse_args", path="src/app.py").output == \
        "src/app.py:1:def parse_args(argv):"
    assert call(context, "search", pattern="parse_args", glob="*.md").output == \
        "README.md:1:Call parse_args(argv) first."


def test_skipped_directories_stay_skipped_even_with_a_glob(context):
    assert ".venv" not in call(context, "search", pattern="parse_args", glob="*.py").output
    assert "node_modules" not in call(context, "search", pattern="parse_args", glob="*.js").output


def test_fixed_strings_and_case_insensitive(context):
    assert call(context, "search", pattern="(argv) first.", fixed_strings=True).output == \
        "README.md:1:Call parse_args(argv) first."
    assert call(context, "search", pattern="parse =", case_insensitive=True).output == "src/util.py:2:PARSE = 1"
    assert call(context, "search", pattern="parse =").output.startswith("no matches")


def test_no_matches_and_invalid_regex_hint_at_fixed_strings(context):
    result = call(context, "search", pattern="nothing_here")
    assert result.ok and result.output == "no matches for 'nothing_here' in '.'."
    result = call(context, "search", pattern="parse_args(")
    assert not result.ok and "regex parse error" in result.output and "fixed_strings" in result.output


def test_many_matches_are_capped_with_a_note(context):
    (context.workdir / "many.txt").write_text("hit\n" * (MAX_MATCH_LINES + 50))
    output = call(context, "search", pattern="hit").output
    assert len(output.splitlines()) == MAX_MATCH_LINES + 1
    assert f"{MAX_MATCH_LINES} of {MAX_MATCH_LINES + 50} matching lines shown" in output


def test_symlinked_directories_are_not_followed(context, tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "leak.py").write_text("parse_args\n")
    (context.workdir / "linked").symlink_to(tmp_path / "outside")
    assert "leak" not in call(context, "search", pattern="parse_args").output


def test_missing_path_and_empty_pattern_are_refused(context):
    result = call(context, "search", pattern="x", path="lib")
    assert not result.ok and "'lib' does not exist" in result.output
    assert not call(context, "search", pattern="").ok


def test_ripgrep_is_found_beside_python_or_reported_missing(tmp_path, monkeypatch):
    assert Path(find_ripgrep()).name == "rg"
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match="ripgrep"):
        find_ripgrep()
