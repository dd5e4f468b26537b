"""Agent environments, as the contract says: each version declares its dependencies in its pyproject.toml, which
the harness reads as a file the version controls; the environment is built by `workspace.environments`
(registry names only, wheels only, cached by the hash of the declared dependencies) and later mounted read-only.
Agent 0 is found here too (`seed_agent_dir`)."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from sica.sandbox.untrusted import read_untrusted
from sica.workspace.environments import EnvironmentBuildError, build_environment, registry_requirements

#: The largest pyproject.toml of an agent version the harness reads.
MAX_PYPROJECT_BYTES = 1 << 20


class AgentVersionError(Exception):
    """An agent version that cannot be run (bad pyproject, uninstallable dependencies); one line."""


def seed_agent_dir() -> Path:
    """Agent 0: package data of an installed sica wheel, else the repository's `agent/` folder."""
    packaged = Path(str(resources.files("sica"))) / "seed_agent"
    if (packaged / "sica_agent").is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "agent"


def declared_dependencies(agent_dir: Path) -> list[str]:
    """The `[project] dependencies` of a version's pyproject.toml, read as a file the version controls (root reads
    it on the host): a regular file of at most MAX_PYPROJECT_BYTES, never through a link (to /dev/zero, a FIFO
    or a file of the host)."""
    pyproject = agent_dir / "pyproject.toml"
    data = read_untrusted(pyproject, MAX_PYPROJECT_BYTES + 1)
    if data is None:
        raise AgentVersionError(f"{pyproject}: missing, or not a regular file (a link is not followed)")
    if len(data) > MAX_PYPROJECT_BYTES:
        raise AgentVersionError(f"{pyproject}: larger than {MAX_PYPROJECT_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise AgentVersionError(f"{pyproject}: no readable [project] table ({error})") from None
    return parse_dependencies(text, str(pyproject))


def parse_dependencies(text: str, where: str) -> list[str]:
    """The `[project] dependencies` of a pyproject.toml's text (`where` names it in errors), sorted."""
    try:
        dependencies = tomllib.loads(text)["project"].get("dependencies", [])
    except (tomllib.TOMLDecodeError, KeyError, TypeError, AttributeError) as error:
        raise AgentVersionError(f"{where}: no readable [project] table ({error})") from None
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise AgentVersionError(f"{where}: [project] dependencies must be a list of strings")
    try:
        return registry_requirements(dependencies, "[project] dependencies")
    except EnvironmentBuildError as error:
        raise AgentVersionError(f"{where}: {error}") from None


def ensure_environment(agent_dir: Path, envs_dir: Path, uv_bin: str) -> Path:
    """The environment for this version's dependencies, built once and reused by every version that shares them."""
    dependencies = declared_dependencies(agent_dir)
    try:
        return build_environment(dependencies, envs_dir, uv_bin)
    except EnvironmentBuildError as error:
        raise AgentVersionError(f"building the agent environment failed: {error}") from None
