"""Sandboxes: one interface (`Sandbox.run(SandboxSpec) -> SandboxResult`), the bwrap backend, and an explicit,
loudly warned unsafe mode; podman and docker containers as well."""

from sica.sandbox.base import Limits, Sandbox, SandboxError, SandboxResult, SandboxSpec

BACKENDS = ("bwrap", "podman", "docker", "none")


def open_sandbox(backend: str, *, allow_unsafe: bool = False, docker_host: str | None = None) -> Sandbox:
    """The named backend, ready to run; `none` only with `allow_unsafe`; `docker` through the daemon at
    `docker_host` (None: Docker's default socket)."""
    from sica.sandbox.bwrap import BwrapSandbox
    from sica.sandbox.docker import DockerSandbox
    from sica.sandbox.podman import PodmanSandbox
    from sica.sandbox.unsafe import UnsafeNoSandbox

    if backend == "bwrap":
        return BwrapSandbox()
    if backend == "podman":
        return PodmanSandbox()
    if backend == "docker":
        return DockerSandbox(docker_host)
    if backend == "none":
        return UnsafeNoSandbox(allow_unsafe)
    raise SandboxError(f"unknown sandbox backend '{backend}': use one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Limits", "Sandbox", "SandboxError", "SandboxResult", "SandboxSpec", "open_sandbox"]
