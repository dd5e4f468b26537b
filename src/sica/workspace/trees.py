"""Tree copies: a repository's files into a scratch workdir, without what never belongs there (`SKIPPED`), never
following a link (`sandbox.untrusted.copy_tree_into`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sica.sandbox.untrusted import TRUSTED_LIMITS, LeftOut, copy_tree_into

#: Never copied into a scratch workdir: version control, environments and caches.
SKIPPED = (".git", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", "node_modules")
#: `info/exclude` patterns of the harness's git directories: the folders of `SKIPPED`.
SKIPPED_FOLDERS = tuple(f"{name}/" for name in SKIPPED)


def copy_tree(
    source: Path, destination: Path, leave_out: Callable[[str], str | None] | None = None, notes: LeftOut | None = None
) -> None:
    """Copy a repository's files (not its .git, environments or caches, nor the entries `leave_out` names a
    reason for), keeping links as links and holes as holes, without special files or setuid bits, into
    `destination` (made when missing); what was left out is added to `notes`."""
    left_out = copy_tree_into(source, destination, TRUSTED_LIMITS, skip=frozenset(SKIPPED), leave_out=leave_out)
    if notes is not None:
        notes.paths += left_out.paths
        for reason, paths in left_out.by_reason.items():
            notes.by_reason.setdefault(reason, []).extend(paths)
