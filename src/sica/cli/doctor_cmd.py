"""`sica doctor`: which sandbox backends work here (and why not), and the other prerequisites."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import typer
import uv

from sica.bundled_models import CATALOG
from sica.cli.state import state
from sica.local_model import installed
from sica.sandbox import BACKENDS, SandboxError, SandboxSpec, open_sandbox
from sica.sandbox.base import Limits

PROVIDER_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")


def _probe_backend(name: str) -> tuple[bool, str]:
    """Run `true` and a network check in the backend; (works, why or why not)."""
    try:
        sandbox = open_sandbox(name, allow_unsafe=True)
        with tempfile.TemporaryDirectory(prefix="sica-doctor-") as folder:
            Path(folder).chmod(0o755)
            result = sandbox.run(
                SandboxSpec(
                    command=("sh", "-c", "cat /proc/net/dev | tail -n +3 | wc -l"),
                    workdir=Path(folder),
                    limits=Limits(wall_s=20),
                )
            )
    except SandboxError as error:
        return False, str(error)
    if not result.ok:
        return False, f"a test command {result.describe()}: {' '.join(result.stderr.split())[-200:]}"
    interfaces = result.stdout.strip()
    if name == "none":
        return True, "runs, but confines nothing (needs --unsafe)"
    return True, f"works: no network but lo ({interfaces} interface), unprivileged uid"


def doctor(ctx: typer.Context) -> None:
    """Report which sandbox backends work on this machine and the other prerequisites."""
    cli = state(ctx)
    settings = cli.settings()
    rows: list[tuple[str, bool, str]] = []
    for name in BACKENDS:
        works, why = _probe_backend(name)
        rows.append((f"sandbox {name}", works, why))
    git = shutil.which("git")
    rows.append(("git", git is not None, git or "not found: apt-get install git"))
    rows.append(("uv", True, uv.find_uv_bin()))
    has_ray = importlib.util.find_spec("ray") is not None
    rows.append(
        (
            "ray",
            True,
            "installed (--runner ray)" if has_ray else "not installed: `uv sync --extra ray` for --runner ray",
        )
    )
    rg = subprocess.run(["sh", "-c", "command -v rg"], capture_output=True, text=True).stdout.strip()
    rows.append(("rg", True, rg or "not on PATH here; agent environments get it from the ripgrep wheel"))
    for spec in CATALOG.values():
        path = installed(spec, settings.local.cache_dir)
        rows.append(
            (
                f"local model {spec.short_name}",
                path is not None,
                str(path) if path else f"not installed: sica models install {spec.short_name}",
            )
        )
    for key in PROVIDER_KEYS:
        rows.append((key, True, "set" if os.environ.get(key) else "not set"))
    for name, works, why in rows:
        mark = "[green]ok[/]  " if works else "[red]no[/]  "
        cli.out.print(f"{mark}{name:22} {why}", highlight=False, soft_wrap=True)
