"""The agent's settings, read once from the environment the harness builds (the agent contract)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Wire = Literal["openai", "anthropic"]
ToolMode = Literal["native", "text"]


@dataclass(frozen=True)
class ModelRole:
    """How to reach the model that plays one role (main, reasoning, fast)."""

    alias: str
    wire: Wire
    tool_mode: ToolMode
    context_window: int


@dataclass(frozen=True)
class Settings:
    """`SICA_AGENT_*` variables: where the gateway is, the budget token, the models, ids and limits."""

    gateway: str
    token: str
    models: Mapping[str, ModelRole]
    run_id: str
    problem_id: str
    time_limit_s: float
    cost_limit_usd: float | None

    def model(self, role: str) -> ModelRole:
        """The model for `role`, falling back to the main model."""
        return self.models.get(role) or self.models["main"]


class SettingsError(Exception):
    """The environment is not what the contract says; the message names the variable."""


def settings_from_env(environ: Mapping[str, str] = os.environ) -> Settings:
    """Read the contract's variables; a missing or malformed one is a `SettingsError`."""

    def need(name: str) -> str:
        value = environ.get(name)
        if not value:
            raise SettingsError(f"environment variable {name} is not set (the harness sets it)")
        return value

    try:
        raw_models = json.loads(need("SICA_AGENT_MODELS"))
        models = {
            role: ModelRole(
                alias=entry["alias"],
                wire=entry.get("wire", "openai"),
                tool_mode=entry.get("tool_mode", "native"),
                context_window=int(entry.get("context_window", 32768)),
            )
            for role, entry in raw_models.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise SettingsError(
            f"SICA_AGENT_MODELS is not a JSON object of role → {{alias, wire, tool_mode, context_window}}: {error}"
        ) from None
    if "main" not in models:
        raise SettingsError("SICA_AGENT_MODELS has no 'main' role")
    cost = environ.get("SICA_AGENT_COST_LIMIT_USD")
    return Settings(
        gateway=need("SICA_AGENT_GATEWAY"),
        token=need("SICA_AGENT_TOKEN"),
        models=models,
        run_id=environ.get("SICA_AGENT_RUN_ID", "local"),
        problem_id=environ.get("SICA_AGENT_PROBLEM_ID", "task"),
        time_limit_s=float(environ.get("SICA_AGENT_TIME_LIMIT_S", "1800")),
        cost_limit_usd=float(cost) if cost else None,
    )
