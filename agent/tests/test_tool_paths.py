"""Paths stay inside the working directory: `..`, absolute paths and symbolic links cannot leave it."""

import re
from pathlib import Path

import pytest

from sica_agent.tools import ALL_TOOLS, run_tool
from sica_agent.tools.base import ToolContext, ToolError
from sica_agent.tools.paths import display_path, resolve_path

PLACEHOLDER = re.compile(r"<[^>]*>|\{[^}]*\}|\bYOUR_|path/to", re.IGNORECASE)


@pytest.fixture
def context(tmp_path: Path) -> ToolContext:
    workdir = tmp_path / "work"
    (workdir / "src").mkdir(parents=True)
    (workdir / "src" / "app.py").write_text("print('hi')\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("secret\n")
    return ToolContext(workdir)


def call(context: ToolContext, name: str, **arguments):
    return run_tool(ALL_TOOLS[name], arguments, context)


def refusal(context: ToolContext, path: str) -> str:
    with pytest.raises(ToolError) as error:
        resolve_path(context, path)
    message = str(error.value)
    assert not PLACEHOLDER.search(message), message
    return message


def test_relative_and_absolute_paths_inside_resolve(context):
    root = context.workdir.resolve()
    assert resolve_path(context, "src/app.py") == root / "src" / "app.py"
    assert resolve_path(context, "./src/../src/app.py") == root / "src" / "app.py"
    assert resolve_path(context, str(root / "src" / "app.py")) == root / "src" / "app.py"
    assert resolve_path(context, "") == root
    assert display_path(context, resolve_path(context, ".")) == "."


def test_dotdot_escape_is_refused(context):
    assert "leaves the working directory" in refusal(context, "../outside/secret.txt")
    assert "leaves the working directory" in refusal(context, "src/../../outside")


def test_dotdot_escape_suggests_the_inside_path_when_it_exists(context):
    assert "did you mean 'src/app.py'" in refusal(context, "../../src/app.py")
    assert "did you mean" not in refusal(context, "../nothing_like_this.py")


def test_absolute_path_outside_is_refused_with_the_real_relative_path(context, tmp_path):
    message = refusal(context, str(tmp_path / "outside" / "secret.txt"))
    assert "outside the working directory" in message and "did you mean" not in message
    assert "did you mean 'src/app.py'" in refusal(context, "/repo/src/app.py")


def test_workdir_given_through_a_symlink_accepts_both_absolute_forms(context, tmp_path):
    alias = tmp_path / "alias"
    alias.symlink_to(context.workdir)
    aliased = ToolContext(alias)
    assert resolve_path(aliased, str(alias / "src" / "app.py")) == context.workdir.resolve() / "src" / "app.py"
    assert resolve_path(aliased, str(context.workdir / "src" / "app.py")).name == "app.py"


def test_symlinks_pointing_outside_are_refused_for_reading(context, tmp_path):
    (context.workdir / "linkdir").symlink_to(tmp_path / "outside")
    (context.workdir / "link.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    for path in ("linkdir/secret.txt", "link.txt", "linkdir"):
        assert "symbolic link" in refusal(context, path)
    for name, arguments in [("view", {"path": "link.txt"}), ("search", {"pattern": "secret", "path": "linkdir"}),
                            ("tree", {"path": "linkdir"})]:
        result = call(context, name, **arguments)
        assert not result.ok and "symbolic link" in result.output and "secret\n" not in result.output


def test_symlinks_pointing_outside_are_refused_for_writing(context, tmp_path):
    outside = tmp_path / "outside"
    (context.workdir / "linkdir").symlink_to(outside)
    (context.workdir / "link.txt").symlink_to(outside / "secret.txt")
    (context.workdir / "dangling.txt").symlink_to(outside / "new.txt")
    for name, arguments in [("create", {"path": "linkdir/new.txt", "content": "x"}),
                            ("create", {"path": "link.txt", "content": "x"}),
                            ("create", {"path": "dangling.txt", "content": "x"}),
                            ("replace", {"path": "link.txt", "old": "secret", "new": "public"}),
                            ("insert", {"path": "link.txt", "line": 0, "text": "x"})]:
        result = call(context, name, **arguments)
        assert not result.ok and "symbolic link" in result.output, (name, arguments)
    assert sorted(path.name for path in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret\n"


def test_symlinks_inside_the_workdir_are_followed(context):
    (context.workdir / "alias.py").symlink_to(context.workdir / "src" / "app.py")
    assert call(context, "view", path="alias.py").ok
