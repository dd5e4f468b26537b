"""Sandboxes: one interface (`Sandbox.run(SandboxSpec) -> SandboxResult`), the bwrap backend, and an explicit,
loudly warned unsafe mode."""

from sica.sandbox.base import Limits, Sandbox, SandboxError, SandboxResult, SandboxSpec

BACKENDS = ("bwrap", "podman", "none")


def open_sandbox(backend: str, *, allow_unsafe: bool = False) -> Sandbox:
    """The named backend, ready to run; `none` only with `allow_unsafe`."""
    from sica.sandbox.bwrap import BwrapSandbox
    from sica.sandbox.podman import PodmanSandbox
    from sica.sandbox.unsafe import UnsafeNoSandbox

    if backend == "bwrap":
        return BwrapSandbox()
    if backend == "podman":
        return PodmanSandbox()
    if backend == "none":
        return UnsafeNoSandbox(allow_unsafe)
    raise SandboxError(f"unknown sandbox backend '{backend}': use one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Limits", "Sandbox", "SandboxError", "SandboxResult", "SandboxSpec", "open_sandbox"]
