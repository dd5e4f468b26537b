"""Files a sandboxed process controls, handled by the harness (which may be root) without being fooled: never
through a symbolic link, never blocking on a FIFO or device, never more than asked, and never copying special
files. The agent's workdir and logdir are such files."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path


def read_untrusted(path: Path, limit: int, offset: int = 0) -> bytes | None:
    """Up to `limit` bytes of a regular file from `offset`; None when it is missing, a link or not a regular
    file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.pread(fd, limit, offset)
    finally:
        os.close(fd)


def read_untrusted_text(path: Path, limit: int) -> str | None:
    """The start of a regular file as text (undecodable bytes replaced); None as for `read_untrusted`."""
    data = read_untrusted(path, limit)
    return None if data is None else data.decode("utf-8", errors="replace")


def write_into_untrusted_folder(folder: Path, name: str, data: bytes) -> bool:
    """Create `folder/name` atomically (a hidden temporary file, then a rename), refusing a `folder` that is a
    link or not a folder and never following a link planted at either name; False when refused."""
    try:
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        temp = f".{name}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                     dir_fd=folder_fd)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.rename(temp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        return True
    except OSError:
        return False
    finally:
        os.close(folder_fd)


def copy_untrusted_tree(source: Path, destination: Path) -> None:
    """Copy a tree a sandboxed process wrote: links stay links, FIFOs, sockets and devices are left out."""

    def special(folder: str, names: list[str]) -> set[str]:
        left_out = set()
        for name in names:
            mode = os.lstat(os.path.join(folder, name)).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                left_out.add(name)
        return left_out

    shutil.copytree(source, destination, symlinks=True, ignore=special)
