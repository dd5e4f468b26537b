"""What every command shares: where the configuration is, the consoles, and the error users can fix."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console

from sica.config import Settings, find_config_file, load_settings


class UserError(Exception):
    """A problem the user can fix, reported as one line (no traceback)."""


@dataclass
class CliState:
    config_path: Path | None
    out: Console
    err: Console

    def settings(self) -> Settings:
        """Load the configuration the way DESIGN.md says: --config, ./sica.toml, ~/.config/sica/sica.toml."""
        path = find_config_file(self.config_path, Path.cwd(), Path.home())
        return load_settings(path, os.environ)


def state(ctx: typer.Context) -> CliState:
    return ctx.find_root().obj  # type: ignore[no-any-return]
