"""Shared fixtures (settings built from a TOML text, a real gateway served on loopback) and the tiers' markers."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from sica.config import Settings, load_settings
from sica.gateway import RunningGateway
from tests.support.gateway_thread import serve_in_thread
from tests.support.tiers import uses_sandbox

MakeSettings = Callable[..., Settings]
INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by what it uses (tests/support/tiers.py): `slow` under tests/integration, `sandbox` when it
    runs something in the real sandbox."""
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        if item.path.is_relative_to(INTEGRATION):
            item.add_marker(pytest.mark.slow)
        definitions = item._fixtureinfo.name2fixturedefs.values()  # every fixture the test asks for, transitively
        fixtures = [defs[-1].func for defs in definitions if defs and defs[-1].func.__module__.startswith("tests.")]
        if uses_sandbox([item.function, *fixtures], item.fixturenames):
            item.add_marker(pytest.mark.sandbox)


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
