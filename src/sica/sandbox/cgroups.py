"""Memory and process limits with cgroups, where the harness may create them (cgroup v1 here, v2 elsewhere).

A cgroup holds a whole process tree whatever its processes do (fork, setsid, change uid), so it both enforces
limits that rlimits cannot (memory of a tree, processes of one run) and finds every process to kill at the end.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass
class RunCgroup:
    """The cgroup(s) of one sandboxed run; `paths` are the folders whose `cgroup.procs` the run joins."""

    paths: list[Path]
    memory: Path | None

    @classmethod
    def create(cls, memory_mb: int | None, processes: int | None) -> RunCgroup | None:
        """Cgroups for one run, or None where they cannot be created (not root, read-only cgroupfs)."""
        name = f"sica-{uuid.uuid4().hex[:12]}"
        try:
            if (CGROUP_ROOT / "cgroup.controllers").exists():
                return cls._create_v2(name, memory_mb, processes)
            return cls._create_v1(name, memory_mb, processes)
        except OSError:
            return None

    @classmethod
    def _create_v2(cls, name: str, memory_mb: int | None, processes: int | None) -> RunCgroup:
        path = CGROUP_ROOT / name
        path.mkdir()
        if memory_mb:
            (path / "memory.max").write_text(str(memory_mb * 1024 * 1024))
            (path / "memory.swap.max").write_text("0")
        if processes:
            (path / "pids.max").write_text(str(processes))
        return cls([path], path)

    @classmethod
    def _create_v1(cls, name: str, memory_mb: int | None, processes: int | None) -> RunCgroup:
        memory, pids = CGROUP_ROOT / "memory" / name, CGROUP_ROOT / "pids" / name
        memory.mkdir()
        created = cls([memory], memory)
        try:
            if memory_mb:
                (memory / "memory.limit_in_bytes").write_text(str(memory_mb * 1024 * 1024))
            pids.mkdir()
            created.paths.append(pids)
            if processes:
                (pids / "pids.max").write_text(str(processes))
        except OSError:
            created.remove()
            raise
        return created

    def join_command(self) -> str:
        """Shell words that move the current shell into these cgroups (then it execs the sandbox)."""
        return " && ".join(f"echo $$ > {path / 'cgroup.procs'}" for path in self.paths)

    def out_of_memory(self) -> bool:
        """Whether the kernel's OOM killer acted in this run."""
        if self.memory is None:
            return False
        for name in ("memory.events", "memory.oom_control"):
            try:
                for line in (self.memory / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key in ("oom_kill", "oom") and int(value) > 0:
                        return True
            except (OSError, ValueError):
                continue
        return False

    def kill_all(self) -> None:
        """SIGKILL every process still in the run's cgroups, until none is left."""
        pause = 0.001
        for _ in range(60):
            pids = {int(p) for path in self.paths for p in _read(path / "cgroup.procs").split()}
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def remove(self) -> None:
        self.kill_all()
        for path in self.paths:
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
