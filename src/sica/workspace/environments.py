"""Environment builds: a virtual environment of Debian's Python with a list of requirements, installed by uv
outside any sandbox (the only place that may reach the package registry), wheels only, without building or
running anything of what it installs, cached by the hash of the interpreter and the requirements, precompiled,
and later mounted read-only. Agent versions' environments (`sica.runner.environments`) and problem environments
(`sica.benchmarks.environments`) are both built here, by `build_environment`.

The installer runs as root on the host with what a version or a benchmark asked for, so nothing of it may reach
uv but names: each requirement must be a PEP 508 requirement by name from the registry (never a path, URL,
editable or option, which would run a build backend on the host or read a host file), and uv runs with an
allow-listed environment (no provider key), in a fresh empty folder, without configuration files, building
nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

#: Debian's interpreter: reachable by the sandbox's unprivileged user (pyenv's lives under root's home).
SYSTEM_PYTHON = Path("/usr/bin/python3")
#: The marker of a finished environment; its mtime is the environment's last use.
COMPLETE = ".complete"
#: The harness's environment variables uv may see: where it finds programs and its cache, and the user's own
#: index, proxy and certificate settings. Never a provider key, nor anything else of the harness's environment.
UV_ENVIRONMENT = (
    "PATH",
    "HOME",
    "TMPDIR",
    "XDG_CACHE_HOME",
    "UV_CACHE_DIR",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_NATIVE_TLS",
    "UV_OFFLINE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)
#: Last parts of a name that uv takes for a file in its working folder (a wheel, an archive), not a project.
FILE_SUFFIXES = frozenset(
    {"whl", "zip", "tar", "gz", "tgz", "bz2", "tbz", "xz", "txz", "zst", "lz", "lzma", "tlz", "egg"}
)


class EnvironmentBuildError(Exception):
    """An environment whose requirements could not be installed; one line (what was asked, and uv's words)."""


def registry_requirements(entries: list[str], label: str) -> list[str]:
    """`entries` as PEP 508 requirements by name from the registry, normalized (uv is given the text that was
    parsed, nothing else) and sorted. A path, URL, editable, option or file name is refused in one line that names
    the entry by `label` and index, never by its text (which may name or carry anything)."""
    checked = []
    for index, entry in enumerate(entries):
        where = f"{label}[{index}]"
        try:
            requirement = Requirement(entry)
        except InvalidRequirement:
            raise EnvironmentBuildError(
                f"{where} is not a requirement by name from the registry (a path, URL, editable or option is refused)"
            ) from None
        if requirement.url is not None:
            raise EnvironmentBuildError(
                f"{where} names a URL; only requirements by name from the registry are installed"
            )
        name_parts = requirement.name.lower().split(".")
        if len(name_parts) > 1 and name_parts[-1] in FILE_SUFFIXES:
            raise EnvironmentBuildError(
                f"{where} names a file; only requirements by name from the registry are installed"
            )
        checked.append(str(requirement))
    return sorted(checked)


def uv_environment() -> dict[str, str]:
    """The harness's environment as far as UV_ENVIRONMENT allows, and never a variable that names a key, token
    or secret."""
    return {
        name: value
        for name in UV_ENVIRONMENT
        if (value := os.environ.get(name)) is not None
        and not name.upper().endswith(("_KEY", "_TOKEN"))
        and "SECRET" not in name.upper()
    }


def agent_python() -> Path:
    return SYSTEM_PYTHON if SYSTEM_PYTHON.exists() else Path(sys.executable)


def interpreter_version(python: Path) -> str:
    """`sys.version` of the interpreter environments are made from: part of every environment's key."""
    return subprocess.run(
        [str(python), "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True
    ).stdout.strip()


def environment_key(requirements: list[str], version: str) -> str:
    """The name of the environment folder for `requirements` on the interpreter of `version`."""
    return hashlib.sha256("\n".join([version, *sorted(requirements)]).encode()).hexdigest()[:16]


def build_environment(requirements: list[str], envs_dir: Path, uv_bin: str) -> Path:
    """A virtual environment of Debian's Python with `requirements` (wheels only, precompiled), cached under
    `envs_dir` by the hash of the interpreter's version and the requirements: built in a partial folder, marked
    `.complete`, renamed into place atomically, readable by the sandbox user. The same one serves agents and
    problems alike. Each use touches `.complete`, so `sica clean` knows when it was last used. Requirements
    follow `registry_requirements`; uv sees no configuration file, no variable outside UV_ENVIRONMENT, and a
    fresh empty working folder (where a name it would take for a file finds nothing), and builds nothing."""
    requirements = registry_requirements(requirements, "requirements")
    python = agent_python()
    key = environment_key(requirements, interpreter_version(python))
    env = envs_dir / key
    if (env / COMPLETE).exists():
        _mark_used(env)
        return env
    envs_dir.mkdir(parents=True, exist_ok=True)
    building = envs_dir.absolute() / f".{key}.{os.getpid()}.partial"
    uv = str(Path(uv_bin).absolute()) if os.sep in uv_bin else uv_bin
    shutil.rmtree(building, ignore_errors=True)
    try:
        _run(
            [uv, "venv", "--quiet", "--no-config", "--relocatable", "--python", str(python), str(building)],
            requirements,
        )
        if requirements:
            _run(
                [
                    uv,
                    "pip",
                    "install",
                    "--quiet",
                    "--no-config",
                    "--python",
                    str(building / "bin" / "python"),
                    "--no-build",
                    "--",
                    *requirements,
                ],
                requirements,
            )
        _run(compile_command(building / "bin" / "python", building / "lib"), requirements)
        (building / COMPLETE).write_text("\n".join(requirements) + "\n")
        building.chmod(0o755)
        try:
            building.rename(env)
        except OSError:  # another process finished the same environment first
            shutil.rmtree(building, ignore_errors=True)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return env


def _mark_used(env: Path) -> None:
    """Set the time of last use (`.complete`'s mtime); an environment folder this user cannot write is left be."""
    try:
        os.utime(env / COMPLETE)
    except OSError:
        pass


def compile_command(python: Path, folder: Path) -> list[str]:
    """Byte-compile `folder` with `python`, isolated and without site processing (`-I -S`): no `.pth` file of an
    installed wheel runs here, outside the sandbox. Links that point outside `folder` are left alone (`-e`): an
    agent version's `x.py` linked to a file of the host would otherwise be read by root and its bytecode put in
    the snapshot the sandbox mounts."""
    return [str(python), "-I", "-S", "-m", "compileall", "-q", "-e", str(folder), str(folder)]


def _run(command: list[str], requirements: list[str]) -> None:
    """Run one step of a build with `uv_environment()` in a fresh empty folder: no file of the harness's working
    folder nor of a version is found there."""
    with tempfile.TemporaryDirectory(prefix="sica-uv-") as empty:
        done = subprocess.run(command, capture_output=True, text=True, cwd=empty, env=uv_environment())
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout).split())[-400:]
        raise EnvironmentBuildError(f"installing {', '.join(requirements) or 'an empty environment'} failed: {detail}")
