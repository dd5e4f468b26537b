"""Files a sandboxed process controls, handled by the harness (which may be root) without being fooled: never
through a symbolic link, never blocking on a FIFO or device, never more than asked, and never copying special
files. The agent's workdir and logdir are such files.

Trees are walked without recursion and through folder descriptors (`walk_untrusted_tree`), so no depth or name
length breaks the walk, and within `TreeLimits`: what is past a limit (too deep, too big, too many entries, a
special file) is left out and noted (`LeftOut`), never a crash. Copies keep holes as holes (a 200 MB sparse file
costs no disk on the agent's tmpfs, and none on the harness's copy), carry no setuid, setgid or sticky bit and
nothing writable by group or others (a root-owned copy of the agent's setuid file would be a way into root)."""

from __future__ import annotations

import errno
import itertools
import os
import posixpath
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


class UntrustedTreeError(Exception):
    """A tree an agent left cannot be walked, copied, diffed or archived; one line saying why. It is the agent's
    failure: the caller records it as the agent's, never retries it as the harness's."""


@dataclass(frozen=True)
class TreeLimits:
    """How much of a tree the harness takes; None leaves a limit off. Sizes are apparent sizes (holes count)."""

    max_depth: int | None = 100
    max_entries: int | None = 100_000
    max_file_bytes: int | None = 128 << 20
    max_total_bytes: int | None = 1 << 30
    #: Longer paths are left out: git silently skips a path it cannot name (over PATH_MAX with its folder).
    max_path_bytes: int = 3072


#: The limits on a tree an agent wrote.
UNTRUSTED_LIMITS = TreeLimits()
#: The limits on a tree the harness or its user made (a repository, a checkout): depth only, so the walk's
#: descriptors stay few.
TRUSTED_LIMITS = TreeLimits(
    max_depth=256, max_entries=None, max_file_bytes=None, max_total_bytes=None, max_path_bytes=1 << 20
)

SPECIAL_FILES = "special files (FIFOs, sockets, devices)"
NESTED_REPOSITORIES = "nested git repositories"
UNREADABLE = "entries that cannot be read"
_EXAMPLES = 3
_OPEN_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_COPY_CHUNK = 1 << 20


def shown_path(relative: str, limit: int = 120) -> str:
    """A path of the agent's for a one-line message: bytes that are not UTF-8 escaped, long paths cut."""
    text = os.fsencode(relative).decode("utf-8", errors="backslashreplace")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class LeftOut:
    """What a walk left out, by reason: every path (relative, for git to exclude) and one line per reason."""

    paths: list[str] = field(default_factory=list)
    by_reason: dict[str, list[str]] = field(default_factory=dict)
    #: Set when the walk stopped at its entry limit: the rest of the tree was not even looked at.
    truncated: bool = False

    def add(self, reason: str, relative: str) -> None:
        self.paths.append(relative)
        self.by_reason.setdefault(reason, []).append(relative)

    def lines(self) -> list[str]:
        """One line per reason: the reason, then the first few paths and how many more."""
        found = []
        for reason, paths in self.by_reason.items():
            shown = ", ".join(shown_path(path) for path in paths[:_EXAMPLES])
            more = f" and {len(paths) - _EXAMPLES} more" if len(paths) > _EXAMPLES else ""
            found.append(f"{reason}: {shown}{more}")
        return found

    def __bool__(self) -> bool:
        return bool(self.paths)


@dataclass(frozen=True)
class TreeEntry:
    """An entry met by `walk_untrusted_tree`: its path from the root, its name in the open folder `parent_fd`,
    and its `lstat`."""

    relative: str
    name: str
    parent_fd: int
    stat: os.stat_result


Visit = Literal["enter", "leave", "file", "link"]


@dataclass
class _Folder:
    fd: int
    relative: str
    depth: int
    names: list[str]
    entry: TreeEntry | None


