"""Which sica processes are alive. Every command but `sica clean` holds a shared lock on one file of the temporary
folder while it runs; the kernel lets go of it when the process ends, however it ends (kill -9 too). So `sica
clean` can tell whether a harness is running, and since when (the lock's holders, from `/proc/locks`), and leave
alone whatever such a harness may still use."""

from __future__ import annotations

import fcntl
import os
import stat
from dataclasses import dataclass
from pathlib import Path

#: The lock file, in the temporary folder (hidden, so it never looks like a scratch folder).
LOCK_NAME = ".sica-harness.lock"


@dataclass(frozen=True)
class LiveHarnesses:
    """The sica processes holding the lock: their ids (those this process can see), and `since`, the earliest
    time one of them started (None when none runs; minus infinity when one's start cannot be known)."""

    pids: tuple[int, ...] = ()
    since: float | None = None


def hold_harness_lock(tmpdir: Path) -> int | None:
    """Take the shared lock for as long as the returned descriptor stays open (close it to let go). None when the
    lock cannot be had (an unwritable temporary folder, a planted non-file): `sica clean` then relies on age."""
    try:
        fd = _open_lock(tmpdir / LOCK_NAME, create=True)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        os.close(fd)
        return None
    return fd


def live_harnesses(tmpdir: Path) -> LiveHarnesses:
    """Who holds the lock now, tested by asking for it exclusively (never waiting)."""
    try:
        fd = _open_lock(tmpdir / LOCK_NAME, create=False)
    except FileNotFoundError:
        return LiveHarnesses()
    except OSError:  # a lock file we may not open: assume the worst
        return LiveHarnesses(since=float("-inf"))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holders(os.fstat(fd))
        return LiveHarnesses()
    finally:
        os.close(fd)


def _open_lock(path: Path, *, create: bool) -> int:
    """Open the lock file read-only (a shared lock needs no more), never through a link and never blocking on a
    FIFO; made 0644 when missing, so other users' sica processes can lock it too."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if not create:
            raise
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            fd = os.open(path, flags)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return fd


def _holders(lock: os.stat_result) -> LiveHarnesses:
    """The processes holding a lock on the file `lock` describes, and when the first of them started."""
    device = f"{os.major(lock.st_dev):02x}:{os.minor(lock.st_dev):02x}:{lock.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return LiveHarnesses(since=float("-inf"))
    pids = sorted(
        {
            int(fields[4])
            for fields in map(str.split, lines)
            if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device
        }
    )
    starts = [process_start(pid) for pid in pids]
    known = [start for start in starts if start is not None]
    if not known or len(known) < len(starts):
        return LiveHarnesses(tuple(pids), float("-inf"))
    return LiveHarnesses(tuple(pids), min(known))


def process_start(pid: int) -> float | None:
    """When the process started (seconds since the epoch), from `/proc`; None when it cannot be seen."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        boot = next(
            float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
        )
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
