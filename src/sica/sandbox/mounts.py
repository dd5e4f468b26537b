"""What every backend does with a spec's mounts before a run: check that the sandbox user can reach them, and
hand the writable ones over to it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sica.sandbox.base import SandboxError, SandboxSpec

SANDBOX_UID = 65534


def drops_to_sandbox_uid() -> bool:
    """Root runs sandboxes as the unprivileged uid 65534; any other user already is unprivileged."""
    return os.geteuid() == 0


def check_reachable(path: Path) -> None:
    """The sandbox user must be able to reach `path`: every parent folder traversable by others."""
    if not drops_to_sandbox_uid():
        return
    for folder in path.resolve().parents:
        mode = folder.stat().st_mode
        if folder.stat().st_uid != SANDBOX_UID and not mode & stat.S_IXOTH:
            raise SandboxError(
                f"{path} is not reachable by the sandbox user (uid {SANDBOX_UID}): {folder} is mode "
                f"{stat.S_IMODE(mode):04o}; keep sandbox material under a folder others can traverse"
            )


def readable_by_all(folder: Path) -> None:
    """Folders 0755, files 0644 (0755 when executable), links left alone: what the harness mounts read-only
    for the sandbox user (a copied 0600 file would otherwise be unreadable to it)."""
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        executable = path.is_dir() or path.stat().st_mode & 0o100
        path.chmod(0o755 if executable else 0o644)


def give_to_sandbox_user(path: Path) -> None:
    """Make a writable mount writable by the sandbox user (recursively), when the harness is root."""
    if not drops_to_sandbox_uid():
        return
    for root, folders, files in os.walk(path):
        for name in [*folders, *files]:
            entry = os.path.join(root, name)
            # A hard link may share its inode with a file outside the mount: never hand that inode over.
            if name in files and os.lstat(entry).st_nlink > 1:
                continue
            os.lchown(entry, SANDBOX_UID, SANDBOX_UID)
    os.chown(path, SANDBOX_UID, SANDBOX_UID)


def prepare_mounts(spec: SandboxSpec) -> None:
    """Every mount must exist and be reachable; the workdir and logdir become the sandbox user's."""
    for path in (spec.workdir, *(p for p in (spec.logdir, spec.gateway_dir) if p), *spec.readonly):
        if not path.exists():
            raise SandboxError(f"cannot mount {path}: it does not exist")
        check_reachable(path)
    for writable in (spec.workdir, spec.logdir):
        if writable is not None:
            give_to_sandbox_user(writable)
