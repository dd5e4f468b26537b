"""The hostile-agent battery, for every backend: each attempt must fail, the harness must survive with a clear status, and nothing
outside the workdir and logdir may change. Real bubblewrap, real cgroups and rlimits; traffic only on loopback."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
import tempfile
import threading
from pathlib import Path

import pytest

from sica.sandbox import Limits, SandboxSpec, open_sandbox
from sica.sandbox.scratch import ScratchArea
from tests.support.dockerd import NoDaemon, dockerd

ENGINES = {"bwrap": "bwrap", "podman": "podman", "docker": "docker"}
#: The address of the Docker daemon the battery started, while it runs.
DOCKER_HOSTS: dict[str, str] = {}


@pytest.fixture(params=sorted(ENGINES), scope="module")
def backend(request):
    """Each backend this machine has (make install installs bwrap and podman); the battery runs for every one.
    For docker it starts a daemon of its own (stopped after the module), or skips saying why none could start."""
    if shutil.which(ENGINES[request.param]) is None:
        pytest.skip(f"{request.param} is not installed (make install installs it)")
    if request.param != "docker":
        yield request.param
        return
    try:
        with dockerd() as host:
            DOCKER_HOSTS["docker"] = host
            yield request.param
            DOCKER_HOSTS.pop("docker")
    except NoDaemon as reason:
        pytest.skip(f"no Docker daemon could start here: {reason}")


def sandbox_of(backend: str):
    return open_sandbox(backend, docker_host=DOCKER_HOSTS.get(backend))

FAKE_KEY = "fake-provider-key-battery-0123456789"


@pytest.fixture
def world(monkeypatch, backend):
    """A run's scratch area (size-capped), plus sentinels outside it that must stay untouched."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    with ScratchArea(size_mb=64) as area:
        outside = Path(area.path.parent) / f"{area.path.name}-outside"
        outside.mkdir()
        outside.chmod(0o755)
        (outside / "hidden-tests.py").write_text("assert answer == 42\n")
        (outside / "root-only.txt").write_text("secret")
        (outside / "root-only.txt").chmod(0o600)
        workdir, logdir = area.path / "work", area.path / "logs"
        workdir.mkdir()
        logdir.mkdir()
        (workdir / "link-out").symlink_to(outside / "hidden-tests.py")
        (workdir / "dir-out").symlink_to(outside)
        home_secret = Path.home() / ".sica-battery-secret"
        home_secret.write_text("home secret")
        sentinels = [outside / "hidden-tests.py", outside / "root-only.txt", home_secret,
                     Path(__file__).resolve(), Path("/etc/hosts")]
        before = {path: _digest(path) for path in sentinels}
        yield {"area": area, "workdir": workdir, "logdir": logdir, "outside": outside, "backend": backend}
        assert {path: _digest(path) for path in sentinels} == before, "a file outside the sandbox changed"
        assert sorted(p.name for p in outside.iterdir()) == ["hidden-tests.py", "root-only.txt"]
        home_secret.unlink()
        shutil.rmtree(outside)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() + oct(path.stat().st_mode) + str(path.stat().st_uid)


def run(world, script: str, **limits):
    spec = SandboxSpec(command=("sh", "-c", script), workdir=world["workdir"], logdir=world["logdir"],
                       limits=Limits(**{"wall_s": 20, **limits}))
    return sandbox_of(world["backend"]).run(spec)


@pytest.mark.parametrize("target", [Path(__file__).resolve(), Path.home() / "sica-battery-written", Path("/etc/hosts"),
                                    Path("/etc/battery-written")])
def test_writes_outside_the_workdir_fail(world, target):
    result = run(world, f"echo pwned > {target} || echo refused")
    assert "refused" in result.stdout
    assert not (Path.home() / "sica-battery-written").exists() and not Path("/etc/battery-written").exists()


def test_archive_and_hidden_files_are_not_even_visible(world):
    result = run(world, f"ls {world['outside']} || echo invisible; cat {world['outside']}/hidden-tests.py || true")
    assert "invisible" in result.stdout and "answer" not in result.stdout


def test_symlink_hard_link_and_dotdot_escapes_fail(world):
    result = run(world, "echo pwned > link-out; echo pwned > dir-out/new.txt; "
                        "echo pwned > ../escaped.txt; cat link-out; echo end")
    assert "end" in result.stdout
    assert not (world["area"].path / "escaped.txt").exists()


def test_secrets_are_out_of_reach(world):
    result = run(world, f"env; cat {world['outside']}/root-only.txt; cat /etc/shadow; "
                        f"cat {Path.home()}/.sica-battery-secret; cat /proc/{os.getpid()}/environ; "
                        f"cat /proc/1/environ | tr '\\0' '\\n'; echo end")
    assert "end" in result.stdout
    for secret in (FAKE_KEY, "home secret", "secret\n", "ANTHROPIC"):
        assert secret not in result.stdout


def test_hard_links_to_outside_files_are_not_handed_to_the_sandbox(backend):
    """On one filesystem (no size-capped scratch area), a hard link planted in the workdir shares its inode
    with a root-only file outside: the harness must not give that inode to the sandbox user."""
    base = Path(tempfile.mkdtemp(prefix="sica-hardlink-"))
    base.chmod(0o755)
    outside, workdir = base / "outside.txt", base / "work"
    outside.write_text("root only")
    outside.chmod(0o600)
    workdir.mkdir()
    os.link(outside, workdir / "hard-out")
    before = _digest(outside)
    result = sandbox_of(backend).run(SandboxSpec(command=("sh", "-c", "cat hard-out || echo denied; "
                                                              "echo pwned > hard-out || echo refused"),
                                                   workdir=workdir, limits=Limits(wall_s=20)))
    try:
        assert "denied" in result.stdout and "refused" in result.stdout
        assert _digest(outside) == before
    finally:
        shutil.rmtree(base)


