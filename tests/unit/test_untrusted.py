"""What the harness does with files an agent controls: no link followed, no FIFO blocked on, no special file
copied, nothing written through a planted link, holes kept and setuid bits dropped in copies, no depth or name
breaking a copy; and what an agent version's snapshot may not make root do."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from sica.runner.environments import AgentVersionError, declared_dependencies
from sica.runner.setup import prepared_agent
from sica.sandbox.untrusted import (TreeLimits, copy_untrusted_tree, read_untrusted, read_untrusted_text,
                                    write_into_untrusted_folder)
from tests.support.agents import minimal_agent


def test_reads_only_regular_files_and_never_more_than_asked(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("provider key")
    (tmp_path / "answer.txt").write_bytes(b"42\xff" + b"x" * 100)
    (tmp_path / "link.txt").symlink_to(secret)
    os.mkfifo(tmp_path / "fifo")
    assert read_untrusted_text(tmp_path / "answer.txt", 4) == "42\ufffdx"
    assert read_untrusted(tmp_path / "answer.txt", 10, offset=100) == b"xxx"
    for refused in ("link.txt", "fifo", "missing"):
        assert read_untrusted(tmp_path / refused, 100) is None  # returns at once: the FIFO is never waited on


def test_writes_into_a_folder_but_never_through_a_link(tmp_path):
    inbox, elsewhere = tmp_path / "inbox", tmp_path / "elsewhere"
    inbox.mkdir()
    elsewhere.mkdir()
    assert write_into_untrusted_folder(inbox, "000000.json", b"{}")
    assert (inbox / "000000.json").read_bytes() == b"{}" and not list(inbox.glob(".*"))
    (inbox / "000001.json").symlink_to(elsewhere / "planted")
    assert write_into_untrusted_folder(inbox, "000001.json", b"{}")  # the rename replaces the link itself
    assert not (inbox / "000001.json").is_symlink() and not (elsewhere / "planted").exists()
    planted = tmp_path / "planted-inbox"
    planted.symlink_to(elsewhere)
    assert not write_into_untrusted_folder(planted, "000000.json", b"{}")
    assert list(elsewhere.iterdir()) == []


def test_copies_files_folders_and_links_but_no_special_files(tmp_path):
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "code.py").write_text("x = 1\n")
    (tree / "link").symlink_to("/etc/shadow")
    os.mkfifo(tree / "pkg" / "fifo")
    copy_untrusted_tree(tree, tmp_path / "copy")
    assert (tmp_path / "copy" / "pkg" / "code.py").read_text() == "x = 1\n"
    assert os.readlink(tmp_path / "copy" / "link") == "/etc/shadow"
    assert not (tmp_path / "copy" / "pkg" / "fifo").exists()


def test_an_agent_snapshot_never_changes_modes_through_its_links(tmp_path):
    """Root makes the snapshot readable by the sandbox user; a link in the version must not carry that to a
    file of the host."""
    host_file = tmp_path / "host-secret"
    host_file.write_text("secret")
    host_file.chmod(0o600)
    agent, settings = minimal_agent(tmp_path)
    (agent / "sica_agent" / "planted").symlink_to(host_file)

    async def snapshot() -> list[Path]:
        async with prepared_agent(settings.model_roles, settings.solve.envs_dir, agent, None) as setup:
            return sorted(setup.code.rglob("*.pyc"))

    assert asyncio.run(snapshot())  # compiled
    assert stat.S_IMODE(host_file.stat().st_mode) == 0o600


def test_an_agent_snapshot_never_compiles_a_file_of_the_host_through_a_link(tmp_path):
    """Root compiles the snapshot the sandbox mounts: a module linked to a host file must not bring that file's
    bytecode (its strings) in; a link inside the version's own tree is compiled as usual."""
    host_file = tmp_path / "host_settings.py"
    host_file.write_text('API_KEY = "sk-host-secret"\n')
    host_file.chmod(0o600)
    agent, settings = minimal_agent(tmp_path)
    (agent / "sica_agent" / "notes.py").symlink_to(host_file)
    (agent / "sica_agent" / "alias.py").symlink_to("__init__.py")

    async def compiled() -> dict[str, bytes]:
        async with prepared_agent(settings.model_roles, settings.solve.envs_dir, agent, None) as setup:
            return {path.name.split(".")[0]: path.read_bytes() for path in setup.code.rglob("*.pyc")}

    found = asyncio.run(compiled())
    assert sorted(found) == ["__init__", "alias"]
    assert not any(b"sk-host-secret" in data for data in found.values())


