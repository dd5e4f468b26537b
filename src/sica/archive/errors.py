"""The one error the archive raises: a single line that names the problem and the fix."""

from __future__ import annotations


class ArchiveError(Exception):
    """A run folder, version or reference that cannot be used; one line, naming the fix."""
