"""The sandbox interface: what to run, what it may see, its limits, and how it ended."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

Ending = Literal["exit", "signal", "timeout", "oom", "killed"]

#: Inside the sandbox, the places every run sees.
WORKDIR = Path("/work")
LOGDIR = Path("/logs")
GATEWAY_DIR = Path("/run/sica")
HOME = Path("/home/sandbox")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one run; `None` leaves a limit off."""

    wall_s: float = 600.0
    cpu_s: int | None = 1200
    memory_mb: int | None = 4096
    processes: int | None = 256
    open_files: int | None = 1024
    file_size_mb: int | None = 512
    tmp_mb: int = 512


@dataclass(frozen=True)
class SandboxSpec:
    """One command and the world it runs in. Host paths are mounted: `workdir` at /work and `logdir` at /logs
    (read-write), `gateway_dir` at /run/sica, and each of `readonly` at its own path, read-only. `stdin` is
    what the command reads on standard input (a scorer passes hidden material this way: it then exists in no
    file the code under test can name)."""

    command: tuple[str, ...]
    workdir: Path
    logdir: Path | None = None
    readonly: tuple[Path, ...] = ()
    gateway_dir: Path | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    limits: Limits = Limits()
    cwd: Path = WORKDIR
    stdin: bytes = b""


@dataclass(frozen=True)
class SandboxResult:
    """How a run ended: `exit` (with `exit_code`), `signal` (with `signal`), or stopped by the harness:
    `timeout` (wall time), `oom` (memory limit) or `killed` (another limit, or cancelled)."""

    ending: Ending
    exit_code: int | None
    signal: int | None
    seconds: float
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.ending == "exit" and self.exit_code == 0

    def describe(self) -> str:
        if self.ending == "exit":
            return f"exited with code {self.exit_code}"
        if self.ending == "signal":
            return f"killed by signal {self.signal}"
        return {
            "timeout": "stopped: wall time limit",
            "oom": "stopped: out of memory",
            "killed": "stopped by the harness",
        }[self.ending]


class SandboxError(Exception):
    """The sandbox could not be set up (backend missing, unreachable mount); one line naming the fix."""


@dataclass(frozen=True)
class InsideView:
    """Where a spec's folders appear to the sandboxed command."""

    workdir: Path
    logdir: Path | None
    gateway_dir: Path | None


class Sandbox(Protocol):
    """A backend. `run` blocks until the command and all its processes are gone; setting `stop` ends it early
    (ending `killed`)."""

    name: str

    def run(self, spec: SandboxSpec, stop: threading.Event | None = None) -> SandboxResult: ...

    def inside(self, spec: SandboxSpec) -> InsideView: ...
