"""A size-capped writable area for a run: a tmpfs mounted by the harness (when it may mount), so that an agent
filling its workdir or logdir hits "no space left" at the cap instead of filling the host's disk. It is mounted
`nosuid,nodev`: a setuid file or a device node the agent leaves there means nothing to the host's kernel. (Holes
in sparse files do not count against the cap: the harness's copies keep them as holes, `sandbox.untrusted`.)"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType


class ScratchArea:
    """A world-traversable folder for a run's workdir and logdir; a tmpfs of `size_mb` when mounting works."""

    def __init__(self, size_mb: int, parent: Path | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="sica-run-", dir=parent))
        self.path.chmod(0o755)
        self.capped = False
        if os.geteuid() == 0:
            mounted = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755,nosuid,nodev", "tmpfs", str(self.path)],
                capture_output=True,
            )
            self.capped = mounted.returncode == 0

    def __enter__(self) -> ScratchArea:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Unmount (lazily, in case a process still holds a file) and remove the area: by `rm`, which no depth of
        the agent's folders stops (Python's rmtree recurses), never leaving the area's own filesystem."""
        if self.capped:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
            self.capped = False
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(self.path)], capture_output=True)