def test_a_pyproject_is_read_only_as_a_regular_file(tmp_path):
    """Root reads a version's pyproject.toml on the host: never through a link, never without end."""
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "pyproject.toml").symlink_to("/dev/zero")
    with pytest.raises(AgentVersionError, match="not a regular file"):
        declared_dependencies(agent)
    (agent / "pyproject.toml").unlink()
    (agent / "pyproject.toml").write_text('[project]\ndependencies = ["httpx==0.28.1"]\n' + "#" * (1 << 20))
    with pytest.raises(AgentVersionError, match="larger than"):
        declared_dependencies(agent)


def test_copies_keep_holes_as_holes(tmp_path):
    """A sparse file costs the agent's tmpfs nothing; the harness's copy of it must cost the host nothing."""
    tree = tmp_path / "tree"
    tree.mkdir()
    with (tree / "sparse.bin").open("wb") as out:
        out.seek(50 << 20)
        out.write(b"data in the middle")
        out.truncate(100 << 20)
    assert copy_untrusted_tree(tree, tmp_path / "copy") == []
    copied = tmp_path / "copy" / "sparse.bin"
    assert copied.stat().st_size == 100 << 20
    assert copied.stat().st_blocks * 512 < 1 << 20
    with copied.open("rb") as read:
        read.seek((50 << 20) - 2)
        assert read.read(20) == b"\0\0data in the middle"


def test_copies_carry_no_setuid_setgid_or_sticky_bit_and_nothing_others_may_write(tmp_path):
    tree = tmp_path / "tree"
    (tree / "shared").mkdir(parents=True)
    (tree / "rootshell").write_text("#!/bin/sh\nid\n")
    (tree / "rootshell").chmod(0o6777)
    (tree / "locked").write_text("x")
    (tree / "locked").chmod(0o000)
    (tree / "shared").chmod(0o3777)
    copy_untrusted_tree(tree, tmp_path / "copy")
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in (tmp_path / "copy").iterdir()}
    assert modes == {"rootshell": 0o755, "locked": 0o600, "shared": 0o755}


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_copies_never_hold_device_nodes_fifos_or_sockets_and_say_so(tmp_path):
    import socket

    tree = tmp_path / "tree"
    tree.mkdir()
    os.mknod(tree / "disk", 0o666 | stat.S_IFBLK, os.makedev(8, 0))
    os.mknod(tree / "memory", 0o666 | stat.S_IFCHR, os.makedev(1, 1))
    os.mkfifo(tree / "pipe")
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(tree / "sock"))
        left_out = copy_untrusted_tree(tree, tmp_path / "copy")
    assert list((tmp_path / "copy").iterdir()) == []
    assert left_out == ["special files (FIFOs, sockets, devices): disk, memory, pipe and 1 more"]


def test_a_tree_600_folders_deep_with_names_that_are_not_utf8_is_copied_to_the_limit(tmp_path):
    """No recursion, no path longer than one name: depth and odd names never break the copy; what is past the
    depth limit is left out and said."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / os.fsdecode(b"caf\xe9.py")).write_bytes(b"NAME = 'caf\xe9'\n")
    folder = os.open(tree, os.O_RDONLY)
    for _ in range(600):
        os.mkdir("d" * 30, dir_fd=folder)
        inner = os.open("d" * 30, os.O_RDONLY, dir_fd=folder)
        os.close(folder)
        folder = inner
    os.close(folder)
    left_out = copy_untrusted_tree(tree, tmp_path / "copy")
    assert (tmp_path / "copy" / os.fsdecode(b"caf\xe9.py")).read_bytes() == b"NAME = 'caf\xe9'\n"
    (line,) = left_out
    assert line.startswith("paths longer than 3072 bytes: dddddddddd")
    depth = 0
    folder_path = tmp_path / "copy"
    while (folder_path / ("d" * 30)).is_dir():
        folder_path, depth = folder_path / ("d" * 30), depth + 1
    assert 90 <= depth <= 100


def test_files_over_the_size_limit_and_past_the_entry_limit_are_left_out_and_said(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    with (tree / "huge.bin").open("wb") as out:
        out.truncate(129 << 20)
    for number in range(5):
        (tree / f"small-{number}.txt").write_text("x")
    left_out = copy_untrusted_tree(tree, tmp_path / "copy", TreeLimits(max_entries=4))
    assert left_out == ["files over 128 MiB: huge.bin", "entries past the first 4: small-3.txt"]
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["small-0.txt", "small-1.txt", "small-2.txt"]