def walk_untrusted_tree(
    root: Path,
    limits: TreeLimits,
    left_out: LeftOut,
    *,
    skip_folders: frozenset[str] = frozenset(),
    nested_repositories: bool = False,
    leave_out: Callable[[str], str | None] | None = None,
) -> Iterator[tuple[Visit, TreeEntry]]:
    """Walk `root` depth first, never through a link: `enter` and `leave` for each folder (its `parent_fd` is
    open until `leave`; children come between), `file` for regular files and `link` for links. Folders named
    in `skip_folders` are passed over without a note; what is past `limits`, special files and, with
    `nested_repositories`, folders holding a `.git` and entries whose name `leave_out` gives a reason for are
    left out with a note in `left_out`. Raises
    `UntrustedTreeError` when `root` itself is not a folder (a link to one included)."""
    try:
        root_fd = os.open(root, _OPEN_FOLDER)
    except OSError as error:
        raise UntrustedTreeError(f"{root} cannot be read as a folder: {error.strerror}") from None
    stack = [_Folder(root_fd, "", 0, [], None)]
    entries = 0
    total_bytes = 0
    try:
        stack[0].names = _names(root_fd, limits.max_entries)
        while stack:
            folder = stack[-1]
            if not folder.names:
                stack.pop()
                os.close(folder.fd)
                if folder.entry is not None:
                    yield "leave", folder.entry
                continue
            name = folder.names.pop()
            relative = f"{folder.relative}/{name}" if folder.relative else name
            if leave_out is not None and (reason := leave_out(name)) is not None:
                left_out.add(reason, relative)
                continue
            entries += 1
            if limits.max_entries is not None and entries > limits.max_entries:
                left_out.add(f"entries past the first {limits.max_entries}", relative)
                left_out.truncated = True
                for unfinished in stack:
                    unfinished.names.clear()
                continue
            if len(os.fsencode(relative)) > limits.max_path_bytes:
                left_out.add(f"paths longer than {limits.max_path_bytes} bytes", relative)
                continue
            try:
                info = os.lstat(name, dir_fd=folder.fd)
            except OSError:
                left_out.add(UNREADABLE, relative)
                continue
            entry = TreeEntry(relative, name, folder.fd, info)
            if stat.S_ISLNK(info.st_mode):
                yield "link", entry
            elif stat.S_ISREG(info.st_mode):
                if limits.max_file_bytes is not None and info.st_size > limits.max_file_bytes:
                    left_out.add(f"files over {limits.max_file_bytes >> 20} MiB", relative)
                elif limits.max_total_bytes is not None and total_bytes + info.st_size > limits.max_total_bytes:
                    left_out.add(f"files past the tree's first {limits.max_total_bytes >> 20} MiB", relative)
                else:
                    total_bytes += info.st_size
                    yield "file", entry
            elif stat.S_ISDIR(info.st_mode):
                if name in skip_folders:
                    entries -= 1
                    continue
                if limits.max_depth is not None and folder.depth + 1 > limits.max_depth:
                    left_out.add(f"folders deeper than {limits.max_depth} levels", relative)
                    continue
                try:
                    fd = os.open(name, _OPEN_FOLDER, dir_fd=folder.fd)
                except OSError:
                    left_out.add(UNREADABLE, relative)
                    continue
                try:
                    names = _names(fd, None if limits.max_entries is None else limits.max_entries - entries)
                except OSError:
                    os.close(fd)
                    left_out.add(UNREADABLE, relative)
                    continue
                if nested_repositories and ".git" in names:
                    os.close(fd)
                    left_out.add(NESTED_REPOSITORIES, relative)
                    continue
                stack.append(_Folder(fd, relative, folder.depth + 1, names, entry))
                yield "enter", entry
            else:
                left_out.add(SPECIAL_FILES, relative)
    finally:
        for unfinished in stack:
            os.close(unfinished.fd)


