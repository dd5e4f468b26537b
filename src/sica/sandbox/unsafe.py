"""The `none` backend: no confinement at all, only limits and a clean environment. It exists for machines
without a sandbox, must be asked for explicitly, and warns on every run; the hostile battery never runs on it."""

from __future__ import annotations

import sys
import tempfile
import threading

from sica.sandbox.base import WORKDIR, InsideView, SandboxError, SandboxResult, SandboxSpec
from sica.sandbox.process import prlimit_args, run_and_reap

WARNING = "warning: sandbox 'none': the command runs unconfined, with your user's rights and network"


class UnsafeNoSandbox:
    name = "none"

    def __init__(self, allow_unsafe: bool) -> None:
        if not allow_unsafe:
            raise SandboxError("the 'none' backend runs code unconfined: it needs the explicit unsafe flag")

    def inside(self, spec: SandboxSpec) -> InsideView:
        return InsideView(spec.workdir, spec.logdir, spec.gateway_dir)

    def run(self, spec: SandboxSpec, stop: threading.Event | None = None) -> SandboxResult:
        print(WARNING, file=sys.stderr)
        cwd = spec.workdir if spec.cwd == WORKDIR else spec.cwd
        with tempfile.TemporaryDirectory(prefix="sica-home-") as home:
            environment = {"HOME": home, "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **spec.environment}
            command = [
                "env",
                "-i",
                *(f"{k}={v}" for k, v in environment.items()),
                "sh",
                "-c",
                'cd "$0" && exec "$@"',
                str(cwd),
                *spec.command,
            ]
            return run_and_reap(
                [*prlimit_args(spec.limits, with_memory=True), *command], spec.limits, None, stop, stdin=spec.stdin
            )
