"""Fixtures the benchmark tests share: a tree the sandbox user can reach, and the real bwrap sandbox."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sica.sandbox import Sandbox, open_sandbox


@pytest.fixture
def tree() -> Iterator[Path]:
    """A starting tree in a folder the sandbox user can reach."""
    with tempfile.TemporaryDirectory(prefix="sica-bench-test-") as folder:
        Path(folder).chmod(0o755)
        yield Path(folder)


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    return open_sandbox("bwrap")