def test_network_holds_only_loopback_and_the_hosts_loopback_is_unreachable(world):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    server.settimeout(5)

    def accept() -> None:
        try:
            accepted.append(server.accept()[0])
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    port = server.getsockname()[1]
    result = run(world, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; "
                        f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\" "
                        "2>/dev/null && echo connected || echo unreachable")
    server.close()
    assert result.stdout.split() == ["lo", "unreachable"]
    assert not accepted


def test_fork_bomb_is_contained(world):
    result = run(world, "bomb() { bomb | bomb & }; bomb; sleep 2; echo survived", wall_s=8, processes=64)
    assert result.ending in ("exit", "timeout", "signal")
    assert run(world, "echo next run fine").stdout.strip() == "next run fine"


def test_memory_bomb_is_stopped_as_oom(world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(world, "python3 -c 'x = bytearray(3 * 2**30)'", memory_mb=256)
    assert list(tmp_path.iterdir()) == []  # nothing left in the harness's folder (podman's engine wrote `oom`)
    # bwrap reads the run's cgroup, and docker's daemon says so (State.OOMKilled): "oom". Under podman the OOM
    # killer hits the python child, and the container's shell reports it as killed by signal 9.
    expected = "signal" if world["backend"] == "podman" else "oom"
    assert result.ending == expected and not result.ok and "Killed" in result.stderr


def test_filling_the_disk_stops_at_the_caps(world):
    result = run(world, "dd if=/dev/zero of=big bs=1M count=200 2>&1 | tail -1; "
                        "for i in 1 2 3 4 5 6 7 8; do dd if=/dev/zero of=f$i bs=1M count=30 2>/dev/null; done; "
                        "dd if=/dev/zero of=/tmp/t bs=1M count=200 2>&1 | tail -1; echo end", file_size_mb=32,
                 tmp_mb=16)
    assert "end" in result.stdout
    assert (world["workdir"] / "big").stat().st_size <= 32 * 2**20
    if world["area"].capped:
        # The whole writable area (workdir and logdir) is one 64 MiB tmpfs.
        assert sum(p.stat().st_size for p in world["workdir"].iterdir() if p.is_file()) <= 65 * 2**20


def test_endless_loop_and_sleeping_past_the_wall_time_are_stopped(world):
    assert run(world, "while :; do :; done", wall_s=1).ending == "timeout"
    result = run(world, "sleep 30", wall_s=1)
    assert result.ending == "timeout" and result.seconds < 5


def test_child_ignoring_sigterm_dies_with_the_run(world):
    marker = world["workdir"] / "alive"
    result = run(world, "(trap '' TERM; setsid sh -c 'while :; do date > alive; sleep 0.2; done' &) ; sleep 30",
                 wall_s=1)
    assert result.ending == "timeout"
    first = marker.read_text()
    threading.Event().wait(1)
    assert marker.read_text() == first, "a process of the run outlived it"


def test_cannot_kill_signal_or_trace_the_harness(world):
    result = run(world, f"kill -9 {os.getpid()} || echo no-kill; kill -9 -1; "
                        f"python3 -c \"import ctypes; print('ptrace', ctypes.CDLL(None).ptrace(16, {os.getppid()}, 0, 0))\"; "
                        "echo end")
    assert "no-kill" in result.stdout
    assert "ptrace -1" in result.stdout or result.ending != "exit"


def test_workdir_files_stay_owned_as_needed(world):
    result = run(world, "echo made > made.txt; stat -c %u made.txt")
    assert result.ok
    made = world["workdir"] / "made.txt"
    assert made.read_text() == "made\n"
    assert stat.S_ISREG(made.stat().st_mode)


def test_standard_input_reaches_the_command_and_no_file(world):
    """Hidden material given on standard input is read by the command and exists in no file it could name."""
    spec = SandboxSpec(command=("cat",),
                       workdir=world["workdir"], logdir=world["logdir"], limits=Limits(wall_s=20),
                       stdin=b"hidden target\n")
    result = sandbox_of(world["backend"]).run(spec)
    assert result.ok, result.stderr
    assert result.stdout == "hidden target\n"
    assert b"hidden target" not in b"".join(p.read_bytes() for p in world["workdir"].rglob("*") if p.is_file())


def test_standard_input_once_read_cannot_be_read_again(world):
    """Standard input is a pipe: what the command read is gone, even through /proc/1/fd/0 (bwrap's init holds
    the same descriptor, and anything the command starts may open it again)."""
    spec = SandboxSpec(command=("sh", "-c", "cat >/dev/null; cat /proc/1/fd/0 /proc/self/fd/0 2>/dev/null; echo end"),
                       workdir=world["workdir"], logdir=world["logdir"], limits=Limits(wall_s=20),
                       stdin=b"hidden target\n" * 10_000)
    result = sandbox_of(world["backend"]).run(spec)
    assert result.stdout == "end\n", result.stdout[:200]