def _names(fd: int, most: int | None) -> list[str]:
    """The names in an open folder, sorted and reversed (taken from the end), at most `most` + 1 of them."""
    with os.scandir(fd) as listing:
        names = [entry.name for entry in itertools.islice(listing, None if most is None else max(0, most) + 1)]
    return sorted(names, reverse=True)


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
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=folder_fd)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.rename(temp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        return True
    except OSError:
        return False
    finally:
        os.close(folder_fd)


def plain_mode(mode: int) -> int:
    """The permission bits a harness's copy gets: no setuid, setgid or sticky bit, no write for group or
    others, and always the owner's own access (so the harness can read and remove what it kept)."""
    owner = 0o700 if stat.S_ISDIR(mode) else 0o600
    return (stat.S_IMODE(mode) & 0o755) | owner


def copy_untrusted_tree(source: Path, destination: Path, limits: TreeLimits = UNTRUSTED_LIMITS) -> list[str]:
    """Copy a tree a sandboxed process wrote into `destination` (which must not exist): links stay links, holes
    stay holes, modes lose setuid, setgid and sticky bits; FIFOs, sockets, devices and what is past `limits`
    are left out. The copy is made aside and renamed into place, so `destination` is either whole or absent.
    What was left out, one line per reason. Raises `UntrustedTreeError` when `source` is not a folder or the
    copy cannot be written."""
    if os.path.lexists(destination):
        raise FileExistsError(errno.EEXIST, "the copy's destination exists already", str(destination))
    partial = destination.with_name(f".{destination.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        left_out = copy_tree_into(source, partial, limits)
        os.rename(partial, destination)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return left_out.lines()


def copy_tree_into(
    source: Path,
    destination: Path,
    limits: TreeLimits,
    skip: frozenset[str] = frozenset(),
    leave_out: Callable[[str], str | None] | None = None,
) -> LeftOut:
    """Copy `source`'s entries into `destination` (made when missing, its own mode then taken from `source`),
    as `copy_untrusted_tree` does but in place, passing over entries named in `skip` and leaving out those
    `leave_out` gives a reason for; what was left out."""
    left_out = LeftOut()
    made = not destination.exists()
    if made:
        destination.mkdir(mode=0o700)
    try:
        root_fd = os.open(destination, _OPEN_FOLDER)
    except OSError as error:
        raise UntrustedTreeError(f"cannot copy into {destination}: {error.strerror}") from None
    targets = [root_fd]
    try:
        for visit, entry in walk_untrusted_tree(source, limits, left_out, skip_folders=skip, leave_out=leave_out):
            if visit in ("file", "link") and entry.name in skip:
                continue
            if visit == "enter":
                os.mkdir(entry.name, 0o700, dir_fd=targets[-1])
                targets.append(os.open(entry.name, _OPEN_FOLDER, dir_fd=targets[-1]))
            elif visit == "leave":
                os.fchmod(targets[-1], plain_mode(entry.stat.st_mode))
                os.close(targets.pop())
            elif visit == "link":
                os.symlink(os.readlink(entry.name, dir_fd=entry.parent_fd), entry.name, dir_fd=targets[-1])
            elif not _copy_file(entry, targets[-1]):
                left_out.add(UNREADABLE, entry.relative)
        if made:
            os.fchmod(root_fd, plain_mode(os.lstat(source).st_mode))
    except OSError as error:
        raise UntrustedTreeError(f"cannot copy {source} to {destination}: {error.strerror}") from None
    finally:
        for fd in targets:
            os.close(fd)
    return left_out


def _copy_file(entry: TreeEntry, target_folder: int) -> bool:
    """Copy one regular file's data (holes kept as holes, at most its size when walked), mode (plain) and
    times; False when it cannot be opened as a regular file."""
    try:
        source = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=entry.parent_fd)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(source).st_mode):
            return False
        target = os.open(
            entry.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=target_folder
        )
        try:
            size = entry.stat.st_size
            for start, end in _data_ranges(source, size):
                _copy_range(source, target, start, end - start)
            os.ftruncate(target, size)
            os.fchmod(target, plain_mode(entry.stat.st_mode))
            os.utime(target, ns=(entry.stat.st_atime_ns, entry.stat.st_mtime_ns))
        finally:
            os.close(target)
        return True
    finally:
        os.close(source)


def _data_ranges(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """The parts of a file's first `size` bytes that hold data (the whole of it where holes cannot be told)."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
            end = min(size, os.lseek(fd, start, os.SEEK_HOLE))
        except OSError as error:
            if error.errno == errno.ENXIO:  # nothing but a hole from `offset` on
                return
            yield offset, size
            return
        if start >= size:
            return
        yield start, end
        offset = end


def _copy_range(source: int, target: int, offset: int, count: int) -> None:
    """Copy `count` bytes at `offset` to the same offset, by the kernel where it can (no page cache copy)."""
    end = offset + count
    while offset < end:
        try:
            copied = os.copy_file_range(source, target, min(end - offset, 1 << 30), offset, offset)
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            copied = 0
        if copied == 0:
            data = os.pread(source, min(end - offset, _COPY_CHUNK), offset)
            if not data:
                return
            copied = os.pwrite(target, data, offset)
        offset += copied


def links_leaving(root: Path, limits: TreeLimits = TRUSTED_LIMITS) -> list[str]:
    """The links of a tree that lead out of it (absolute, or climbing above its root), as `path -> target`:
    followed on the host, they would reach the host's files, not the tree's."""
    found = []
    for visit, entry in walk_untrusted_tree(root, limits, LeftOut()):
        if visit != "link":
            continue
        target = os.readlink(entry.name, dir_fd=entry.parent_fd)
        inside = posixpath.normpath(posixpath.join(posixpath.dirname(entry.relative), target))
        if posixpath.isabs(target) or inside == ".." or inside.startswith("../"):
            found.append(f"{shown_path(entry.relative)} -> {shown_path(target)}")
    return found
