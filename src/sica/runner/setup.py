"""What every attempt of a run shares: the agent version, prepared once (its environment, a compiled read-only
snapshot of its code, the models it plays its roles with), and a gateway the sandboxes reach."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import uv

from sica.config import ROLES, ModelRoles, Settings
from sica.gateway import Listen, RunningGateway, run_gateway
from sica.runner.environments import AgentVersionError, ensure_environment
from sica.sandbox.mounts import check_reachable, readable_by_all
from sica.workspace.environments import compile_command
from sica.workspace.trees import copy_tree


@dataclass(frozen=True)
class AgentSetup:
    """The agent version every attempt of a run uses: its code (a snapshot the sandbox user can read), its built
    environment, and the models per role."""

    code: Path
    env: Path
    models: dict[str, dict[str, object]]

    @property
    def aliases(self) -> set[str]:
        """The model aliases the agent's roles use."""
        return model_aliases(self.models)


def model_aliases(models: dict[str, dict[str, object]]) -> set[str]:
    """The aliases in a role → model table (`models_for_agent`'s)."""
    return {str(entry["alias"]) for entry in models.values()}


def models_for_agent(roles: ModelRoles, model: str | None) -> dict[str, dict[str, object]]:
    """`SICA_AGENT_MODELS`: role → alias, wire format, tool mode and context window (`model`, when given, plays
    every role)."""
    table = {}
    for role in ROLES:
        alias_name = model or roles.alias_for(role)
        alias = roles.aliases[alias_name]
        table[role] = {
            "alias": alias_name,
            "wire": alias.wire_format,
            "tool_mode": alias.effective_tool_mode,
            "context_window": alias.context_window,
        }
    return table


def describe_models(roles: ModelRoles, model: str | None) -> str:
    """The models an agent's roles use, for people: `alias (provider model)`, prefixed by the roles when they
    differ."""
    described_roles: dict[str, list[str]] = {}
    for role, entry in models_for_agent(roles, model).items():
        alias = roles.aliases[str(entry["alias"])]
        described_roles.setdefault(f"{entry['alias']} ({alias.provider} {alias.model})", []).append(role)
    if len(described_roles) == 1:
        return next(iter(described_roles))
    return "; ".join(f"{', '.join(names)}: {described}" for described, names in described_roles.items())


@contextlib.asynccontextmanager
async def prepared_agent(
    roles: ModelRoles, envs_dir: Path, agent_dir: Path, model: str | None
) -> AsyncIterator[AgentSetup]:
    """Build (or reuse) the version's environment in `envs_dir`, and snapshot its code once for the run: copied
    where the sandbox user can read it and byte-compiled (compiling runs none of it), so that attempts neither
    copy nor compile it again. Its models play `roles` (`model`, when given, plays them all)."""
    env = await asyncio.to_thread(ensure_environment, agent_dir, envs_dir.expanduser(), uv.find_uv_bin())
    check_reachable(env)
    with tempfile.TemporaryDirectory(prefix="sica-agent-") as snapshot:
        Path(snapshot).chmod(0o755)
        code = Path(snapshot) / "code"
        await asyncio.to_thread(_snapshot, agent_dir, code, env)
        yield AgentSetup(code, env, models_for_agent(roles, model))


def _snapshot(agent_dir: Path, code: Path, env: Path) -> None:
    copy_tree(agent_dir, code)
    compiled = subprocess.run(compile_command(env / "bin" / "python", code), capture_output=True, text=True)
    if compiled.returncode != 0:
        detail = " ".join((compiled.stdout + compiled.stderr).split())[-300:]
        raise AgentVersionError(f"{agent_dir}: the agent's code does not compile: {detail}")
    readable_by_all(code)  # links skipped: chmod would follow one the version planted, to a file of the host


#: Starts a gateway for these model aliases, its ledger at the path given and its logs in the folder given:
#: `serve_gateway` with the configuration and environment bound, for a component that starts one only if needed.
GatewayStarter = Callable[[set[str], Path, Path], AbstractAsyncContextManager[RunningGateway]]


@contextlib.asynccontextmanager
async def serve_gateway(
    settings: Settings, environ: Mapping[str, str], aliases: set[str], ledger_path: Path, log_dir: Path
) -> AsyncIterator[RunningGateway]:
    """A gateway for these model aliases only, on a unix socket in a fresh folder the sandbox user can reach
    (each sandbox mounts that folder), and on TCP at `[runner] gateway_host` too when attempts run on a Ray
    cluster (its workers' sandboxes reach it through a relay; the keys stay here)."""
    used = settings.with_only(aliases)
    runner = settings.runner
    also_tcp = Listen(host=runner.gateway_host, port=runner.gateway_port) if runner.kind == "ray" else None
    with tempfile.TemporaryDirectory(prefix="sica-gateway-") as socket_dir:
        Path(socket_dir).chmod(0o755)
        listen = Listen(uds=Path(socket_dir) / "gateway.sock")
        async with run_gateway(used, environ, ledger_path, listen, log_dir=log_dir, also_tcp=also_tcp) as running:
            yield running
