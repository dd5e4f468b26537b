"""Validating versions through the real sandbox: the seed is valid; a syntax error, a deleted entry point, a
failing own test, an uninstallable dependency, a module that does not compile or a pyproject.toml that is a link
each make a version invalid with a one-line reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import uv

from sica.config import default_envs_dir
from sica.loop.validation import validate_version
from sica.runner.environments import seed_agent_dir
from sica.workspace.trees import copy_tree

ENVS = default_envs_dir(os.geteuid())


def edited_seed(tmp_path: Path, edit) -> Path:
    code = tmp_path / "agent"
    copy_tree(seed_agent_dir(), code)
    edit(code)
    return code


def test_the_seed_is_valid(sandbox, tmp_path):
    validation = validate_version(seed_agent_dir(), ENVS, uv.find_uv_bin(), sandbox)
    assert validation.valid, validation.reason
    assert validation.env is not None and (validation.env / "bin" / "python").exists()


def _syntax_error(code: Path) -> None:
    (code / "sica_agent" / "agent.py").write_text("def broken(:\n")


def _no_entry_point(code: Path) -> None:
    (code / "sica_agent" / "__main__.py").unlink()


def _failing_test(code: Path) -> None:
    (code / "tests" / "test_zz_new.py").write_text("def test_new():\n    assert 1 + 1 == 3\n")


def _bad_dependency(code: Path) -> None:
    pyproject = code / "pyproject.toml"
    missing = 'dependencies = [\n    "sica-no-such-package==0.0.1",'
    pyproject.write_text(pyproject.read_text().replace("dependencies = [", missing))


def _unimported_syntax_error(code: Path) -> None:
    """It imports and its tests pass, but the snapshot every evaluation makes would not compile."""
    (code / "sica_agent" / "scratch.py").write_text("def helper(:\n    pass\n")


def _pyproject_linked_to_dev_zero(code: Path) -> None:
    """Root reads the pyproject on the host: never through a link (this one would never end)."""
    (code / "pyproject.toml").unlink()
    (code / "pyproject.toml").symlink_to("/dev/zero")


@pytest.mark.parametrize(("edit", "reason"), [(_syntax_error, "it does not import"),
                                              (_no_entry_point, "entry point sica_agent/__main__.py is missing"),
                                              (_failing_test, "its own tests fail"),
                                              (_bad_dependency, "its environment does not install"),
                                              (_unimported_syntax_error, "it does not compile"),
                                              (_pyproject_linked_to_dev_zero, "not a regular file")])
def test_broken_versions_are_invalid_with_a_reason(sandbox, tmp_path, edit, reason):
    validation = validate_version(edited_seed(tmp_path, edit), ENVS, uv.find_uv_bin(), sandbox)
    assert not validation.valid and reason in validation.reason
    assert "\n" not in validation.reason
