"""A real Docker daemon for tests: `dockerd` with a data root, exec root, pid file and unix socket of its own in a
temporary folder (no bridge, no iptables: sandboxes run with `--network none`), stopped by its pid at the end. When
none can start here (not installed, or the kernel refuses it) the caller skips with the reason printed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class NoDaemon(Exception):
    """No Docker daemon could start here; the message says why."""


@contextmanager
def dockerd() -> Iterator[str]:
    """A running daemon's `-H` address (`unix://…/docker.sock`) for the block."""
    daemon, client = shutil.which("dockerd"), shutil.which("docker")
    if daemon is None or client is None:
        raise NoDaemon("dockerd or docker is not installed (apt-get install docker.io)")
    root = Path(tempfile.mkdtemp(prefix="sica-dk-", dir="/tmp"))
    host = f"unix://{root}/docker.sock"
    log = (root / "dockerd.log").open("wb")
    process = subprocess.Popen(
        [daemon, "--data-root", str(root / "data"), "--exec-root", str(root / "exec"), "--pidfile",
         str(root / "docker.pid"), "-H", host, "--iptables=false", "--ip6tables=false", "--bridge=none",
         "--storage-driver=vfs", "--containerd-namespace", f"sica-{root.name}",
         "--containerd-plugins-namespace", f"sica-{root.name}-plugins"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                tail = (root / "dockerd.log").read_text(errors="replace").strip().splitlines()[-1:]
                raise NoDaemon(f"dockerd exited with {process.returncode}: {' '.join(tail)[:300]}")
            ready = subprocess.run([client, "-H", host, "version", "--format", "{{.Server.Version}}"],
                                   capture_output=True, text=True, env={"PATH": os.environ.get("PATH", ""),
                                                                          "DOCKER_CONFIG": str(root / "cfg")})
            if ready.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise NoDaemon(f"dockerd did not answer within 60 s: {ready.stderr.strip()[:300]}")
            time.sleep(0.3)
        yield host
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        log.close()
        subprocess.run(["umount", "-R", str(root / "data")], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
