"""What every command shares: where the configuration is, the consoles, and the error users can fix."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console

from sica.config import Settings, find_config_file, load_settings
from sica.sandbox import BACKENDS


class UserError(Exception):
    """A problem the user can fix, reported as one line (no traceback)."""


@dataclass
class CliState:
    config_path: Path | None
    out: Console
    err: Console

    def settings(self) -> Settings:
        """Load the configuration from the first of --config, ./sica.toml, ~/.config/sica/sica.toml."""
        path = find_config_file(self.config_path, Path.cwd(), Path.home())
        return load_settings(path, os.environ)


def check_model(settings: Settings, alias: str | None) -> None:
    """A model alias given on the command line must be configured."""
    if alias is not None and alias not in settings.models:
        raise UserError(f"unknown model alias '{alias}': use one of {', '.join(settings.models)}")


def check_sandbox(backend: str) -> None:
    """A sandbox backend given on the command line must exist."""
    if backend not in BACKENDS:
        raise UserError(f"unknown sandbox backend '{backend}': use one of {', '.join(BACKENDS)}")


def state(ctx: typer.Context) -> CliState:
    return ctx.find_root().obj  # type: ignore[no-any-return]
