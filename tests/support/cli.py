"""Running the `sica` command as a real process, with none of this machine's sica settings or provider keys."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def clean_environ(home: Path | None = None) -> dict[str, str]:
    """This process's environment without `SICA_*` settings and `*_API_KEY`s, wide enough for rich tables."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SICA_") and not k.endswith("_API_KEY")}
    return environ | {"COLUMNS": "200"} | ({"HOME": str(home)} if home else {})


def run_sica(cwd: Path, *args: str, env: dict[str, str] | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sica", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=clean_environ() if env is None else env)


def interrupt_when(process: subprocess.Popen[str], ready: Callable[[], bool], *, wait_s: float) -> tuple[str, str]:
    """Ctrl-C to `process` once `ready()` holds (or after `wait_s` seconds), as a user would; then its output and
    errors once it has ended (within `wait_s` more)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and not ready():
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    return process.communicate(timeout=wait_s)
