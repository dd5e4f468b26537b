"""tree: an indented listing to a depth, skipping tooling directories, with counts and caps."""

from pathlib import Path

import pytest

from sica_agent.tools import ALL_TOOLS, run_tool
from sica_agent.tools.base import ToolContext
from sica_agent.tools.tree import MAX_ENTRIES_PER_DIRECTORY, MAX_TREE_LINES


@pytest.fixture
def context(tmp_path: Path) -> ToolContext:
    for name in ["README.md", "src/app.py", "src/pkg/core.py", "src/pkg/deep/a.py", "src/pkg/deep/b.py",
                 ".git/HEAD", "src/__pycache__/app.cpython-311.pyc", ".venv/bin/python", "node_modules/x/i.js",
                 "sica.egg-info/PKG-INFO", ".github/ci.yml"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    return ToolContext(tmp_path)


def call(context: ToolContext, name: str, **arguments):
    return run_tool(ALL_TOOLS[name], arguments, context)


def test_tree_lists_folders_first_and_skips_tooling_directories(context):
    assert call(context, "tree").output.splitlines() == [
        "./",
        "  .github/",
        "    ci.yml",
        "  src/",
        "    pkg/",
        "      deep/ (2 files)",
        "      core.py",
        "    app.py",
        "  README.md",
    ]


def test_tree_of_a_subdirectory_to_a_smaller_depth(context):
    assert call(context, "tree", path="src", depth=1).output.splitlines() == [
        "src/", "  pkg/ (3 files)", "  app.py"]


def test_tree_shows_symlinks_without_following_them(context, tmp_path):
    (context.workdir / "src" / "link").symlink_to("/usr")
    assert "    link -> /usr" in call(context, "tree").output.splitlines()


def test_tree_caps_entries_per_directory(context):
    for number in range(MAX_ENTRIES_PER_DIRECTORY + 5):
        (context.workdir / "src" / "pkg" / "deep" / f"f{number:03d}.py").write_text("")
    output = call(context, "tree", path="src/pkg/deep").output
    assert output.splitlines()[-1] == "  [... 7 more entries]"


def test_tree_caps_lines_and_names_a_real_subdirectory(context):
    for folder in range(10):
        for number in range(40):
            path = context.workdir / "data" / f"d{folder}" / f"f{number:02d}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
    output = call(context, "tree").output
    assert len(output.splitlines()) == MAX_TREE_LINES + 1
    assert output.splitlines()[-1].startswith(f"[tree cut at {MAX_TREE_LINES} lines")
    assert "path='.github'" in output


def test_tree_refusals(context):
    result = call(context, "tree", path="README.md")
    assert not result.ok and "use view" in result.output
    result = call(context, "tree", path="nowhere")
    assert not result.ok and "does not exist" in result.output
    result = call(context, "tree", depth=0)
    assert not result.ok and "between 1 and 10" in result.output


def test_tree_of_an_empty_directory(context):
    (context.workdir / "empty").mkdir()
    assert call(context, "tree", path="empty").output == "empty/\n  (empty)"
