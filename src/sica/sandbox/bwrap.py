"""The bubblewrap backend: namespaces (no network but `lo`, own PIDs), an allow-list of read-only host paths,
an unprivileged host uid, rlimits, cgroups where possible, and a wall-time limit; the whole tree dies at the end.

As root, `bwrap --unshare-user --uid 65534` would still be host root to the kernel (it reads 0600 files), so the
harness first becomes the real uid 65534 with `setpriv`; every mounted path must then be reachable by that uid.

Every user can read every process's command line (`ps`, /proc/PID/cmdline), so bwrap's arguments, the agent's
token among its `--setenv`s, reach it through `--args FD`: a memory file the harness fills and bwrap reads (and
closes) before anything of the sandbox runs. The command line says only `bwrap --args N -- COMMAND`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import threading

from sica.sandbox.base import GATEWAY_DIR, HOME, LOGDIR, WORKDIR, InsideView, SandboxError, SandboxResult, SandboxSpec
from sica.sandbox.cgroups import RunCgroup
from sica.sandbox.mounts import SANDBOX_UID, drops_to_sandbox_uid, prepare_mounts
from sica.sandbox.process import prlimit_args, run_and_reap

#: The few host files programs need (dynamic linker cache, users and groups for `id`, TLS roots, time zone).
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/ssl/certs",
    "/etc/alternatives",
)
USR_MERGED_LINKS = (("usr/lib", "/lib"), ("usr/lib64", "/lib64"), ("usr/bin", "/bin"), ("usr/sbin", "/sbin"))


class BwrapSandbox:
    name = "bwrap"

    def __init__(self, bwrap: str | None = None) -> None:
        found = bwrap or shutil.which("bwrap")
        if found is None:
            raise SandboxError("bubblewrap is not installed: apt-get install bubblewrap (make install does it as root)")
        self.bwrap = found

    def options(self, spec: SandboxSpec, home_mb: int) -> list[str]:
        """bwrap's options for `spec` (what `--args` carries; bwrap takes the command only on its command line,
        where the command's own process shows it anyway)."""
        args = ["--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
        for target, link in USR_MERGED_LINKS:
            args += ["--symlink", target, link]
        for name in ETC_FILES:
            if os.path.exists(name):
                args += ["--ro-bind", name, name]
        args += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(spec.limits.tmp_mb * 1024 * 1024),
            "--tmpfs",
            "/tmp",
            "--size",
            str(home_mb * 1024 * 1024),
            "--tmpfs",
            str(HOME),
            "--bind",
            str(spec.workdir),
            str(WORKDIR),
        ]
        if spec.logdir is not None:
            args += ["--bind", str(spec.logdir), str(LOGDIR)]
        for path in spec.readonly:
            args += ["--ro-bind", str(path), str(path)]
        if spec.gateway_dir is not None:
            args += ["--ro-bind", str(spec.gateway_dir), str(GATEWAY_DIR)]
        # The root bwrap builds is a tmpfs: make it read-only, so only the mounts above are writable.
        args += ["--remount-ro", "/", "--chdir", str(spec.cwd), "--clearenv"]
        environment = {"HOME": str(HOME), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **spec.environment}
        for key, value in environment.items():
            args += ["--setenv", key, value]
        return args

    def inside(self, spec: SandboxSpec) -> InsideView:
        return InsideView(WORKDIR, LOGDIR if spec.logdir else None, GATEWAY_DIR if spec.gateway_dir else None)

    def launcher(self, spec: SandboxSpec, cgroup: RunCgroup | None, options_fd: int) -> list[str]:
        """The whole command the harness starts: join the cgroups, set rlimits, drop to the sandbox uid, bwrap
        with its options read from `options_fd`, then the command."""
        command = [*prlimit_args(spec.limits, with_memory=cgroup is None)]
        if drops_to_sandbox_uid():
            command += [
                "setpriv",
                f"--reuid={SANDBOX_UID}",
                f"--regid={SANDBOX_UID}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
            ]
        command += [self.bwrap, "--args", str(options_fd), "--", *spec.command]
        if cgroup is not None:
            command = ["sh", "-c", f"{cgroup.join_command()} && exec {shlex.join(command)}"]
        return command

    def run(self, spec: SandboxSpec, stop: threading.Event | None = None) -> SandboxResult:
        prepare_mounts(spec)
        limits = spec.limits
        options_fd = arguments_file(self.options(spec, home_mb=limits.tmp_mb))
        try:
            cgroup = RunCgroup.create(limits.memory_mb, limits.processes) if drops_to_sandbox_uid() else None
            return run_and_reap(
                self.launcher(spec, cgroup, options_fd), limits, cgroup, stop, stdin=spec.stdin, pass_fds=(options_fd,)
            )
        finally:
            os.close(options_fd)


def arguments_file(arguments: list[str]) -> int:
    """A memory file (no path, no name on any disk) holding `arguments` NUL-separated, at its start, as bwrap's
    `--args` reads them; its descriptor."""
    if any("\0" in argument for argument in arguments):
        raise SandboxError("a sandbox argument holds a NUL byte: it cannot be passed")
    fd = os.memfd_create("sica-bwrap-args", os.MFD_CLOEXEC)
    try:
        os.write(fd, b"".join(os.fsencode(argument) + b"\0" for argument in arguments))
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
