"""Agent versions for tests that need a version but not what it does (tests/support/hostile.py has versions
that attack the harness)."""

from __future__ import annotations

from pathlib import Path

from sica.config import Settings, load_settings
from tests.support.config import ENVS, toml_table


def minimal_agent(tmp_path: Path) -> tuple[Path, Settings]:
    """An agent version with an empty package, and settings whose environments are the shared ones."""
    agent = tmp_path / "agent"
    (agent / "sica_agent").mkdir(parents=True)
    (agent / "pyproject.toml").write_text('[project]\nname = "a"\nversion = "0"\ndependencies = []\n')
    (agent / "sica_agent" / "__init__.py").write_text("")
    (tmp_path / "sica.toml").write_text(toml_table("solve", {"envs_dir": ENVS}))
    return agent, load_settings(tmp_path / "sica.toml", {})
