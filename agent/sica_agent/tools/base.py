"""What a tool is: a spec the model sees, and a function of the arguments that returns text for the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class ToolSpec:
    """Name, description and JSON-schema parameters, as shown to the model (natively or in the prompt)."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolResult:
    """What the model reads back. `ok=False` is a refusal or failure the model should act on.

    `final` ends the agent's run (submit/complete); `answer` is the submitted answer, if any.
    """

    output: str
    ok: bool = True
    final: bool = False
    answer: str | None = None


@dataclass
class ToolContext:
    """What tools may touch: the workdir (every path is resolved inside it) and the per-file edit history."""

    workdir: Path
    edit_history: dict[str, list[bytes | None]] = field(default_factory=dict)


class Tool(Protocol):
    spec: ToolSpec

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult: ...


class ToolError(Exception):
    """Raised inside a tool for a refusal; the agent turns it into `ToolResult(ok=False)`."""
