"""The docker backend: podman's container recipe (`sandbox.podman`) through Docker's CLI, for cluster nodes that
run Docker rather than podman. The same `--network none`, read-only root, mounts, unprivileged user, no
capabilities, memory and process limits, and the environment through a 0600 `--env-file`; what differs is
Docker's own: it has no `--rootfs`, so the same minimal root (empty mount points and the usr-merged links, no
files of the host) is imported once per daemon as a tiny image named by its digest, and rlimits are `--ulimit`s.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import uuid
from pathlib import Path

from sica.sandbox.base import SandboxError, SandboxResult, SandboxSpec
from sica.sandbox.mounts import prepare_mounts
from sica.sandbox.podman import PodmanSandbox, _env_file, _minimal_rootfs
from sica.sandbox.process import run_and_reap

_IMAGE_LOCK = threading.Lock()


class DockerSandbox(PodmanSandbox):
    """Containers through `docker` (at `host`, e.g. `unix:///run/docker.sock`; None: Docker's default)."""

    name = "docker"

    def __init__(self, host: str | None = None, engine: str | None = None) -> None:
        found = engine or shutil.which("docker")
        if found is None:
            raise SandboxError("docker is not installed: apt-get install docker.io")
        self.engine = found
        self.runtime = []
        self.host = ["-H", host] if host else []
        self._image: str | None = None

    def _docker(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        with tempfile.TemporaryDirectory(prefix="sica-docker-config-") as config:
            return subprocess.run(
                [self.engine, *self.host, *args],
                input=stdin,
                capture_output=True,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DOCKER_CONFIG": config},
            )

    def image(self) -> str:
        """The minimal root as an image of this daemon, imported on first use (named by the root's digest)."""
        with _IMAGE_LOCK:
            if self._image is not None:
                return self._image
            with tempfile.TemporaryDirectory(prefix="sica-rootfs-") as scratch:
                rootfs = Path(scratch) / "rootfs"
                _minimal_rootfs(rootfs)
                data = _tar(rootfs)
            tag = f"sica-sandbox-root:{hashlib.sha256(data).hexdigest()[:16]}"
            if self._docker("image", "inspect", tag).returncode != 0:
                imported = self._docker("import", "-", tag, stdin=data)
                if imported.returncode != 0:
                    detail = " ".join(imported.stderr.decode(errors="replace").split())[:300]
                    raise SandboxError(f"docker could not import the sandbox's root ({detail}): is dockerd running?")
            self._image = tag
            return tag

    def run(self, spec: SandboxSpec, stop: threading.Event | None = None) -> SandboxResult:
        prepare_mounts(spec)
        image = self.image()
        name = f"sica-{uuid.uuid4().hex[:12]}"
        with tempfile.TemporaryDirectory(prefix="sica-docker-") as scratch:
            env_file = _env_file(Path(scratch) / "environment", spec)
            config = Path(scratch) / "config"
            config.mkdir(mode=0o700)
            command = [
                self.engine,
                *self.host,
                "run",
                "--name",
                name,
                *self._options(spec),
                *self._ulimits(spec),
                "--env-file",
                str(env_file),
                image,
                *spec.command,
            ]
            return run_and_reap(
                command,
                spec.limits,
                None,
                stop,
                cleanup=lambda: self._remove(name),
                environment={"DOCKER_CONFIG": str(config)},
                stdin=spec.stdin,
                cwd=Path(scratch),
            )

    def _ulimits(self, spec: SandboxSpec) -> list[str]:
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
        return [option for ulimit in ulimits for option in ("--ulimit", ulimit)]

    def _remove(self, name: str) -> bool:
        """Kill and remove the container; True if the kernel killed it for lack of memory."""
        inspected = self._docker("inspect", name, "--format", "{{.State.OOMKilled}}")
        self._docker("rm", "--force", name)
        return inspected.stdout.decode(errors="replace").strip() == "true"


def _tar(rootfs: Path) -> bytes:
    """The minimal root as a tar (owned by root, fixed times: the same root gives the same digest)."""
    buffer = io.BytesIO()

    def normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = 0
        return info

    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for entry in sorted(rootfs.rglob("*")):
            tar.add(entry, arcname=os.path.relpath(entry, rootfs), recursive=False, filter=normalized)
    return buffer.getvalue()
