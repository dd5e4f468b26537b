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


RUNNERS = ("local", "ray")
RUNNER_HELP = "Where attempts run: local (here) or ray (a Ray cluster). [default: [runner] kind, local]"
RAY_ADDRESS_HELP = "With --runner ray: the cluster's head, host:port. [default: [runner] address, else this machine's]"


def with_runner(settings: Settings, runner: str | None, address: str | None) -> Settings:
    """The settings with the runner given on the command line; for `ray`, Ray must be installed and no overseer
    configured (the ray runner runs none yet)."""
    kind = runner or settings.runner.kind
    if kind not in RUNNERS:
        raise UserError(f"unknown runner '{kind}': use one of {', '.join(RUNNERS)}")
    if address is not None and kind != "ray":
        raise UserError("--ray-address is for the ray runner: add --runner ray, or leave the address out")
    if kind == "ray":
        from sica.runner.oversight import OverseerPlan
        from sica.runner.ray_api import RayUnavailable, require_ray

        try:
            require_ray()
        except RayUnavailable as error:
            raise UserError(str(error)) from None
        if OverseerPlan.of(settings.overseer, settings.model_roles) is not None:
            raise UserError(
                "the ray runner runs no overseer yet: set [overseer] enabled = false, or use --runner local"
            )
    updated = {"kind": kind, "address": address or settings.runner.address}
    return settings.model_copy(update={"runner": settings.runner.model_copy(update=updated)})


def state(ctx: typer.Context) -> CliState:
    return ctx.find_root().obj  # type: ignore[no-any-return]
