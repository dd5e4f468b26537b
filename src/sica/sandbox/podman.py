"""The container backend: podman (or docker) with `--network none`, a read-only minimal root filesystem built
from the same allow-list as bwrap (`--rootfs`, no image registry needed), the same mounts, an unprivileged
user, no capabilities, and memory, process and rlimit limits. The container is killed and removed at the end.

Rlimits go through a containers.conf of the run (podman ignores `--ulimit` next to `--rootfs` in 4.3), and on
hosts with hybrid cgroups crun refuses to start containers, so `runc` is used when it is installed.

The container's environment (the agent's token among it) goes through `--env-file`, a 0600 file in the run's
private folder, never on podman's command line, which every user reads (`ps`, /proc/PID/cmdline).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

from sica.sandbox.base import GATEWAY_DIR, HOME, LOGDIR, WORKDIR, InsideView, SandboxError, SandboxResult, SandboxSpec
from sica.sandbox.bwrap import ETC_FILES, USR_MERGED_LINKS
from sica.sandbox.mounts import SANDBOX_UID, prepare_mounts
from sica.sandbox.process import run_and_reap

MOUNT_POINTS = (
    "usr",
    "etc",
    "tmp",
    "proc",
    "dev",
    "run/sica",
    str(HOME).lstrip("/"),
    str(WORKDIR).lstrip("/"),
    str(LOGDIR).lstrip("/"),
)


class PodmanSandbox:
    name = "podman"

    def __init__(self, engine: str | None = None) -> None:
        found = engine or shutil.which("podman")
        if found is None:
            raise SandboxError("podman is not installed: apt-get install podman runc")
        self.engine = found
        self.runtime = ["--runtime", "runc"] if shutil.which("runc") else []

    def inside(self, spec: SandboxSpec) -> InsideView:
        return InsideView(WORKDIR, LOGDIR if spec.logdir else None, GATEWAY_DIR if spec.gateway_dir else None)

    def run(self, spec: SandboxSpec, stop: threading.Event | None = None) -> SandboxResult:
        prepare_mounts(spec)
        name = f"sica-{uuid.uuid4().hex[:12]}"
        with tempfile.TemporaryDirectory(prefix="sica-rootfs-") as scratch:
            rootfs, conf = Path(scratch) / "rootfs", Path(scratch) / "containers.conf"
            _minimal_rootfs(rootfs)
            conf.write_text(_containers_conf(spec))
            env_file = _env_file(Path(scratch) / "environment", spec)
            command = [
                self.engine,
                *self.runtime,
                "run",
                "--name",
                name,
                *self._options(spec),
                "--env-file",
                str(env_file),
                "--rootfs",
                str(rootfs),
                *spec.command,
            ]
            return run_and_reap(
                command,
                spec.limits,
                None,
                stop,
                cleanup=lambda: self._remove(name),
                environment={"CONTAINERS_CONF": str(conf)},
                stdin=spec.stdin,
                cwd=Path(scratch),
            )  # the engine leaves files in its folder (an `oom` marker)

    def _options(self, spec: SandboxSpec) -> list[str]:
        limits = spec.limits
        options = [
            "--network",
            "none",
            "--read-only",
            "--cap-drop",
            "all",
            "--security-opt",
            "no-new-privileges",
            "--tmpfs",
            f"/tmp:size={limits.tmp_mb}m",
            "--tmpfs",
            f"{HOME}:size={limits.tmp_mb}m",
            "--workdir",
            str(spec.cwd),
            "--mount",
            "type=bind,src=/usr,dst=/usr,ro",
            *(["--interactive"] if spec.stdin else []),
        ]
        if os.geteuid() == 0:
            options += ["--user", f"{SANDBOX_UID}:{SANDBOX_UID}"]
        if limits.memory_mb:
            options += ["--memory", f"{limits.memory_mb}m", "--memory-swap", f"{limits.memory_mb}m"]
        if limits.processes:
            options += ["--pids-limit", str(limits.processes)]
        for name in ETC_FILES:
            if os.path.exists(name):
                options += ["--mount", f"type=bind,src={name},dst={name},ro"]
        options += ["--mount", f"type=bind,src={spec.workdir},dst={WORKDIR}"]
        if spec.logdir is not None:
            options += ["--mount", f"type=bind,src={spec.logdir},dst={LOGDIR}"]
        if spec.gateway_dir is not None:
            options += ["--mount", f"type=bind,src={spec.gateway_dir},dst={GATEWAY_DIR}"]
        for path in spec.readonly:
            options += ["--mount", f"type=bind,src={path},dst={path},ro"]
        return options

    def _remove(self, name: str) -> bool:
        """Kill and remove the container; True if the kernel killed it for lack of memory."""
        inspected = subprocess.run(
            [self.engine, *self.runtime, "inspect", name, "--format", "{{json .State}}"], capture_output=True, text=True
        )
        subprocess.run([self.engine, *self.runtime, "rm", "--force", "--time", "0", name], capture_output=True)
        try:
            return bool(json.loads(inspected.stdout).get("OOMKilled"))
        except ValueError:
            return False


def _minimal_rootfs(rootfs: Path) -> None:
    """An empty root with mount points and the usr-merged links: everything real is mounted read-only."""
    for folder in MOUNT_POINTS:
        (rootfs / folder).mkdir(parents=True, exist_ok=True)
    for target, link in USR_MERGED_LINKS:
        (rootfs / link.lstrip("/")).symlink_to(target)
    for name in ETC_FILES:
        if os.path.isdir(name):
            (rootfs / name.lstrip("/")).mkdir(parents=True, exist_ok=True)
        elif os.path.exists(name):
            (rootfs / name.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (rootfs / name.lstrip("/")).touch()
    for path in rootfs.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755)
    rootfs.chmod(0o755)
    rootfs.parent.chmod(0o755)


def _env_file(path: Path, spec: SandboxSpec) -> Path:
    """The container's environment as podman's `--env-file` reads it (`KEY=VALUE` lines, values taken as they
    are), in a file only the harness may read; a value podman could not read back whole is refused."""
    environment = {"HOME": str(HOME), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **spec.environment}
    lines = []
    for key, value in environment.items():
        if not key or "=" in key or any(c in key + value for c in "\n\r\0") or key != key.strip():
            raise SandboxError(
                f"the sandbox variable {key[:40]!r} cannot be passed to podman (a newline, NUL or "
                "'=' in its name or value)"
            )
        lines.append(f"{key}={value}\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("".join(lines))
    return path


def _containers_conf(spec: SandboxSpec) -> str:
    limits = spec.limits
    ulimits = ["core=0:0"]
    if limits.open_files:
        ulimits.append(f"nofile={limits.open_files}:{limits.open_files}")
    if limits.processes:
        ulimits.append(f"nproc={limits.processes}:{limits.processes}")
    if limits.file_size_mb:
        size = limits.file_size_mb * 1024 * 1024
        ulimits.append(f"fsize={size}:{size}")
    if limits.cpu_s:
        ulimits.append(f"cpu={limits.cpu_s}:{limits.cpu_s}")
    return "[containers]\ndefault_ulimits = [" + ", ".join(f'"{u}"' for u in ulimits) + "]\n"
