"""The harness's layers (the import-linter contracts of pyproject.toml): kept by the tree as it is, and broken,
by name, when a lower layer imports an upper one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_imports(src: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the `sica` package under `src`, with the contracts of `config`."""
    paths = [str(src), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--config", str(config), "--no-cache", "--no-logo"],
        capture_output=True,
        text=True,
        env=env,
        cwd=src,
        timeout=120,
    )


def test_the_tree_keeps_its_layers():
    done = lint_imports(REPO / "src", REPO / "pyproject.toml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_archive_importing_the_runner_breaks_the_contracts_naming_the_import(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "sica", src / "sica", ignore=shutil.ignore_patterns("__pycache__"))
    run_module = src / "sica" / "archive" / "run.py"
    run_module.write_text(run_module.read_text() + "\nimport sica.runner  # noqa: E402\n")
    done = lint_imports(src, REPO / "pyproject.toml")
    assert done.returncode != 0
    assert "the harness's layers BROKEN" in done.stdout
    assert "benchmarks and the archive know no runner, loop, report or command line BROKEN" in done.stdout
    assert "sica.archive.run -> sica.runner" in done.stdout
