"""Starting a sandboxed command's process with rlimits, and reaping it: a wall-time limit, and nothing of the
run left alive afterwards."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

from sica.sandbox.base import Limits, SandboxResult
from sica.sandbox.cgroups import RunCgroup

OUTPUT_CAP = 1_000_000  # bytes of stdout and of stderr kept (the end of each)
LAUNCHER_ENVIRONMENT = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def prlimit_args(limits: Limits, with_memory: bool) -> list[str]:
    """rlimits (they bind the unprivileged uid; cgroups, where present, cover memory and processes too)."""
    args = ["prlimit", "--core=0"]
    if limits.cpu_s:
        args.append(f"--cpu={limits.cpu_s}")
    if limits.open_files:
        args.append(f"--nofile={limits.open_files}")
    if limits.file_size_mb:
        args.append(f"--fsize={limits.file_size_mb * 1024 * 1024}")
    if limits.processes:
        args.append(f"--nproc={limits.processes}")
    if with_memory and limits.memory_mb:
        args.append(f"--as={limits.memory_mb * 1024 * 1024}")
    return [*args, "--"]


def run_and_reap(
    command: list[str],
    limits: Limits,
    cgroup: RunCgroup | None,
    stop: threading.Event | None = None,
    *,
    cleanup: Callable[[], bool] | None = None,
    environment: Mapping[str, str] | None = None,
    stdin: bytes = b"",
    pass_fds: tuple[int, ...] = (),
    cwd: Path | None = None,
) -> SandboxResult:
    """Run with a wall-time limit (or until `stop` is set); afterwards nothing of the run may be left alive.
    `cleanup` (a container engine's kill-and-remove) runs after the launcher is gone and says whether the run
    was killed for lack of memory. `stdin` is fed through a pipe: once the command has read it, it is gone
    (a file could be opened again through `/proc/1/fd/0`, bwrap's init, by anything the command starts);
    `pass_fds` are inherited by the launcher (bwrap's `--args`)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        given, feed = os.pipe() if stdin else (subprocess.DEVNULL, -1)
        # The launcher chain (prlimit, setpriv, bwrap) gets no harness environment either: bwrap stays in the
        # sandbox's PID namespace as its init, and its /proc/1/environ is readable from inside.
        try:
            process = subprocess.Popen(
                command,
                stdin=given,
                stdout=out,
                stderr=err,
                start_new_session=True,
                env={**LAUNCHER_ENVIRONMENT, **(environment or {})},
                pass_fds=pass_fds,
                cwd=cwd,
            )
        finally:
            if stdin:
                os.close(given)
        if stdin:
            threading.Thread(target=_feed, args=(feed, stdin), daemon=True).start()
        timed_out = stopped = False
        deadline = started + limits.wall_s
        # A pidfd becomes readable the moment the process exits: no polling delay (Popen.wait with a timeout
        # sleeps in growing steps and notices an exit up to tens of milliseconds late).
        exited = os.pidfd_open(process.pid)
        try:
            while process.poll() is None:
                if time.monotonic() >= deadline:
                    timed_out = True
                    break
                if stop is not None and stop.is_set():
                    stopped = True
                    break
                select.select([exited], [], [], min(0.1, max(0.0, deadline - time.monotonic())))
        except BaseException:
            _kill(process, cgroup)
            if cleanup is not None:
                cleanup()
            raise
        finally:
            os.close(exited)
        _kill(process, cgroup)
        seconds = time.monotonic() - started
        oom = cgroup is not None and cgroup.out_of_memory()
        if cleanup is not None:
            oom = cleanup() or oom
        if cgroup is not None:
            cgroup.remove()
        stdout, stderr = _tail(out), _tail(err)
    code = process.returncode
    if timed_out:
        return SandboxResult("timeout", None, None, seconds, stdout, stderr)
    if stopped:
        return SandboxResult("killed", None, None, seconds, stdout, stderr)
    if oom:
        return SandboxResult("oom", None, signal.SIGKILL, seconds, stdout, stderr)
    if code is not None and code < 0:
        return SandboxResult("signal", None, -code, seconds, stdout, stderr)
    if code is not None and code > 128:
        # bwrap reports a command killed by a signal as 128 + the signal number.
        return SandboxResult("signal", code, code - 128, seconds, stdout, stderr)
    return SandboxResult("exit", code, None, seconds, stdout, stderr)


def _feed(fd: int, data: bytes) -> None:
    """Write `data` into a pipe and close it; a command that stops reading early is no error."""
    with contextlib.suppress(OSError), open(fd, "wb") as pipe:
        pipe.write(data)


def _kill(process: subprocess.Popen[bytes], cgroup: RunCgroup | None) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
    if cgroup is not None:
        cgroup.kill_all()


def _tail(file: BinaryIO) -> str:
    file.seek(0, os.SEEK_END)
    size = file.tell()
    file.seek(max(0, size - OUTPUT_CAP))
    return file.read().decode(errors="replace")
