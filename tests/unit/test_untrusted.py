"""What the harness does with files an agent controls: no link followed, no FIFO blocked on, no special file
copied, nothing written through a planted link; and what an agent version's snapshot may not make root do."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from sica.config import Settings, default_envs_dir, load_settings
from sica.runner.environments import AgentVersionError, declared_dependencies
from sica.runner.setup import prepared_agent
from sica.sandbox.untrusted import (copy_untrusted_tree, read_untrusted, read_untrusted_text,
                                    write_into_untrusted_folder)


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


def minimal_agent(tmp_path: Path) -> tuple[Path, Settings]:
    """An agent version with an empty package, and settings whose environments are the shared ones."""
    agent = tmp_path / "agent"
    (agent / "sica_agent").mkdir(parents=True)
    (agent / "pyproject.toml").write_text('[project]\nname = "a"\nversion = "0"\ndependencies = []\n')
    (agent / "sica_agent" / "__init__.py").write_text("")
    (tmp_path / "sica.toml").write_text(f'[solve]\nenvs_dir = "{default_envs_dir(os.geteuid())}"\n')
    return agent, load_settings(tmp_path / "sica.toml", {})


def test_an_agent_snapshot_never_changes_modes_through_its_links(tmp_path):
    """Root makes the snapshot readable by the sandbox user; a link in the version must not carry that to a
    file of the host."""
    host_file = tmp_path / "host-secret"
    host_file.write_text("secret")
    host_file.chmod(0o600)
    agent, settings = minimal_agent(tmp_path)
    (agent / "sica_agent" / "planted").symlink_to(host_file)

    async def snapshot() -> list[Path]:
        async with prepared_agent(settings, agent, None) as setup:
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
        async with prepared_agent(settings, agent, None) as setup:
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
