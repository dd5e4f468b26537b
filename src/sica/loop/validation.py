"""Validating a version the meta agent produced, before it enters the archive as valid: its environment
installs from its own pyproject (as the agent contract says), it imports, every module compiles (as the snapshot
that evaluations mount must: a syntax error in a module nothing imports passes the other checks), and its own
tests pass. The last three run sandboxed, on a copy of its code: the version is untrusted. (Solving a smoke
problem, the last check, needs the run's gateway: `loop/smoke.py`.)"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sica.benchmarks.base import output_tail
from sica.runner.environments import AgentVersionError, ensure_environment
from sica.sandbox import Limits, Sandbox, SandboxSpec
from sica.workspace.environments import compile_command
from sica.workspace.trees import copy_tree

#: The agent contract's entry point: `python -m sica_agent solve|improve …`.
ENTRY_POINT = Path("sica_agent") / "__main__.py"


@dataclass(frozen=True)
class Validation:
    """Whether a version may be evaluated, and if not, the one-line reason (which check failed, and how)."""

    valid: bool
    reason: str = ""
    env: Path | None = None


def validate_version(
    code: Path, envs_dir: Path, uv_bin: str, sandbox: Sandbox, *, tests_wall_s: float = 600.0
) -> Validation:
    """Run the checks in order; the first that fails decides."""
    if not (code / ENTRY_POINT).is_file():
        return Validation(False, f"its entry point {ENTRY_POINT} is missing")
    try:
        env = ensure_environment(code, envs_dir, uv_bin)
    except AgentVersionError as error:
        return Validation(False, f"its environment does not install: {error}")
    checks = (
        ("it does not import", ("python", "-c", "import sica_agent.__main__, sica_agent.run"), 60.0),
        ("it does not compile", tuple(compile_command(Path("python"), Path("."))), 60.0),
        ("its own tests fail", ("python", "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"), tests_wall_s),
    )
    with tempfile.TemporaryDirectory(prefix="sica-validate-") as scratch:
        Path(scratch).chmod(0o755)
        for failure, command, wall_s in checks:
            copy = Path(scratch) / failure.replace(" ", "-")
            copy_tree(code, copy)
            spec = SandboxSpec(command=(), workdir=copy, readonly=(env,), limits=Limits(wall_s=wall_s))
            inside = sandbox.inside(spec).workdir
            spec = dataclasses.replace(
                spec,
                command=(str(env / "bin" / command[0]), *command[1:]),
                environment={
                    "PATH": f"{env / 'bin'}:/usr/bin:/bin",
                    "PYTHONPATH": str(inside),
                    "PYTHONDONTWRITEBYTECODE": "1",
                },
            )
            result = sandbox.run(spec)
            if not result.ok:
                said = output_tail(result.stdout + result.stderr)
                return Validation(False, f"{failure} ({result.describe()}): {said}")
    return Validation(True, env=env)


def one_line(text: str, limit: int = 300) -> str:
    """`text` on one line, at most `limit` characters: how an error becomes a reason."""
    return " ".join(text.split())[:limit]
