"""Shared fixtures: settings built from a TOML text, and a real gateway served on loopback."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from sica.config import Settings, load_settings
from sica.gateway import RunningGateway
from tests.support.gateway_thread import serve_in_thread

MakeSettings = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path) -> MakeSettings:
    """Write a `sica.toml` (plus scripts) in tmp_path and load it, as the CLI would."""

    def make(toml: str, scripts: dict[str, str] | None = None, environ: dict[str, str] | None = None) -> Settings:
        for name, text in (scripts or {}).items():
            (tmp_path / name).write_text(textwrap.dedent(text).strip() + "\n")
        config = tmp_path / "sica.toml"
        config.write_text(textwrap.dedent(toml))
        return load_settings(config, environ or {})

    return make


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., RunningGateway]]:
    """Start real gateways (uvicorn on a loopback port, in a thread); all stop at the end of the test."""
    with ExitStack() as stack:

        def start(settings: Settings, environ: dict[str, str] | None = None,
                  ledger: Path | None = None) -> RunningGateway:
            return stack.enter_context(serve_in_thread(settings, ledger or tmp_path / "ledger.sqlite", environ))

        yield start


@pytest.fixture
def fake_upstream():
    """A fault-injecting fake provider on loopback."""
    from tests.support.fake_upstream import run_fake_upstream

    with run_fake_upstream() as fake:
        yield fake
